import { isIP } from 'node:net';
import { z } from 'zod';
import { SIGNING_ALGS, type SigningAlg } from '../keys/keyring.js';
import { isHttpsOrLoopbackHttp } from '../uris.js';

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

/**
 * Which proxies' X-Forwarded-For to believe (Fastify's trustProxy): false, or the proxies'
 * addresses / CIDR ranges (and proxy-addr's names loopback, linklocal, uniquelocal): the client
 * address is then the nearest one in X-Forwarded-For that is not a trusted proxy. `true`
 * believes every hop, so the client names its own address and every per-IP limit is its to
 * choose. (A hop count is not offered: Fastify 5 refuses it, as it cannot check the peer.)
 */
const trustProxy = z.string().transform((text, ctx): boolean | string[] => {
  const value = text.trim().toLowerCase();
  if (['false', '0', 'no'].includes(value)) return false;
  if (['true', '1', 'yes'].includes(value)) return true;
  const entries = value.split(',').map((e) => e.trim());
  const valid = (e: string) => ['loopback', 'linklocal', 'uniquelocal'].includes(e) || (() => {
    const [address, bits, extra] = e.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  })();
  if (entries.length === 0 || !entries.every(valid)) {
    ctx.addIssue({ code: 'custom', message: `must be false, true, or comma-separated proxy addresses/CIDRs (got "${text}")` });
    return z.NEVER;
  }
  return entries;
});

/** A JSON object of scope → description, e.g. {"api:read":"Read your invoices"}. */
const scopeDescriptions = z.string().transform((text, ctx) => {
  let value: unknown;
  try { value = JSON.parse(text); } catch { value = undefined; }
  if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string' && v.length <= 200)) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object mapping scope names to descriptions of at most 200 characters' });
    return z.NEVER;
  }
  return value as Record<string, string>;
});

