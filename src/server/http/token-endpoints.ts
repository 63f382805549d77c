import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { ClientAuthenticationFailed, type ClientAuthInput } from '../../oauth/client-auth/authenticate.js';
import { InvalidRequest, OAuthError } from '../../oauth/errors.js';
import { PkceVerificationFailed } from '../../capabilities/authorization-code/authorization-code-grant.js';
import { RefreshTokenReused } from '../../capabilities/refresh-token/refresh-token-grant.js';
import { grants } from '../../oauth/token-endpoint/registry.js';
import { INTROSPECTION_JWT_MEDIA_TYPE, introspect } from '../../capabilities/introspection/introspect.js';
import { formBody } from '../../oauth/params.js';
import { revoke } from '../../capabilities/revocation/revoke.js';
import { handleTokenRequest } from '../../oauth/token-endpoint/endpoint.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import type { Metrics } from '../../platform/observability/metrics.js';
import type { TokenService } from '../services.js';
import { requestAuditFields } from './audit-fields.js';
import { createRateLimiter } from './rate-limit.js';

const FORM = 'application/x-www-form-urlencoded';

/** RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1: these endpoints take form posts only. */
function authInput(req: FastifyRequest): ClientAuthInput {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== FORM) throw new InvalidRequest(`the request body must be ${FORM}`);
  return { authorization: req.headers.authorization, body: formBody(req.body) };
}

/** RFC 6749 §5.1: token responses (and their errors) are never cached. */
function noStore(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
}

/** POST /token, /introspect and /revoke. */
export function tokenRoutes(service: TokenService, config: Config, audit: AuditLog, metrics: Metrics): FastifyPluginAsync {
  return async (app) => {
    // Per IP and the back-off after failed client authentications before anything is read;
    // per client once the client has authenticated (src/oauth/client-rate-limit.ts).
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics });
    const authBackoff = service.authBackoff;
    const limits = {
      token: limiter.endpoint('token', { perIp: config.tokenRateLimitPerIp, authBackoff }),
      introspection: limiter.endpoint('introspection', { perIp: config.introspectionRateLimitPerIp, authBackoff }),
      revocation: limiter.endpoint('revocation', { perIp: config.revocationRateLimitPerIp, authBackoff }),
    };
    const clock = service.tokenDeps.clock;
    const tokenDeps = { ...service.tokenDeps, clientRateLimit: limiter.client('token', config.tokenRateLimitPerClient, clock) };
    const introspectionDeps = { ...service.introspectionDeps, clientRateLimit: limiter.client('introspection', config.introspectionRateLimitPerClient, clock) };
    const revocationDeps = { ...service.revocationDeps, clientRateLimit: limiter.client('revocation', config.revocationRateLimitPerClient, clock) };

    const { tokensIssued, perClient } = service.metrics;
    const issued = perClient
      ? (labels: { grant_type: string; outcome: string }, clientId: string) => tokensIssued.inc({ ...labels, client_id: clientId })
      : (labels: { grant_type: string; outcome: string }) => tokensIssued.inc(labels);

    const failed = (err: unknown, req: FastifyRequest, endpoint: string) => {
      if (err instanceof ClientAuthenticationFailed) service.clientAuthFailed(err, { ...requestAuditFields(req), endpoint });
    };

    app.post('/token', { preHandler: limits.token }, async (req, reply) => {
      noStore(reply);
      const started = performance.now();
      const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      const requested = typeof body.grant_type === 'string' ? body.grant_type : '';
      const grantLabel = grants.has(requested) ? requested : 'unsupported';
      try {
        const result = await handleTokenRequest(authInput(req), tokenDeps);
        issued({ grant_type: result.grantType, outcome: 'success' }, result.client.client.clientId);
        audit.record('token.issued', {
          client_id: result.client.client.clientId,
          sub: result.issued.sub,
          scope: result.issued.scope,
          jti: result.issued.jti,
          grant_type: result.grantType,
          ...requestAuditFields(req),
        });
        if (result.refresh) service.refreshMetrics.refreshTokens.inc({ outcome: result.refresh.outcome });
        if (result.refresh && result.refresh.outcome !== 'issued') {
          audit.record('refresh.rotated', {
            client_id: result.client.client.clientId, sub: result.issued.sub, scope: result.issued.scope, grant_id: result.refresh.familyId,
            generation: result.refresh.generation, grace: result.refresh.outcome === 'grace', ...requestAuditFields(req),
          });
        }
        return reply.code(200).send(result.response);
      } catch (err) {
        failed(err, req, 'token');
        if (err instanceof PkceVerificationFailed) service.metrics.pkceFailures.inc();
        if (err instanceof RefreshTokenReused) {
          service.refreshMetrics.reuseDetected.inc();
          audit.record('refresh.reuse_detected', { client_id: err.clientId, sub: err.sub, grant_id: err.familyId, generation: err.generation, ...requestAuditFields(req) });
        }
        issued({ grant_type: grantLabel, outcome: err instanceof OAuthError ? err.error : 'server_error' }, '-');
        throw err;
      } finally {
        service.metrics.tokenRequestDuration.observe({ grant_type: grantLabel }, (performance.now() - started) / 1000);
      }
    });

    app.post('/introspect', { preHandler: limits.introspection }, async (req, reply) => {
      noStore(reply);
      const started = performance.now();
      try {
        // The answer depends on Accept (RFC 9701 §4).
        reply.header('Vary', 'Accept');
        const { response, jwt } = await introspect({ ...authInput(req), accept: req.headers.accept }, introspectionDeps);
        service.metrics.introspections.inc({ result: response.active ? 'active' : 'inactive', format: jwt === undefined ? 'json' : 'jwt' });
        if (jwt !== undefined) return reply.code(200).header('Content-Type', INTROSPECTION_JWT_MEDIA_TYPE).send(jwt);
        return reply.code(200).send(response);
      } catch (err) {
        failed(err, req, 'introspection');
        throw err;
      } finally {
        service.metrics.introspectionDuration.observe((performance.now() - started) / 1000);
      }
    });

    app.post('/revoke', { preHandler: limits.revocation }, async (req, reply) => {
      noStore(reply);
      try {
        const { caller, outcome } = await revoke(authInput(req), revocationDeps);
        if (outcome.revoked) {
          service.metrics.revocations.inc({ kind: outcome.kind });
          const id = outcome.kind === 'access_token' ? { jti: outcome.jti } : { grant_id: outcome.familyId };
          audit.record('token.revoked', { client_id: caller.client.clientId, ...id, kind: outcome.kind, ...requestAuditFields(req) });
        }
        // RFC 7009 §2.2: 200 with an empty body.
        return reply.code(200).send();
      } catch (err) {
        failed(err, req, 'revocation');
        throw err;
      }
    });
  };
}
