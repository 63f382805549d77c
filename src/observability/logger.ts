import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Every field that can carry a secret, wherever it appears in a logged object. pino replaces
 * the value before serialising the line (DESIGN: tokens, secrets, passwords and codes never
 * reach logs).
 */
export const SECRET_FIELDS = [
  'password', 'client_secret', 'code', 'code_verifier', 'refresh_token', 'access_token', 'id_token',
  'token', 'assertion', 'client_assertion', 'subject_token', 'actor_token', 'device_code', 'user_code',
  'registration_access_token', 'initial_access_token', 'secret', 'private_key', 'privateKey', 'keyEncryptionSecret',
] as const;

const HEADER_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie',
];

export const REDACT_PATHS = [
  ...HEADER_PATHS,
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `req.body.${f}`, `req.query.${f}`]),
];

const SECRET_QUERY_PARAMS = new Set<string>(SECRET_FIELDS);

/** A URL as it may be logged: the values of secret-bearing query parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    let name = rawName;
    try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')); } catch { /* keep raw */ }
    return eq >= 0 && SECRET_QUERY_PARAMS.has(name) ? `${rawName}=[Redacted]` : pair;
  });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

export function createLogger(level: LoggerOptions['level'], destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'latchkey' },
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
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
