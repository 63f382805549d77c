import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Every field that can carry a secret, wherever it appears in a logged object (up to three
 * levels down) or as a query parameter of a logged URL. Its value is replaced before the line
 * is serialised (DESIGN: tokens, secrets, passwords and codes never reach logs). The hints are
 * here too: an `id_token_hint` is an ID token, a `login_hint` or `logout_hint` is usually an
 * e-mail address or username (OpenID Connect Core §3.1.2.1, RP-Initiated Logout 1.0 §2).
 */
export const SECRET_FIELDS = [
  'password', 'client_secret', 'code', 'code_verifier', 'refresh_token', 'access_token', 'id_token',
  'token', 'assertion', 'client_assertion', 'subject_token', 'actor_token', 'device_code', 'user_code',
  'registration_access_token', 'initial_access_token', 'secret', 'private_key', 'privateKey', 'keyEncryptionSecret', 'keyEncryptionSecretPrevious',
  'id_token_hint', 'login_hint', 'logout_hint',
] as const;

/** Header names whose values are credentials. */
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'] as const;

const SECRET_KEYS = new Set<string>([...SECRET_FIELDS, ...SECRET_HEADERS]);
export const CENSORED = '[Redacted]';

/** Only plain data is walked: a request or error object is left to its serializer (they log no secret). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The object with every secret-named field's value replaced, at any of the first three levels.
 * Returns the object itself when there is nothing to replace (the common case costs one pass
 * over the keys and no allocation). A hand-written walk rather than pino's path-based redaction:
 * with wildcard paths for every secret name that one cost a third of the token endpoint's time.
 */
export function scrubSecrets<T>(value: T, depth = 0): T {
  if (!isPlainObject(value) || depth > 2) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    const replaced = SECRET_KEYS.has(key) && field !== undefined ? CENSORED : scrubSecrets(field, depth + 1);
    if (replaced !== field) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = replaced;
    }
  }
  return (copy ?? value) as T;
}

const SECRET_QUERY_PARAMS = new Set<string>(SECRET_FIELDS);

/** Parameters whose value is itself a URL of this server (a page to come back to), redacted in turn. */
const NESTED_URL_PARAMS = new Set(['return_to']);

/**
 * A URL as it may be logged: the values of secret-bearing query parameters replaced, also inside
 * a `return_to` (the sign-in page's, which may carry the device flow's user code).
 */
export function redactUrl(url: string, depth = 0): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    let name = rawName;
    try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')); } catch { /* keep raw */ }
    if (eq >= 0 && SECRET_QUERY_PARAMS.has(name)) return `${rawName}=${CENSORED}`;
    if (eq >= 0 && depth < 2 && NESTED_URL_PARAMS.has(name)) {
      let inner: string;
      try { inner = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' ')); } catch { return `${rawName}=${CENSORED}`; }
      const redacted = redactUrl(inner, depth + 1);
      return redacted === inner ? pair : `${rawName}=${encodeURIComponent(redacted)}`;
    }
    return pair;
  });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

export function createLogger(level: LoggerOptions['level'], destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'latchkey' },
    formatters: { log: (object) => scrubSecrets(object) },
    serializers: {
      req: (req: { method: string; url: string; id: string; ip?: string; headers?: Record<string, unknown> }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        ip: req.ip,
        userAgent: req.headers?.['user-agent'],
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err,
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
