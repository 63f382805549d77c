import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ClientAuthenticationFailed, supportedAuthMethods } from '../../oauth/client-auth/authenticate.js';
import { toHttpError } from './errors.js';
import { auditEventOf } from '../../oauth/token-endpoint/grant.js';
import { handleTokenRequest, type TokenEndpointDeps } from '../../oauth/token-endpoint/endpoint.js';
import type { GrantRegistry } from '../../oauth/token-endpoint/registry.js';
import type { AppContext } from '../context.js';
import type { Services } from '../context.js';
import { requestAuditFields } from './audit-fields.js';
import { clientAuthInput, noStore } from './forms.js';
import { allowCors, clientAuthenticatingCors } from './cors.js';
import { createRateLimiter } from './rate-limit.js';

/** Discovery members of the token endpoint (RFC 8414 §2): its URL, the grant types it serves, client authentication. */
export function tokenEndpointMetadata(services: Services, grants: GrantRegistry) {
  const authMethods = supportedAuthMethods();
  return () => ({
    token_endpoint: services.endpoints.token,
    grant_types_supported: grants.grantTypes(),
    token_endpoint_auth_methods_supported: authMethods.methods,
    token_endpoint_auth_signing_alg_values_supported: authMethods.signingAlgs,
  });
}

/**
 * POST /token, generic over the registered grants: it counts, audits and times every request
 * the same way, with what the grant reported (its audit events, its refusal's event).
 */
export function tokenEndpointRoutes(context: AppContext, services: Services, grants: GrantRegistry): FastifyPluginAsync {
  const { config, audit } = context;
  return async (app) => {
    // Per IP and the back-off after failed client authentications before anything is read;
    // per client once the client has authenticated (src/oauth/client-auth/client-rate-limit.ts).
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: context.metrics });
    const limit = limiter.endpoint('token', { perIp: config.tokenRateLimitPerIp, authBackoff: services.authBackoff });
    const deps: TokenEndpointDeps = {
      ...services.authDeps, grants, clientRateLimit: limiter.client('token', config.tokenRateLimitPerClient, context.clock),
    };

    const { tokensIssued, perClient } = services.metrics;
    const issued = perClient
      ? (labels: { grant_type: string; outcome: string }, clientId: string) => tokensIssued.inc({ ...labels, client_id: clientId })
      : (labels: { grant_type: string; outcome: string }) => tokensIssued.inc(labels);
    const record = (event: { event: string; fields: Record<string, unknown> }, req: FastifyRequest) =>
      audit.record(event.event, { ...event.fields, ...requestAuditFields(req) });

    const cors = allowCors(app, ['/token'], clientAuthenticatingCors(services.clients));
    app.post('/token', { preHandler: limit, onSend: cors }, async (req, reply) => {
      noStore(reply);
      const started = performance.now();
      const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      const requested = typeof body.grant_type === 'string' ? body.grant_type : '';
      const grantLabel = grants.has(requested) ? requested : 'unsupported';
      try {
        const result = await handleTokenRequest(clientAuthInput(req), deps);
        issued({ grant_type: result.grantType, outcome: 'success' }, result.client.client.clientId);
        audit.record('token.issued', {
          ...result.issued.details,
          client_id: result.client.client.clientId,
          sub: result.issued.sub,
          scope: result.issued.scope,
          jti: result.issued.jti,
          grant_type: result.grantType,
          ...requestAuditFields(req),
        });
        for (const event of result.audit ?? []) record(event, req);
        return reply.code(200).send(result.response);
      } catch (err) {
        if (err instanceof ClientAuthenticationFailed) services.clientAuthFailed(err, { ...requestAuditFields(req), endpoint: 'token' });
        const refusal = auditEventOf(err);
        if (refusal) record(refusal, req);
        issued({ grant_type: grantLabel, outcome: toHttpError(err as Error).error }, '-');
        throw err;
      } finally {
        services.metrics.tokenRequestDuration.observe({ grant_type: grantLabel }, (performance.now() - started) / 1000);
      }
    });
  };
}
