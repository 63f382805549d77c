import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../../server/context.js';
import { describeClient, type CreatedClient } from '../../oauth/clients/registry.js';
import { InvalidClientMetadata, InvalidRequest } from '../../oauth/errors.js';
import { auditPageDocument, parseAuditQuery } from '../../platform/observability/audit-query.js';
import type { AuditEventRepository } from '../../platform/observability/audit-event-store.js';
import type { Services } from '../../server/context.js';
import { adminActor, requireAdmin } from '../../server/http/admin-auth.js';
import { familyAdminRoutes } from './family-routes.js';
import { userAdminRoutes, type UserAdminParts } from './user-routes.js';

/** Members of a client's JSON view that are state, not metadata: dropped from update bodies so `show` output can be edited and sent back. */
const READ_ONLY = ['client_id', 'client_type', 'disabled', 'source', 'client_id_issued_at', 'created_at', 'updated_at', 'client_secrets'];

function jsonObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidClientMetadata('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

function metadataOf(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => !READ_ONLY.includes(k)));
}

function withSecret(created: CreatedClient): Record<string, unknown> {
  return { ...describeClient(created.client), ...(created.clientSecret ? { client_secret: created.clientSecret } : {}) };
}

/**
 * The admin API under /admin: JSON in and out, authorised by a bearer credential from
 * ADMIN_TOKENS. Registered only when ADMIN_TOKENS is set (otherwise /admin is 404).
 */
export function adminRoutes(service: Services, config: Config, auditEvents: AuditEventRepository, users: Omit<UserAdminParts, 'services'>): FastifyPluginAsync {
  return async (app) => {
    requireAdmin(app, config.adminTokens);
    const fields = (req: FastifyRequest) => ({ ...adminActor(req) });
    const id = (req: FastifyRequest) => (req.params as { client_id: string }).client_id;

    app.get('/admin/clients', async () => ({ clients: (await service.registry.list()).map(describeClient) }));

    app.post('/admin/clients', async (req, reply) => {
      const body = jsonObject(req.body);
      if (body.client_id !== undefined && typeof body.client_id !== 'string') throw new InvalidClientMetadata('client_id: must be a string');
      const created = await service.registry.create(metadataOf(body), {
        source: 'admin', ...(typeof body.client_id === 'string' ? { clientId: body.client_id } : {}), fields: fields(req),
      });
      return reply.code(201).send(withSecret(created));
    });

    app.get('/admin/clients/:client_id', async (req) => describeClient(await service.registry.get(id(req))));

    app.put('/admin/clients/:client_id', async (req) =>
      withSecret(await service.registry.update(id(req), metadataOf(jsonObject(req.body)), { source: 'admin', fields: fields(req) })));

    app.patch('/admin/clients/:client_id', async (req) =>
      withSecret(await service.registry.update(id(req), metadataOf(jsonObject(req.body)), { source: 'admin', merge: true, fields: fields(req) })));

    app.post('/admin/clients/:client_id/rotate-secret', async (req) => {
      const body = req.body === undefined || req.body === null ? {} : jsonObject(req.body);
      const overlap = body.overlap_seconds ?? config.clientSecretRotationOverlap;
      if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap > 90 * 86400) {
        throw new InvalidRequest('overlap_seconds must be an integer from 0 to 7776000');
      }
      return withSecret(await service.registry.rotateSecret(id(req), overlap, { source: 'admin', fields: fields(req) }));
    });

    app.post('/admin/clients/:client_id/disable', async (req) =>
      describeClient(await service.registry.setDisabled(id(req), true, { source: 'admin', fields: fields(req) })));

    app.post('/admin/clients/:client_id/enable', async (req) =>
      describeClient(await service.registry.setDisabled(id(req), false, { source: 'admin', fields: fields(req) })));

    app.delete('/admin/clients/:client_id', async (req, reply) => {
      await service.registry.delete(id(req), { source: 'admin', fields: fields(req) });
      return reply.code(204).send();
    });

    // The audit trail as a timeline, oldest first, one page at a time (same query as `latchkey audit`).
    app.get('/admin/audit', async (req) => {
      const parsed = parseAuditQuery(req.query as Record<string, unknown>);
      if (!parsed.ok) throw new InvalidRequest(parsed.problem);
      return auditPageDocument(await auditEvents.page(parsed.query));
    });
    familyAdminRoutes(app, service);
    userAdminRoutes(app, { ...users, services: service });
  };
}
