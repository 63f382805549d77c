/**
 * Whether an error means "the database cannot answer now; the same request later may
 * succeed" — as opposed to a bug or a request the database refused for its data. Such a
 * request is answered 503 with Retry-After (src/server/http/errors.ts), never 500.
 *
 * What counts:
 * - the connection could not be made or was lost (Node socket errors, pg's own messages for a
 *   terminated connection or a connect timeout);
 * - SQLSTATE class 08 (connection exception), 53 (insufficient resources: disk full, out of
 *   memory, too many connections) and 57 (operator intervention: admin or crash shutdown,
 *   "the database system is starting up", a statement cancelled);
 * - 25006 (read-only transaction: a write reached a standby during a failover) and 40001 /
 *   40P01 (serialization failure, deadlock: retrying is the documented remedy).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return unavailable(err, 0);
}

const SOCKET_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ENOSPC',
]);
const SQLSTATE_CLASSES = new Set(['08', '53', '57']);
const SQLSTATES = new Set(['25006', '40001', '40P01']);
/** What pg and pg-pool say when a connection is gone or cannot be had (they carry no code). */
const MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Client was closed and is not queryable$/,
  /^Cannot use a pool after calling end on the pool$/,
  /^the database system is (starting up|shutting down|in recovery mode)/,
];

function unavailable(err: unknown, depth: number): boolean {
  if (err === null || typeof err !== 'object' || depth > 3) return false;
  const { code, message, cause, errors } = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') {
    if (SOCKET_ERRORS.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && (SQLSTATE_CLASSES.has(code.slice(0, 2)) || SQLSTATES.has(code))) return true;
  }
  if (typeof message === 'string' && MESSAGES.some((m) => m.test(message))) return true;
  // Node's connection attempts to several addresses fail as one AggregateError.
  if (Array.isArray(errors) && errors.some((e) => unavailable(e, depth + 1))) return true;
  return unavailable(cause, depth + 1);
}
