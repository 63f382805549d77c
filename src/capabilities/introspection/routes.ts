import type { FastifyPluginAsync } from 'fastify';
import { ClientAuthenticationFailed } from '../../oauth/client-auth/authenticate.js';
import type { CapabilityContext } from '../../server/context.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { clientAuthInput, noStore } from '../../server/http/forms.js';
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
      clientRateLimit: limiter.client('introspection', config.introspectionRateLimitPerClient, ctx.clock),
    };

    app.post('/introspect', { preHandler: limit }, async (req, reply) => {
      noStore(reply);
      const started = performance.now();
      try {
        // The answer depends on Accept (RFC 9701 §4).
        reply.header('Vary', 'Accept');
        const { response, jwt } = await introspect({ ...clientAuthInput(req), accept: req.headers.accept }, deps);
        services.metrics.introspections.inc({ result: response.active ? 'active' : 'inactive', format: jwt === undefined ? 'json' : 'jwt' });
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
