import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { LatencyHistogram, RequestCounter } from './request-metrics.js';

/**
 * One registry per server instance (not prom-client's global one), so that several servers in
 * one process (tests, embedded use) never collide. Capabilities register their own metrics on
 * it through `metrics.registry`; names start with `latchkey_` and labels stay bounded.
 */
export interface Metrics {
  registry: Registry;
  httpRequestDuration: LatencyHistogram<'method' | 'route' | 'status_class'>;
  httpErrors: Counter<'route' | 'status'>;
  /** Requests refused with 429 by a rate limit (src/server/http/rate-limit.ts). */
  rateLimited: Counter<'endpoint' | 'limit'>;
  /** Admin API calls (operator actions), by route pattern, method and status: counted by the root onResponse hook. */
  adminRequests: RequestCounter<'route' | 'method' | 'status'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'latchkey_' });
  return {
    registry,
    httpRequestDuration: new LatencyHistogram({
      name: 'latchkey_http_request_duration_seconds',
      help: 'HTTP request latency by route template and status class.',
      labelNames: ['method', 'route', 'status_class'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    httpErrors: new Counter({
      name: 'latchkey_http_errors_total',
      help: 'Responses with a 4xx or 5xx status, by route template and status.',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'latchkey_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit, by endpoint and the limit exceeded (ip, client, login, auth_failures).',
      labelNames: ['endpoint', 'limit'],
      registers: [registry],
    }),
    adminRequests: new RequestCounter({
      name: 'latchkey_admin_requests_total',
      help: 'Admin API calls (operator actions) by route pattern (e.g. /admin/users/:login/sessions, never the raw URL), method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
  };
}
