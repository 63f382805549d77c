import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CLIENT_ID } from '../../oauth/client.js';
import { InvalidRequest, NotFound } from '../../oauth/errors.js';
import type { Services } from '../../server/context.js';
import { adminActor } from '../../server/http/admin-auth.js';

/** The administrator's reason: required, so the audit trail always says why. */
export function reasonOf(body: unknown): string {
  const reason = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).reason : undefined;
  if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 500 || /[\u0000-\u0008\u000b-\u001f]/.test(reason)) {
    throw new InvalidRequest('reason is required: a string of 1 to 500 characters saying why (no control characters)');
  }
  return reason.trim();
}

function clientIdOf(body: unknown): string | undefined {
  const id = (body as Record<string, unknown>).client_id;
  if (id !== undefined && (typeof id !== 'string' || !CLIENT_ID.test(id))) throw new InvalidRequest('client_id must be a client id (1-200 characters of A-Z a-z 0-9 . _ ~ -)');
  return id as string | undefined;
}

/**
 * Admin API: revoke every refresh family (and every access token of it) of a user, of a client,
 * or of a user+client pair — the pair also withdraws the stored consent. Registered inside the
 * admin plugin (src/capabilities/admin/routes.ts), behind its bearer check.
 */
export function familyAdminRoutes(app: FastifyInstance, service: Services): void {
  const actor = (req: FastifyRequest) => {
    const { by, ...fields } = adminActor(req);
    return { revoked_by: by, ...fields };
  };

  // POST /admin/users/{sub or username}/revoke-tokens  {"reason": "...", "client_id"?: "..."}
  app.post('/admin/users/:user/revoke-tokens', async (req) => {
    const reason = reasonOf(req.body);
    const clientId = clientIdOf(req.body);
    const login = (req.params as { user: string }).user;
    // A name with a NUL or other control character is no user (and must not reach the database).
    const user = /[\u0000-\u001f]/.test(login) ? undefined : await service.users.findById(login) ?? await service.users.findByLogin(login);
    if (!user) throw new NotFound('no such user');
    const result = await service.families.revokeFamilies({ userId: user.id, ...(clientId !== undefined ? { clientId } : {}) }, reason, actor(req));
    return { sub: user.id, ...(clientId !== undefined ? { client_id: clientId } : {}), families_revoked: result.families, ...(result.consentDeleted !== undefined ? { consent_deleted: result.consentDeleted } : {}) };
  });

  // POST /admin/clients/{client_id}/revoke-tokens  {"reason": "..."}: the compromised-client runbook.
  app.post('/admin/clients/:client_id/revoke-tokens', async (req) => {
    const reason = reasonOf(req.body);
    const clientId = (req.params as { client_id: string }).client_id;
    if (!CLIENT_ID.test(clientId)) throw new NotFound('no such client');
    const result = await service.families.revokeFamilies({ clientId }, reason, actor(req));
    return { client_id: clientId, families_revoked: result.families };
  });
}
