import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../../server/context.js';
import { describeClient, type CreatedClient } from '../../oauth/clients/registry.js';
import { InvalidClientMetadata, InvalidRequest } from '../../oauth/errors.js';
import { auditPageDocument, parseAuditQuery } from '../../platform/observability/audit-query.js';
import type { AuditEventRepository } from '../../platform/observability/audit-event-store.js';
import type { Services } from '../../server/context.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import { adminActor, requireAdmin } from '../../server/http/admin-auth.js';
import { familyAdminRoutes, reasonOf } from './family-routes.js';
import { keyAdminRoutes } from './key-routes.js';
import type { KeyAdministration } from '../../platform/keys/administration.js';
import { revokeIssuedTokens, type RevokedIssued } from '../../oauth/clients/revoke-issued.js';
import { unusedSinceOf } from '../../oauth/clients/usage.js';
import { userAdminRoutes, type UserAdminParts } from './user-routes.js';

/** Members of a client's JSON view that are state, not metadata: dropped from update bodies so `show` output can be edited and sent back. */
const READ_ONLY = ['client_id', 'client_type', 'disabled', 'source', 'client_id_issued_at', 'created_at', 'updated_at', 'client_secrets', 'tokens_not_before', 'last_used_at'];

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
export function adminRoutes(
  service: Services, config: Config, auditEvents: AuditEventRepository, audit: AuditLog, keys: KeyAdministration, users: Omit<UserAdminParts, 'services'>,
): FastifyPluginAsync {
  return async (app) => {
    requireAdmin(app, config.adminTokens);
    const fields = (req: FastifyRequest) => ({ ...adminActor(req) });
    const id = (req: FastifyRequest) => (req.params as { client_id: string }).client_id;

    // ?unused_for=90d or ?unused_since=ISO: the stale clients (never used: counted from creation),
    // least recently used first. This instance's last-used times are written first; another
    // instance's may be up to a minute late (src/oauth/clients/usage.ts).
    app.get('/admin/clients', async (req) => {
      const query = req.query as Record<string, unknown>;
      if (query.unused_for === undefined && query.unused_since === undefined) return { clients: (await service.registry.list()).map(describeClient) };
      const parsed = unusedSinceOf(query, service.authDeps.clock.now());
      if ('problem' in parsed) throw new InvalidRequest(parsed.problem);
      await service.clientUsage.flush().catch(() => {});
      return { unused_since: parsed.since.toISOString(), clients: (await service.registry.unusedSince(parsed.since)).map(describeClient) };
    });

    const revokeIssued = (req: FastifyRequest, reason: string): Promise<RevokedIssued> => revokeIssuedTokens({
      registry: service.registry, families: service.families, audit, onRevoked: () => service.metrics.clientTokenCutoffs.inc(),
    }, id(req), reason, { ...adminActor(req) });
    const revokedDocument = (revoked: RevokedIssued) => ({ tokens_not_before: revoked.cutoff.toISOString(), families_revoked: revoked.families });

    // The leaked-secret runbook: every token the client was issued before now ends (README "Clients").
    app.post('/admin/clients/:client_id/revoke-issued', async (req) => {
      const reason = reasonOf(req.body);
      const revoked = await revokeIssued(req, reason);
      return { client_id: revoked.client.clientId, ...revokedDocument(revoked) };
    });

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

    // {"overlap_seconds"?, "revoke_issued"?: true, "reason"?}: with revoke_issued (a leaked secret)
    // the old secret ends now — an overlap would let whoever holds it mint tokens after the
    // cutoff, so the two are refused together — and every token issued before now ends too.
    app.post('/admin/clients/:client_id/rotate-secret', async (req) => {
      const body = req.body === undefined || req.body === null ? {} : jsonObject(req.body);
      if (body.revoke_issued !== undefined && typeof body.revoke_issued !== 'boolean') throw new InvalidRequest('revoke_issued must be true or false');
      const revoke = body.revoke_issued === true;
      const reason = body.reason !== undefined || revoke ? reasonOf(body.reason !== undefined ? body : { reason: 'client secret rotated' }) : undefined;
      if (revoke && body.overlap_seconds !== undefined && body.overlap_seconds !== 0) {
        throw new InvalidRequest('revoke_issued ends the old secret at once: overlap_seconds must be 0 or absent (a leaked secret must not mint tokens after the cutoff)');
      }
      const overlap = body.overlap_seconds ?? (revoke ? 0 : config.clientSecretRotationOverlap);
      if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap > 90 * 86400) {
        throw new InvalidRequest('overlap_seconds must be an integer from 0 to 7776000');
      }
      const rotated = await service.registry.rotateSecret(id(req), overlap, { source: 'admin', fields: { ...fields(req), ...(reason !== undefined ? { reason } : {}) } });
      if (!revoke) return withSecret(rotated);
      const revoked = await revokeIssued(req, reason!);
      return { ...withSecret({ ...rotated, client: revoked.client }), ...revokedDocument(revoked) };
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
    keyAdminRoutes(app, keys);
    userAdminRoutes(app, { ...users, services: service });
  };
}
