import { RequestCounter } from '../../platform/observability/request-metrics.js';
import type { Capability } from '../../server/context.js';
import { tokenExchangeSettings } from './settings.js';
import { TOKEN_EXCHANGE, tokenExchangeGrant } from './token-exchange-grant.js';

/** Token exchange (RFC 8693): a client trades a token it holds for one of its own, delegated or impersonating. */
export const tokenExchange: Capability = {
  name: 'token-exchange',
  settings: tokenExchangeSettings,
  grantTypes: [TOKEN_EXCHANGE],
  register(ctx) {
    const { services } = ctx;
    // On the token path: the request-path counter (no per-call label validation).
    const exchanges = new RequestCounter({
      name: 'latchkey_token_exchanges_total',
      help: 'Token exchanges (RFC 8693) by subject_token_type (access_token, jwt, id_token, other), the client\'s mode (delegation, impersonation) and outcome (issued, or the error code: invalid_request, invalid_scope, invalid_target, …).',
      labelNames: ['subject_token_type', 'mode', 'outcome'], registers: [ctx.metrics.registry],
    });
    return {
      grants: [tokenExchangeGrant({
        ...services.tokenIssuing, isRevoked: services.isRevoked, clients: services.clients, userActive: services.userActive,
        externalTokens: services.externalTokens, maxDelegationDepth: ctx.config.tokenExchangeMaxDelegationDepth,
        counted: (labels) => exchanges.inc(labels),
      })],
    };
  },
};
