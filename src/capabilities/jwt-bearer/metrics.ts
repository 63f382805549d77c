import type { Registry } from 'prom-client';
import { RequestCounter } from '../../platform/observability/request-metrics.js';

/** JWT bearer grant SLIs: requests by the trusted issuer that made the assertion and their outcome. */
export interface JwtBearerMetrics {
  grants: RequestCounter<'issuer' | 'outcome'>;
}

export function jwtBearerMetrics(registry: Registry): JwtBearerMetrics {
  return {
    grants: new RequestCounter({
      name: 'latchkey_jwt_bearer_grants_total',
      help: 'JWT bearer grant requests (RFC 7523 §2.1) by issuer (the trusted issuer\'s configured name; unknown before the assertion is verified) and outcome (issued, or the error code).',
      labelNames: ['issuer', 'outcome'],
      registers: [registry],
    }),
  };
}