/** RFC 8414 §2: the issuer is an https URL with no query or fragment; http is accepted on loopback only. */
const issuer = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `must be an absolute URL such as https://id.example.com (got "${text}")` });
    return z.NEVER;
  }
  if (!isHttpsOrLoopbackHttp(url)) {
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

/** JWS algorithms the key manager can generate keys for (RFC 7518 §3.1, RFC 8037 §3.1). */
export const SUPPORTED_SIGNING_ALGS = SIGNING_ALGS;

const signingAlgs = z.string().transform((text, ctx) => {
  const algs = text.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const unknown = algs.filter((a) => !(SUPPORTED_SIGNING_ALGS as readonly string[]).includes(a));
  if (algs.length === 0 || unknown.length > 0) {
    ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${SUPPORTED_SIGNING_ALGS.join(', ')} (got "${text}")` });
    return z.NEVER;
  }
  if (new Set(algs).size !== algs.length) {
    ctx.addIssue({ code: 'custom', message: `must not name an algorithm twice (got "${text}")` });
    return z.NEVER;
  }
  return algs as SigningAlg[];
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
  ACCESS_LOG: z.enum(['all', 'errors', 'off']).default('errors').describe('One log line per HTTP request: for every request (all), for 4xx/5xx answers only (errors), or none. Successful requests are always counted in the metrics, and security events are audit events regardless.'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
  TRUST_PROXY: trustProxy.default(false).describe('Which reverse proxies to believe about the client address (X-Forwarded-For) and scheme: false, or the proxies\' addresses/CIDRs, comma-separated (loopback, linklocal, uniquelocal allowed) — the client is the nearest address that is not one of them. true believes every hop: the client can then pick its own address and so escape every per-IP limit.'),
  BODY_LIMIT: integer(1024, 10 * 1024 * 1024).default(64 * 1024).describe('Largest accepted request body in bytes; larger bodies get 413.'),
  REQUEST_TIMEOUT: duration(1, 600).default(30).describe('Time a client has to send a whole request before the connection is closed.'),
  SHUTDOWN_TIMEOUT: duration(1, 600).default(10).describe('On SIGTERM/SIGINT: time allowed to drain in-flight requests before the process exits anyway.'),
  ACCESS_TOKEN_TTL: duration(10, 86400).default(600).describe('Lifetime of access tokens (RFC 9068 JWTs).'),
  ID_TOKEN_TTL: duration(10, 86400).default(3600).describe('Lifetime of ID tokens.'),
  AUTHORIZATION_CODE_TTL: duration(5, 600).default(60).describe('Lifetime of authorization codes.'),
  BACKCHANNEL_LOGOUT_TIMEOUT: duration(1, 60).default(5).describe('How long a client\'s backchannel_logout_uri has to answer a logout token (OpenID Connect Back-Channel Logout); one attempt, not retried.'),
  PAR_TTL: duration(10, 600).default(60).describe('Lifetime of the request_uri of a pushed authorization request (RFC 9126); it is used once.'),
  INTERACTION_TTL: duration(60, 86400).default(1800).describe('Time a browser has to sign in and consent before the pending authorization request expires.'),
  REFRESH_TOKEN_IDLE_TTL: duration(60, 400 * 86400).default(14 * 86400).describe('Refresh token idle lifetime (reset by each rotation).'),
  REFRESH_TOKEN_ABSOLUTE_TTL: duration(60, 400 * 86400).default(90 * 86400).describe('Refresh token family absolute lifetime (never extended).'),
  // RFC 9700 §4.14.2: a public client's refresh token is a bearer credential nothing else binds, so it lives shorter.
  REFRESH_TOKEN_PUBLIC_IDLE_TTL: duration(60, 400 * 86400).default(7 * 86400).describe('Refresh token idle lifetime for public clients (token_endpoint_auth_method none).'),
  REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL: duration(60, 400 * 86400).default(30 * 86400).describe('Refresh token family absolute lifetime for public clients.'),
  REFRESH_TOKEN_GRACE_PERIOD: duration(0, 300).default(30).describe('Time a rotated refresh token presented again still returns its one successor (concurrent tabs, lost responses) instead of revoking the family; 0 disables.'),
  CLEANUP_INTERVAL: duration(10, 86400).default(600).describe('Period of the job deleting expired codes, refresh tokens and families, denylist entries, assertion jtis, ended or expired SSO sessions and idle sign-in throttle counters.'),
  CLEANUP_BATCH_SIZE: integer(10, 100_000).default(1000).describe('Rows the cleanup job deletes per statement (FOR UPDATE SKIP LOCKED, so instances share the work).'),
  // OWASP Password Storage Cheat Sheet's argon2id floor: m=19 MiB, t=2, p=1 (~20 ms a hash on one core here).
  ARGON2_MEMORY_KIB: integer(8192, 4 * 1024 * 1024).default(19456).describe('argon2id memory cost for user passwords, in KiB. Hashes made with other parameters are upgraded at the next successful login.'),
  ARGON2_TIME_COST: integer(1, 20).default(2).describe('argon2id iterations for user passwords.'),
  ARGON2_PARALLELISM: integer(1, 16).default(1).describe('argon2id lanes for user passwords.'),
  SESSION_IDLE_TTL: duration(60, 30 * 86400).default(1800).describe('SSO session idle lifetime: a session unused this long ends (slides with each use).'),
  SESSION_ABSOLUTE_TTL: duration(300, 400 * 86400).default(36000).describe('SSO session absolute lifetime from sign-in; never extended.'),
  SCOPE_DESCRIPTIONS: scopeDescriptions.optional().describe('JSON object of scope → plain-language description shown on the consent page; adds to and overrides the built-in ones for openid, profile, email, phone, address, offline_access.'),
  AUDIT_RETENTION: duration(86400, 10 * 365 * 86400).default(90 * 86400).describe('How long audit events are kept in the audit_events table; older ones are deleted hourly in batches.'),
  AUDIT_DB_EXCLUDE: z.string().regex(/^(none|[a-z_.]+(:[A-Za-z0-9_.:-]+)?(,[a-z_.]+(:[A-Za-z0-9_.:-]+)?)*)$/, 'must be none, or comma-separated event names, each optionally :grant_type (e.g. token.issued:client_credentials)').default('token.issued:client_credentials').describe('Audit events written to the log only, not to the audit_events table: comma-separated event names, each optionally narrowed to one grant type with :grant_type; none stores every event. The default keeps machine-to-machine issuance (thousands a second, see Measured) out of the table; every other event, user token issuance included, is stored.'),
  DEMO: boolean.default(true).describe('Embedded store with a loopback ISSUER (localhost, 127.0.0.1, [::1]) only: on the very first start (no users, no clients) create a demo user (password printed once) and the public demo client, and serve the try-it page at /try while that client exists.'),
  PASSWORD_MIN_LENGTH: integer(8, 128).default(12).describe('Shortest password accepted when one is set (NIST SP 800-63B: length, no composition rules).'),
  SIGNING_ALGS: signingAlgs.default(['ES256']).describe('Comma-separated JWS algorithms to keep a signing key for, one active key each: ES256, EdDSA (Ed25519), RS256, PS256 (RSA 2048). The first is the default.'),
  KEY_ROTATION_INTERVAL: duration(3600, 365 * 86400).default(30 * 86400).describe('How long a key signs before the scheduled rotation promotes the next one.'),
  KEY_PUBLISH_AHEAD: duration(60, 90 * 86400).default(86400).describe('Least time a new key is published in the JWKS before a scheduled rotation lets it sign; at least JWKS_MAX_AGE + KEY_CHECK_INTERVAL.'),
  JWKS_MAX_AGE: duration(0, 7 * 86400).default(3600).describe('Cache-Control max-age of the JWKS and discovery documents.'),
  KEY_RETIRE_LEEWAY: duration(0, 7 * 86400).default(300).describe('Extra time a retired key stays published after the longest token it can have signed expired (verifier clock skew).'),
  KEY_CHECK_INTERVAL: duration(1, 3600).default(60).describe('Period of the timer that reloads keys and performs due rotations and removals (NOTIFY makes changes visible sooner).'),
  METRICS_TOKEN: credentialList.optional().describe('Bearer credential(s) required to read /metrics, comma-separated, each ≥ 32 characters (compared in constant time; 401 otherwise). Unset: /metrics is open to whoever reaches it.'),
  METRICS_PORT: integer(0, 65535).optional().describe('Serve /metrics only on this separate port (bound to HOST; 0 picks a free port) and not on PORT. Unset: /metrics is on PORT.'),
  METRICS_PER_CLIENT: boolean.default(false).describe('Add a client_id label to latchkey_tokens_issued_total (the authenticated client on success, - on failure): one series per client, grant and outcome, so only with a bounded number of clients.'),
  ADMIN_TOKENS: credentialList.optional().describe('Bearer credential(s) of the admin API under /admin, comma-separated, each ≥ 32 characters. Unset: the admin API is off (404).'),
  INITIAL_ACCESS_TOKEN: credentialList.optional().describe('Initial access token(s) for Dynamic Client Registration (RFC 7591) at /register, comma-separated, each ≥ 32 characters. Unset: registration is off (404, not advertised).'),
  CLIENTS_FILE: z.string().min(1).optional().describe('Path of a JSON or YAML file of clients upserted at start-up (secrets from environment variables named by client_secret_env).'),
  CLIENT_CACHE_SIZE: integer(1, 1_000_000).default(10000).describe('Most clients held in the in-memory client cache (least recently used dropped first).'),
  CLIENT_CACHE_TTL: duration(1, 86400).default(300).describe('Longest a cached client is used before it is re-read, even without a change notification.'),
  VERIFIED_TOKEN_CACHE_SIZE: integer(0, 1_000_000).default(10000).describe('Most access tokens whose signature is remembered as verified (introspection, revocation and UserInfo check a token\'s signature once; key trust, claims and revocation every time). 0 turns the cache off.'),
  CLIENT_SECRET_ROTATION_OVERLAP: duration(0, 90 * 86400).default(86400).describe('How long the previous client secret keeps working after a rotation (default for rotate-secret).'),
  TOKEN_RATE_LIMIT_PER_CLIENT: integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one client may make to /token, counted once it has authenticated; then 429 with Retry-After.'),
  TOKEN_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /token; then 429 with Retry-After.'),
  INTROSPECTION_RATE_LIMIT_PER_CLIENT: integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one client may make to /introspect (resource servers introspect per API call), counted once it has authenticated; then 429 with Retry-After.'),
  INTROSPECTION_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /introspect.'),
  REVOCATION_RATE_LIMIT_PER_CLIENT: integer(1, 10_000_000).default(600).describe('Requests per RATE_LIMIT_WINDOW one client may make to /revoke, counted once it has authenticated.'),
  REVOCATION_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /revoke.'),
  REGISTRATION_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(60).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /register and /register/:client_id together (RFC 7591, RFC 7592).'),
  REGISTRATION_RATE_LIMIT_PER_CLIENT: integer(1, 10_000_000).default(60).describe('Requests per RATE_LIMIT_WINDOW to one client\'s configuration endpoint /register/:client_id (RFC 7592), counted once its registration access token matched.'),
  LOGIN_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(300).describe('Sign-in attempts (POST /login) per RATE_LIMIT_WINDOW from one IP address, whatever their outcome (bounds the argon2 work one address can cause; failures are also throttled per account and IP, see Sign-in).'),
  LOGIN_RATE_LIMIT_PER_LOGIN: integer(1, 10_000_000).default(30).describe('Sign-in attempts (POST /login) per RATE_LIMIT_WINDOW for one submitted login name from one IP address (the per-account throttle with its growing delay works across addresses).'),
  AUTHORIZE_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(3000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /authorize and /interaction; then 429 with Retry-After (an HTML page).'),
  AUTHORIZE_RATE_LIMIT_PER_CLIENT: integer(0, 10_000_000).default(0).describe('Requests per RATE_LIMIT_WINDOW to /authorize naming one client_id; 0 (the default): no such limit. /authorize is unauthenticated, so anyone can spend a client\'s allowance and lock its users out: set it only to shed one client\'s load.'),
  PAR_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /par.'),
  PAR_RATE_LIMIT_PER_CLIENT: integer(1, 10_000_000).default(600).describe('Requests per RATE_LIMIT_WINDOW one client may make to /par, counted once it has authenticated.'),
  USERINFO_RATE_LIMIT_PER_IP: integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /userinfo.'),
  CLIENT_AUTH_FAILURE_LIMIT: integer(1, 10_000_000).default(20).describe('Failed client authentications (at /token, /introspect, /revoke, /par) one IP address may have per RATE_LIMIT_WINDOW; after that every client-authenticating request from it gets 429 until the window ends.'),
  RATE_LIMIT_WINDOW: duration(1, 3600).default(60).describe('The window of every rate limit (fixed windows, counted in memory per instance).'),
  CONNECTION_TIMEOUT: duration(1, 3600).default(120).describe('A connection on which nothing is received or sent for this long is closed (socket inactivity).'),
  KEEP_ALIVE_TIMEOUT: duration(1, 3600).default(72).describe('How long an idle keep-alive connection is kept open after a response; keep it above the idle timeout of a load balancer in front.'),
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
  accessLog: RawConfig['ACCESS_LOG'];
  trustProxy: boolean | string[];
  bodyLimit: number;
  requestTimeoutSeconds: number;
  shutdownTimeoutSeconds: number;
  accessTokenTtl: number;
  idTokenTtl: number;
  authorizationCodeTtl: number;
  parTtl: number;
  backchannelLogoutTimeout: number;
  interactionTtl: number;
  demo: boolean;
  refreshTokenIdleTtl: number;
  refreshTokenAbsoluteTtl: number;
  refreshTokenPublicIdleTtl: number;
  refreshTokenPublicAbsoluteTtl: number;
  refreshTokenGracePeriod: number;
  cleanupInterval: number;
  cleanupBatchSize: number;
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  passwordMinLength: number;
  sessionIdleTtl: number;
  sessionAbsoluteTtl: number;
  auditRetention: number;
  auditDbExclude: string[];
  scopeDescriptions: Record<string, string>;
  signingAlgs: SigningAlg[];
  keyRotationInterval: number;
  keyPublishAhead: number;
  jwksMaxAge: number;
  keyRetireLeeway: number;
  keyCheckInterval: number;
  metricsTokens: string[];
  metricsPort: number | undefined;
  metricsPerClient: boolean;
  adminTokens: string[];
  initialAccessTokens: string[];
  clientsFile: string | undefined;
  clientCacheSize: number;
  clientCacheTtl: number;
  verifiedTokenCacheSize: number;
  clientSecretRotationOverlap: number;
  tokenRateLimitPerClient: number;
  tokenRateLimitPerIp: number;
  rateLimitWindow: number;
  introspectionRateLimitPerClient: number;
  introspectionRateLimitPerIp: number;
  revocationRateLimitPerClient: number;
  revocationRateLimitPerIp: number;
  registrationRateLimitPerIp: number;
  registrationRateLimitPerClient: number;
  loginRateLimitPerIp: number;
  loginRateLimitPerLogin: number;
  authorizeRateLimitPerIp: number;
  authorizeRateLimitPerClient: number;
  parRateLimitPerIp: number;
  parRateLimitPerClient: number;
  userinfoRateLimitPerIp: number;
  clientAuthFailureLimit: number;
  connectionTimeoutSeconds: number;
  keepAliveTimeoutSeconds: number;
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
    if (c.SESSION_IDLE_TTL > c.SESSION_ABSOLUTE_TTL) {
      problems.push('SESSION_IDLE_TTL: must not exceed SESSION_ABSOLUTE_TTL');
    }
    if (c.REFRESH_TOKEN_IDLE_TTL > c.REFRESH_TOKEN_ABSOLUTE_TTL) {
      problems.push('REFRESH_TOKEN_IDLE_TTL: must not exceed REFRESH_TOKEN_ABSOLUTE_TTL');
    }
    if (c.REFRESH_TOKEN_PUBLIC_IDLE_TTL > c.REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL) {
      problems.push('REFRESH_TOKEN_PUBLIC_IDLE_TTL: must not exceed REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL');
    }
    // A new key must be in every verifier's cached JWKS before it signs: an instance that missed
    // the NOTIFY serves the old JWKS until its next check, and a verifier keeps it for max-age.
    if (c.KEY_PUBLISH_AHEAD < c.JWKS_MAX_AGE + c.KEY_CHECK_INTERVAL) {
      problems.push(`KEY_PUBLISH_AHEAD: must be at least JWKS_MAX_AGE + KEY_CHECK_INTERVAL (${c.JWKS_MAX_AGE + c.KEY_CHECK_INTERVAL}s), so every cached JWKS holds a key before it signs`);
    }
    if (c.METRICS_PORT !== undefined && c.METRICS_PORT !== 0 && c.METRICS_PORT === c.PORT) {
      problems.push('METRICS_PORT: must differ from PORT (unset it to serve /metrics on PORT)');
    }
    if (c.KEY_ROTATION_INTERVAL < c.KEY_PUBLISH_AHEAD) {
      problems.push('KEY_ROTATION_INTERVAL: must not be shorter than KEY_PUBLISH_AHEAD (the next key could never be published long enough)');
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
    accessLog: c.ACCESS_LOG,
    trustProxy: c.TRUST_PROXY,
    bodyLimit: c.BODY_LIMIT,
    requestTimeoutSeconds: c.REQUEST_TIMEOUT,
    shutdownTimeoutSeconds: c.SHUTDOWN_TIMEOUT,
    accessTokenTtl: c.ACCESS_TOKEN_TTL,
    idTokenTtl: c.ID_TOKEN_TTL,
    authorizationCodeTtl: c.AUTHORIZATION_CODE_TTL,
    parTtl: c.PAR_TTL,
    backchannelLogoutTimeout: c.BACKCHANNEL_LOGOUT_TIMEOUT,
    interactionTtl: c.INTERACTION_TTL,
    demo: c.DEMO,
    refreshTokenIdleTtl: c.REFRESH_TOKEN_IDLE_TTL,
    refreshTokenAbsoluteTtl: c.REFRESH_TOKEN_ABSOLUTE_TTL,
    refreshTokenPublicIdleTtl: c.REFRESH_TOKEN_PUBLIC_IDLE_TTL,
    refreshTokenPublicAbsoluteTtl: c.REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL,
    refreshTokenGracePeriod: c.REFRESH_TOKEN_GRACE_PERIOD,
    cleanupInterval: c.CLEANUP_INTERVAL,
    cleanupBatchSize: c.CLEANUP_BATCH_SIZE,
    argon2: { memoryCost: c.ARGON2_MEMORY_KIB, timeCost: c.ARGON2_TIME_COST, parallelism: c.ARGON2_PARALLELISM },
    passwordMinLength: c.PASSWORD_MIN_LENGTH,
    sessionIdleTtl: c.SESSION_IDLE_TTL,
    sessionAbsoluteTtl: c.SESSION_ABSOLUTE_TTL,
    auditRetention: c.AUDIT_RETENTION,
    auditDbExclude: c.AUDIT_DB_EXCLUDE === 'none' ? [] : c.AUDIT_DB_EXCLUDE.split(','),
    scopeDescriptions: c.SCOPE_DESCRIPTIONS ?? {},
    signingAlgs: c.SIGNING_ALGS,
    keyRotationInterval: c.KEY_ROTATION_INTERVAL,
    keyPublishAhead: c.KEY_PUBLISH_AHEAD,
    jwksMaxAge: c.JWKS_MAX_AGE,
    keyRetireLeeway: c.KEY_RETIRE_LEEWAY,
    keyCheckInterval: c.KEY_CHECK_INTERVAL,
    metricsTokens: c.METRICS_TOKEN ?? [],
    metricsPort: c.METRICS_PORT,
    metricsPerClient: c.METRICS_PER_CLIENT,
    adminTokens: c.ADMIN_TOKENS ?? [],
    initialAccessTokens: c.INITIAL_ACCESS_TOKEN ?? [],
    clientsFile: c.CLIENTS_FILE,
    clientCacheSize: c.CLIENT_CACHE_SIZE,
    clientCacheTtl: c.CLIENT_CACHE_TTL,
    verifiedTokenCacheSize: c.VERIFIED_TOKEN_CACHE_SIZE,
    clientSecretRotationOverlap: c.CLIENT_SECRET_ROTATION_OVERLAP,
    tokenRateLimitPerClient: c.TOKEN_RATE_LIMIT_PER_CLIENT,
    tokenRateLimitPerIp: c.TOKEN_RATE_LIMIT_PER_IP,
    rateLimitWindow: c.RATE_LIMIT_WINDOW,
    introspectionRateLimitPerClient: c.INTROSPECTION_RATE_LIMIT_PER_CLIENT,
    introspectionRateLimitPerIp: c.INTROSPECTION_RATE_LIMIT_PER_IP,
    revocationRateLimitPerClient: c.REVOCATION_RATE_LIMIT_PER_CLIENT,
    revocationRateLimitPerIp: c.REVOCATION_RATE_LIMIT_PER_IP,
    registrationRateLimitPerIp: c.REGISTRATION_RATE_LIMIT_PER_IP,
    registrationRateLimitPerClient: c.REGISTRATION_RATE_LIMIT_PER_CLIENT,
    loginRateLimitPerIp: c.LOGIN_RATE_LIMIT_PER_IP,
    loginRateLimitPerLogin: c.LOGIN_RATE_LIMIT_PER_LOGIN,
    authorizeRateLimitPerIp: c.AUTHORIZE_RATE_LIMIT_PER_IP,
    authorizeRateLimitPerClient: c.AUTHORIZE_RATE_LIMIT_PER_CLIENT,
    parRateLimitPerIp: c.PAR_RATE_LIMIT_PER_IP,
    parRateLimitPerClient: c.PAR_RATE_LIMIT_PER_CLIENT,
    userinfoRateLimitPerIp: c.USERINFO_RATE_LIMIT_PER_IP,
    clientAuthFailureLimit: c.CLIENT_AUTH_FAILURE_LIMIT,
    connectionTimeoutSeconds: c.CONNECTION_TIMEOUT,
    keepAliveTimeoutSeconds: c.KEEP_ALIVE_TIMEOUT,
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
