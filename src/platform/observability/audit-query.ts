import { z } from 'zod';
import type { AuditEventRow, AuditPage, AuditPosition, AuditQuery } from './audit-event-store.js';

/**
 * The audit trail query as an operator writes it — the admin API's query string
 * (GET /admin/audit) and `latchkey audit`'s options — validated in one place:
 * client_id, sub, event, jti, ip, user_agent (a substring), grant_type, scope (one scope token the
 * event's scope contains), event_prefix (`token.` → every token event), since / until (RFC 3339 date-times with an offset), limit
 * (1–1000, default 100) and cursor (from the previous page's next_cursor).
 */
const rfc3339 = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T10:00:00Z' }).transform((s) => new Date(s));
// No control characters: no identifier has them, and PostgreSQL text cannot hold a NUL byte.
const text = (max: number) => z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`)
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

const schema = z.strictObject({
  client_id: text(255).optional(),
  sub: text(255).optional(),
  event: text(64).regex(/^[a-z_.]+$/, 'must be an event name such as token.issued').optional(),
  jti: text(255).optional(),
  ip: text(64).optional(),
  user_agent: text(512).optional(),
  grant_type: text(255).optional(),
  scope: text(255).regex(/^[^ ]+$/, 'must be one scope token (no spaces)').optional(),
  event_prefix: text(64).regex(/^[a-z_.]+$/, 'must be the start of an event name such as token.').optional(),
  since: rfc3339.optional(),
  until: rfc3339.optional(),
  limit: z.string().regex(/^\d{1,4}$/, 'must be an integer from 1 to 1000').transform(Number)
    .refine((n) => n >= 1 && n <= 1000, 'must be an integer from 1 to 1000').optional(),
  cursor: text(200).optional(),
}, { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown parameter(s): ${issue.keys.join(', ')}` : undefined) });

/** The cursor is opaque to callers: base64url of the last row's position. */
export function encodeAuditCursor(position: AuditPosition): string {
  return Buffer.from(JSON.stringify([position.at.toISOString(), position.id])).toString('base64url');
}

function decodeAuditCursor(cursor: string): AuditPosition | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || typeof value[1] !== 'string') return undefined;
    const at = new Date(value[0]);
    // Within what the columns hold: timestamptz from 4713 BC (years before 1 are refused here),
    // a bigint id up to 2^63 - 1.
    if (Number.isNaN(at.getTime()) || at.getUTCFullYear() < 1 || at.getUTCFullYear() > 9999) return undefined;
    if (!/^\d{1,19}$/.test(value[1]) || BigInt(value[1]) > 9223372036854775807n) return undefined;
    return { at, id: value[1] };
  } catch {
    return undefined;
  }
}

export type ParsedAuditQuery = { ok: true; query: AuditQuery } | { ok: false; problem: string };

/** Parses an audit query from string parameters; a problem names the parameter. */
export function parseAuditQuery(input: Record<string, unknown>): ParsedAuditQuery {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    // A repeated parameter arrives as an array: say so rather than "expected string".
    const message = issue.code === 'invalid_type' && Array.isArray(input[String(issue.path[0])]) ? 'must be given once' : issue.message;
    return { ok: false, problem: `${name}${message}` };
  }
  const p = parsed.data;
  if (p.since && p.until && p.since >= p.until) return { ok: false, problem: 'since: must be before until' };
  const after = p.cursor === undefined ? undefined : decodeAuditCursor(p.cursor);
  if (p.cursor !== undefined && !after) return { ok: false, problem: 'cursor: not a cursor this server issued' };
  return {
    ok: true,
    query: {
      clientId: p.client_id, sub: p.sub, event: p.event, jti: p.jti,
      ip: p.ip, userAgent: p.user_agent, grantType: p.grant_type, scope: p.scope, eventPrefix: p.event_prefix, since: p.since, until: p.until, limit: p.limit ?? 100, after },
  };
}

/** An audit event as JSON: the id as a string (a bigint), `at` as an RFC 3339 date-time. */
export function auditEventDocument(row: AuditEventRow): Record<string, unknown> {
  return { ...row, id: String(row.id), at: row.at.toISOString() };
}

/** One page as GET /admin/audit answers it and `latchkey audit --json` prints it. */
export function auditPageDocument(page: AuditPage): { events: Array<Record<string, unknown>>; next_cursor: string | null } {
  return { events: page.events.map(auditEventDocument), next_cursor: page.next ? encodeAuditCursor(page.next) : null };
}
