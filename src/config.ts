import { z } from 'zod';

/**
 * The whole configuration of a Latchkey process: one zod schema over the environment.
 * Every variable is documented here, next to its default; the README table says the same
 * (test/unit/config.test.ts keeps the two in step).
 */

/** Durations are written as seconds ("600") or with a unit: 30s, 10m, 12h, 30d. */
const DURATION = /^(\d+)\s*(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseDurationSeconds(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']!;
}

const duration = (min: number, max: number) =>
  z
    .string()
    .transform((text, ctx) => {
      const seconds = parseDurationSeconds(text);
      if (seconds === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be a duration such as 600, 90s, 10m, 12h or 30d (got "${text}")` });
        return z.NEVER;
      }
      if (seconds < min || seconds > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min}s and ${max}s (got ${seconds}s)` });
        return z.NEVER;
      }
      return seconds;
    });

const integer = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max} (got "${text}")` });
      return z.NEVER;
    }
    return n;
  });

const boolean = z.enum(['true', 'false', '1', '0', 'yes', 'no'], {
  error: (issue) => `must be true or false (got "${String(issue.input)}")`,
}).transform((v) => v === 'true' || v === '1' || v === 'yes');

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** RFC 8414 §2: the issuer is an https URL with no query or fragment; http is accepted on loopback only. */
const issuer = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `must be an absolute URL such as https://id.example.com (got "${text}")` });
    return z.NEVER;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    ctx.addIssue({ code: 'custom', message: 'must use https (http is allowed only for localhost, 127.0.0.1 or [::1])' });
    return z.NEVER;
  }
  if (url.search || url.hash || text.includes('?') || text.includes('#')) {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or a fragment (RFC 8414 §2)' });
    return z.NEVER;
  }
  if (url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'must not contain credentials' });
    return z.NEVER;
  }
  // One spelling only: no trailing slash, so `iss` never drifts between "x" and "x/".
  return url.href.replace(/\/+$/, '');
});

/** A comma-separated list of bearer credentials, each at least 32 characters. */
const credentialList = z.string().transform((text, ctx) => {
  const values = text.split(',').map((v) => v.trim()).filter(Boolean);
  if (values.length === 0 || values.some((v) => v.length < 32)) {
    ctx.addIssue({ code: 'custom', message: 'must be one or more comma-separated values of at least 32 characters (e.g. `openssl rand -base64 32`)' });
    return z.NEVER;
  }
  return values;
});

/**
 * Each entry: the environment variable, its parser, its default (as the string a user would
 * write) and what it means. `describe()` text is what the README table shows.
 */
