import type { FastifyPluginAsync } from 'fastify';
import { ClientAuthenticationFailed } from '../../oauth/client-auth/authenticate.js';
import { FixedWindowCounter } from '../../platform/fixed-window.js';
import type { CapabilityContext } from '../../server/context.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { clientAuthInput, noStore } from '../../server/http/forms.js';
import { allowCors, clientAuthenticatingCors } from '../../server/http/cors.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { INTROSPECTION_JWT_MEDIA_TYPE, introspect, type IntrospectionDeps } from './introspect.js';

/** POST /introspect (RFC 7662), JSON or a signed JWT on request (RFC 9701). */
export function introspectionRoutes(ctx: CapabilityContext): FastifyPluginAsync {
  const { config, services } = ctx;
  return async (app) => {
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: ctx.metrics });
    const limit = limiter.endpoint('introspection', { perIp: config.introspectionRateLimitPerIp, authBackoff: services.authBackoff });
    const deps: IntrospectionDeps = {
      ...services.authDeps, ...services.accessTokens, isRevoked: services.isRevoked, userActive: services.userActive,
      findRefreshToken: (hash) => services.refreshTokens.store.find(hash),
      clientRateLimit: limiter.client('introspection', config.introspectionRateLimitPerClient, ctx.clock),
    };
    const { introspections, introspectionsInactive, perClient } = services.metrics;
    // A refusal is audited once per caller and RATE_LIMIT_WINDOW: a resource server left unmarked
    // may introspect thousands of tokens a second, and the metric counts every refusal anyway.
    const refusalsAudited = new FixedWindowCounter(config.rateLimitWindow * 1000);

    const cors = allowCors(app, ['/introspect'], clientAuthenticatingCors(services.clients));
    app.post('/introspect', { preHandler: limit, onSend: cors }, async (req, reply) => {
      noStore(reply);
      const started = performance.now();
      try {
        // The answer depends on Accept (RFC 9701 §4).
        reply.header('Vary', 'Accept');
        const { caller, response, jwt, refused, reason } = await introspect({ ...clientAuthInput(req), accept: req.headers.accept }, deps);
        const labels = { result: refused ? 'refused' : response.active ? 'active' : 'inactive', format: jwt === undefined ? 'json' : 'jwt' };
        introspections.inc(perClient ? { ...labels, client_id: caller.client.clientId } : labels);
        // Per calling client and minute, with its active / inactive / refused answers counted.
        ctx.audit.tally('token.introspected', { client_id: caller.client.clientId }, { outcome: labels.result });
        if (reason !== undefined) introspectionsInactive.inc({ reason });
        if (refused && refusalsAudited.add(caller.client.clientId, ctx.clock.now().getTime()).count === 1) {
          ctx.audit.record('introspection.refused', {
            client_id: caller.client.clientId, token_client_id: refused.clientId,
            ...(refused.jti !== undefined ? { jti: refused.jti } : {}), ...(refused.grantId !== undefined ? { grant_id: refused.grantId } : {}),
            ...requestAuditFields(req),
          });
        }
        if (jwt !== undefined) return reply.code(200).header('Content-Type', INTROSPECTION_JWT_MEDIA_TYPE).send(jwt);
        return reply.code(200).send(response);
      } catch (err) {
        if (err instanceof ClientAuthenticationFailed) services.clientAuthFailed(err, { ...requestAuditFields(req), endpoint: 'introspection' });
        throw err;
      } finally {
        services.metrics.introspectionDuration.observe((performance.now() - started) / 1000);
      }
    });
  };
}
