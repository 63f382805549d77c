import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { credentialFingerprint } from '../../oauth/refresh-families/revocation.js';
import { describeTrustedIssuer, type IssuerActor, type TrustedIssuerRegistry } from '../../oauth/trusted-issuers/registry.js';
import type { Config } from '../../server/context.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { bearerToken, credentialChecker, invalidToken } from '../../server/http/bearer.js';

/**
 * The admin API for trusted external issuers, behind the same ADMIN_TOKENS bearer check as
 * /admin/clients (registered only when ADMIN_TOKENS is set). JSON in and out; a bad declaration
 * is 400 invalid_request, an unknown name 404 not_found.
 */
export function trustedIssuerRoutes(registry: TrustedIssuerRegistry, config: Config): FastifyPluginAsync {
  const authorised = credentialChecker(config.adminTokens);
  const actor = (req: FastifyRequest): IssuerActor => ({
    by: 'admin_api',
    admin_credential: credentialFingerprint(bearerToken(req.headers.authorization) ?? ''),
    ...requestAuditFields(req),
  });
  const name = (req: FastifyRequest) => (req.params as { name: string }).name;

  return async (app) => {
    app.addHook('onRequest', async (req) => {
      if (!authorised(bearerToken(req.headers.authorization))) throw invalidToken('latchkey-admin', 'a valid admin bearer credential is required');
    });
    app.get('/admin/trusted-issuers', async () => (await registry.list()).map(describeTrustedIssuer));
    app.post('/admin/trusted-issuers', async (req, reply) => {
      reply.code(201);
      return describeTrustedIssuer(await registry.create(req.body, actor(req)));
    });
    app.get('/admin/trusted-issuers/:name', async (req) => describeTrustedIssuer(await registry.get(name(req))));
    app.put('/admin/trusted-issuers/:name', async (req) => describeTrustedIssuer(await registry.update(name(req), req.body, actor(req))));
    app.delete('/admin/trusted-issuers/:name', async (req, reply) => {
      await registry.delete(name(req), actor(req));
      reply.code(204);
    });
    app.post('/admin/trusted-issuers/:name/disable', async (req) => describeTrustedIssuer(await registry.setDisabled(name(req), true, actor(req))));
    app.post('/admin/trusted-issuers/:name/enable', async (req) => describeTrustedIssuer(await registry.setDisabled(name(req), false, actor(req))));
  };
}