export const configSchema = z.object({
  PORT: integer(0, 65535).default(8080).describe('TCP port the HTTP server listens on (0 picks a free port).'),
  HOST: z.string().min(1).default('127.0.0.1').describe('Address to bind. Use 0.0.0.0 in a container.'),
  ISSUER: issuer.optional().describe('The issuer identifier and public base URL, e.g. https://id.example.com. Default: http://localhost:PORT. https is required except on loopback.'),
  DATABASE_URL: z.string().url().optional().describe('postgres:// URL of a real PostgreSQL. Unset: the embedded PGlite store under DATA_DIR.'),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier').default('public').describe('Schema holding Latchkey\'s tables on a real PostgreSQL (also namespaces LISTEN/NOTIFY channels).'),
  DATABASE_POOL_MAX: integer(1, 200).default(10).describe('Maximum connections in the pool to a real PostgreSQL.'),
  DATA_DIR: z.string().min(1).default('./data').describe('Directory of the embedded store (PGlite) and of the generated key-encryption secret.'),
  KEY_ENCRYPTION_SECRET: z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 32`)').optional().describe('Secret from which the key that encrypts signing keys at rest is derived. Required with DATABASE_URL; embedded mode generates one into DATA_DIR/key-encryption-secret (mode 0600).'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
  TRUST_PROXY: boolean.default(false).describe('Trust X-Forwarded-* headers (set true behind a reverse proxy you control).'),
  BODY_LIMIT: integer(1024, 10 * 1024 * 1024).default(64 * 1024).describe('Largest accepted request body in bytes; larger bodies get 413.'),
  REQUEST_TIMEOUT: duration(1, 600).default(30).describe('Time a client has to send a whole request before the connection is closed.'),
  SHUTDOWN_TIMEOUT: duration(1, 600).default(10).describe('On SIGTERM/SIGINT: time allowed to drain in-flight requests before the process exits anyway.'),
  ACCESS_TOKEN_TTL: duration(10, 86400).default(600).describe('Lifetime of access tokens (RFC 9068 JWTs).'),
  ID_TOKEN_TTL: duration(10, 86400).default(3600).describe('Lifetime of ID tokens.'),
  AUTHORIZATION_CODE_TTL: duration(5, 600).default(60).describe('Lifetime of authorization codes.'),
  REFRESH_TOKEN_IDLE_TTL: duration(60, 400 * 86400).default(14 * 86400).describe('Refresh token idle lifetime (reset by each rotation).'),
  REFRESH_TOKEN_ABSOLUTE_TTL: duration(60, 400 * 86400).default(90 * 86400).describe('Refresh token family absolute lifetime (never extended).'),
  ADMIN_TOKENS: credentialList.optional().describe('Bearer credential(s) of the admin API under /admin, comma-separated, each ≥ 32 characters. Unset: the admin API is off (404).'),
  INITIAL_ACCESS_TOKEN: credentialList.optional().describe('Initial access token(s) for Dynamic Client Registration (RFC 7591) at /register, comma-separated, each ≥ 32 characters. Unset: registration is off (404, not advertised).'),
  CLIENTS_FILE: z.string().min(1).optional().describe('Path of a JSON or YAML file of clients upserted at start-up (secrets from environment variables named by client_secret_env).'),
  CLIENT_CACHE_SIZE: integer(1, 1_000_000).default(10000).describe('Most clients held in the in-memory client cache (least recently used dropped first).'),
  CLIENT_CACHE_TTL: duration(1, 86400).default(300).describe('Longest a cached client is used before it is re-read, even without a change notification.'),
  CLIENT_SECRET_ROTATION_OVERLAP: duration(0, 90 * 86400).default(86400).describe('How long the previous client secret keeps working after a rotation (default for rotate-secret).'),
  TOKEN_RATE_LIMIT_PER_CLIENT: integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one client_id may make to /token; then 429 with Retry-After.'),
  TOKEN_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /token; then 429 with Retry-After.'),
  RATE_LIMIT_WINDOW: duration(1, 3600).default(60).describe('The window of the token endpoint rate limits.'),
});

export type RawConfig = z.output<typeof configSchema>;

export interface Config {
  port: number;
  host: string;
  issuer: string;
  databaseUrl: string | undefined;
  databaseSchema: string;
  databasePoolMax: number;
  dataDir: string;
  keyEncryptionSecret: string | undefined;
  logLevel: RawConfig['LOG_LEVEL'];
  trustProxy: boolean;
  bodyLimit: number;
  requestTimeoutSeconds: number;
  shutdownTimeoutSeconds: number;
  accessTokenTtl: number;
  idTokenTtl: number;
  authorizationCodeTtl: number;
  refreshTokenIdleTtl: number;
  refreshTokenAbsoluteTtl: number;
  adminTokens: string[];
  initialAccessTokens: string[];
  clientsFile: string | undefined;
  clientCacheSize: number;
  clientCacheTtl: number;
  clientSecretRotationOverlap: number;
  tokenRateLimitPerClient: number;
  tokenRateLimitPerIp: number;
  rateLimitWindow: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration from an environment; throws ConfigError listing every problem, one per line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = configSchema.safeParse(input);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.') || '(environment)'}: ${issue.message}`);
    }
  }
  if (parsed.success) {
    const c = parsed.data;
    if (c.DATABASE_URL && !c.KEY_ENCRYPTION_SECRET) {
      problems.push('KEY_ENCRYPTION_SECRET: is required when DATABASE_URL is set (every instance sharing the database must use the same secret)');
    }
    if (c.REFRESH_TOKEN_IDLE_TTL > c.REFRESH_TOKEN_ABSOLUTE_TTL) {
      problems.push('REFRESH_TOKEN_IDLE_TTL: must not exceed REFRESH_TOKEN_ABSOLUTE_TTL');
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const c = parsed.data;
  return {
    port: c.PORT,
    host: c.HOST,
    issuer: c.ISSUER ?? `http://localhost:${c.PORT}`,
    databaseUrl: c.DATABASE_URL,
    databaseSchema: c.DATABASE_SCHEMA,
    databasePoolMax: c.DATABASE_POOL_MAX,
    dataDir: c.DATA_DIR,
    keyEncryptionSecret: c.KEY_ENCRYPTION_SECRET,
    logLevel: c.LOG_LEVEL,
    trustProxy: c.TRUST_PROXY,
    bodyLimit: c.BODY_LIMIT,
    requestTimeoutSeconds: c.REQUEST_TIMEOUT,
    shutdownTimeoutSeconds: c.SHUTDOWN_TIMEOUT,
    accessTokenTtl: c.ACCESS_TOKEN_TTL,
    idTokenTtl: c.ID_TOKEN_TTL,
    authorizationCodeTtl: c.AUTHORIZATION_CODE_TTL,
    refreshTokenIdleTtl: c.REFRESH_TOKEN_IDLE_TTL,
    refreshTokenAbsoluteTtl: c.REFRESH_TOKEN_ABSOLUTE_TTL,
    adminTokens: c.ADMIN_TOKENS ?? [],
    initialAccessTokens: c.INITIAL_ACCESS_TOKEN ?? [],
    clientsFile: c.CLIENTS_FILE,
    clientCacheSize: c.CLIENT_CACHE_SIZE,
    clientCacheTtl: c.CLIENT_CACHE_TTL,
    clientSecretRotationOverlap: c.CLIENT_SECRET_ROTATION_OVERLAP,
    tokenRateLimitPerClient: c.TOKEN_RATE_LIMIT_PER_CLIENT,
    tokenRateLimitPerIp: c.TOKEN_RATE_LIMIT_PER_IP,
    rateLimitWindow: c.RATE_LIMIT_WINDOW,
  };
}

/** The documentation rows of the configuration, for `latchkey config` and the README table. */
export function configDocumentation(): Array<{ name: string; default: string; description: string }> {
  return Object.entries(configSchema.shape).map(([name, field]) => {
    const def = (field as unknown as { def?: { defaultValue?: unknown } }).def?.defaultValue;
    return {
      name,
      default: def === undefined ? '' : String(def),
      description: field.description ?? '',
    };
  });
}
