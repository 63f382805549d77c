import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { describeTrustedIssuer, type IssuerActor, type TrustedIssuerRegistry } from '../../oauth/trusted-issuers/registry.js';
import type { Config } from '../../server/context.js';
import { adminActor, requireAdmin } from '../../server/http/admin-auth.js';

/**
 * The admin API for trusted external issuers, behind the same ADMIN_TOKENS bearer check as
 * /admin/clients (registered only when ADMIN_TOKENS is set). JSON in and out; a bad declaration
 * is 400 invalid_request, an unknown name 404 not_found.
 */
export function trustedIssuerRoutes(registry: TrustedIssuerRegistry, config: Config): FastifyPluginAsync {
  const actor = (req: FastifyRequest): IssuerActor => ({ ...adminActor(req) });
  const name = (req: FastifyRequest) => (req.params as { name: string }).name;

  return async (app) => {
    requireAdmin(app, config.adminTokens);
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
