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

/** The client a failed request named: client_id in the body, else the user of HTTP Basic (undecoded past the form encoding). */
function claimedClientId(req: FastifyRequest, body: Record<string, unknown>): string | undefined {
  if (typeof body.client_id === 'string' && body.client_id !== '') return body.client_id;
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return decoded.slice(0, colon);
  }
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
        const authFailed = err instanceof ClientAuthenticationFailed;
        if (authFailed) services.clientAuthFailed(err, { ...requestAuditFields(req), endpoint: 'token' });
        const refusal = auditEventOf(err);
        if (refusal) record(refusal, req);
        const error = toHttpError(err as Error).error;
        issued({ grant_type: grantLabel, outcome: error }, '-');
        // Per (client, grant type, error) and minute: a flood of bad requests is a few rows.
        audit.tally('token.failed', { client_id: authFailed ? err.clientId : claimedClientId(req, body), grant_type: grantLabel, error });
        throw err;
      } finally {
        services.metrics.tokenRequestDuration.observe({ grant_type: grantLabel }, (performance.now() - started) / 1000);
      }
    });
  };
}
