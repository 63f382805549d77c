import { z } from 'zod';
import { httpSettings } from '../config/core-settings.js';
import { boolean, defineSlice, duration, integer, optionalCredentialList, setting, type SliceValues } from '../config/settings.js';

export const loggingSettings = defineSlice({
  name: 'logging',
  settings: {
    accessLog: setting('ACCESS_LOG', z.enum(['all', 'errors', 'off']).default('errors').describe('One log line per HTTP request: for every request (all), for 4xx/5xx answers only (errors), or none. Successful requests are always counted in the metrics, and security events are audit events regardless.')),
    logLevel: setting('LOG_LEVEL', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.')),
  },
});
export type LoggingSettings = SliceValues<typeof loggingSettings>;

export const auditSettings = defineSlice({
  name: 'audit',
  settings: {
    auditRetention: setting('AUDIT_RETENTION', duration(86400, 10 * 365 * 86400).default(90 * 86400).describe('How long audit events are kept in the audit_events table; older ones are deleted hourly in batches.')),
    auditDbExclude: setting('AUDIT_DB_EXCLUDE', z.string().regex(/^(none|[a-z_.]+(:[A-Za-z0-9_.:-]+)?(,[a-z_.]+(:[A-Za-z0-9_.:-]+)?)*)$/, 'must be none, or comma-separated event names, each optionally :grant_type (e.g. token.issued:client_credentials)')
      .transform((text) => (text === 'none' ? [] : text.split(',')))
      .default(['token.issued:client_credentials'])
      .describe('Audit events written to the log one by one but not to the audit_events table: comma-separated event names, each optionally narrowed to one grant type with :grant_type; none stores every event. The table has them as one <event>.summary row per client, grant type and minute (count, first and last time and jti, scopes). The default keeps machine-to-machine issuance (thousands a second, see Measured) out of the table one by one; every other event, user token issuance included, is stored.')),
  },
});
export type AuditSettings = SliceValues<typeof auditSettings>;

export const metricsSettings = defineSlice({
  name: 'metrics',
  settings: {
    metricsTokens: setting('METRICS_TOKEN', optionalCredentialList.describe('Bearer credential(s) required to read /metrics, comma-separated, each ≥ 32 characters (compared in constant time; 401 otherwise). Without METRICS_PORT, /metrics is served on PORT only when this is set: never openly.')),
    metricsPort: setting('METRICS_PORT', integer(0, 65535).optional().describe('Serve /metrics, /healthz and /readyz on a separate listener at METRICS_HOST:METRICS_PORT (0 picks a free port); /metrics is then not on PORT. Unset: /metrics is on PORT with METRICS_TOKEN, and nowhere without it.')),
    metricsHost: setting('METRICS_HOST', z.string().min(1).default('127.0.0.1').describe('Address the METRICS_PORT listener binds: loopback by default; a private interface (or 0.0.0.0 in a container whose METRICS_PORT is not published) for a scraper elsewhere.')),
    metricsPerClient: setting('METRICS_PER_CLIENT', boolean.default(false).describe('Add a client_id label to latchkey_tokens_issued_total (the authenticated client on success, - on failure) and to latchkey_introspections_total (the client that asked): series per client, so only with a bounded number of clients.')),
  },
  requires: [httpSettings],
  check: (c) => (c.metricsPort !== undefined && c.metricsPort !== 0 && c.metricsPort === c.port
    ? ['METRICS_PORT: must differ from PORT (unset it to serve /metrics on PORT)']
    : []),
});
export type MetricsSettings = SliceValues<typeof metricsSettings>;
