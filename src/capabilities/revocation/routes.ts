import type { FastifyPluginAsync } from 'fastify';
import { ClientAuthenticationFailed } from '../../oauth/client-auth/authenticate.js';
import type { CapabilityContext } from '../../server/context.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { clientAuthInput, noStore } from '../../server/http/forms.js';
import { allowCors, clientAuthenticatingCors } from '../../server/http/cors.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { revoke, type RevocationDeps } from './revoke.js';

/** POST /revoke (RFC 7009). */
export function revocationRoutes(ctx: CapabilityContext): FastifyPluginAsync {
  const { config, services, audit } = ctx;
  return async (app) => {
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: ctx.metrics });
    const limit = limiter.endpoint('revocation', { perIp: config.revocationRateLimitPerIp, authBackoff: services.authBackoff });
    const deps: RevocationDeps = {
      ...services.authDeps,
      ...services.accessTokens,
      denylistAccessToken: services.denylistAccessToken,
      findRefreshToken: (hash) => services.refreshTokens.store.find(hash),
      revokeGrant: services.revokeGrant,
      clientRateLimit: limiter.client('revocation', config.revocationRateLimitPerClient, ctx.clock),
    };

    const cors = allowCors(app, ['/revoke'], clientAuthenticatingCors(services.clients));
    app.post('/revoke', { preHandler: limit, onSend: cors }, async (req, reply) => {
      noStore(reply);
      try {
        const { caller, outcome } = await revoke(clientAuthInput(req), deps);
        if (outcome.revoked) {
          services.metrics.revocations.inc({ kind: outcome.kind });
          const id = outcome.kind === 'access_token' ? { jti: outcome.jti } : { grant_id: outcome.familyId };
          audit.record('token.revoked', { client_id: caller.client.clientId, ...id, kind: outcome.kind, ...requestAuditFields(req) });
        }
        // RFC 7009 §2.2: 200 with an empty body.
        return reply.code(200).send();
      } catch (err) {
        if (err instanceof ClientAuthenticationFailed) services.clientAuthFailed(err, { ...requestAuditFields(req), endpoint: 'revocation' });
        throw err;
      }
    });
  };
}
