import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * The token service's metrics. Labels are bounded: grant_type is a registered grant or
 * `unsupported`; outcome is `success` or an RFC error code; method an auth method or `unknown`.
 */
export interface OAuthMetrics {
  tokensIssued: Counter<'grant_type' | 'outcome'>;
  tokenRequestDuration: Histogram<'grant_type'>;
  introspections: Counter<'result'>;
  revocations: Counter<'kind'>;
  clientAuthFailures: Counter<'method'>;
}

const cache = new WeakMap<Registry, OAuthMetrics>();

/** One set per registry (the token routes and the rate limiter share it). */
export function oauthMetrics(registry: Registry): OAuthMetrics {
  let metrics = cache.get(registry);
  if (metrics) return metrics;
  metrics = {
    tokensIssued: new Counter({
      name: 'latchkey_tokens_issued_total',
      help: 'Token endpoint requests by grant type and outcome (success or the error code).',
      labelNames: ['grant_type', 'outcome'],
      registers: [registry],
    }),
    tokenRequestDuration: new Histogram({
      name: 'latchkey_token_request_duration_seconds',
      help: 'Time to handle a token request, by grant type.',
      labelNames: ['grant_type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    introspections: new Counter({
      name: 'latchkey_introspections_total',
      help: 'Introspection answers by result (active or inactive).',
      labelNames: ['result'],
      registers: [registry],
    }),
    revocations: new Counter({
      name: 'latchkey_revocations_total',
      help: 'Tokens revoked, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    clientAuthFailures: new Counter({
      name: 'latchkey_client_auth_failures_total',
      help: 'Failed client authentications by the method tried.',
      labelNames: ['method'],
      registers: [registry],
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}
