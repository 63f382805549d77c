import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidRequest, NotFound } from '../oauth/errors.js';
import { credentialFingerprint } from '../refresh-family-revocation.js';
import type { TokenService } from '../token-service.js';
import { requestAuditFields } from './audit-fields.js';
import { bearerToken } from './bearer.js';

/** The administrator's reason: required, so the audit trail always says why. */
function reasonOf(body: unknown): string {
  const reason = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).reason : undefined;
  if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 500) throw new InvalidRequest('reason is required: a string of 1 to 500 characters saying why');
  return reason.trim();
}

function clientIdOf(body: unknown): string | undefined {
  const id = (body as Record<string, unknown>).client_id;
  if (id !== undefined && (typeof id !== 'string' || id === '')) throw new InvalidRequest('client_id must be a non-empty string');
  return id as string | undefined;
}

/**
 * Admin API: revoke every refresh family (and every access token of it) of a user, of a client,
 * or of a user+client pair — the pair also withdraws the stored consent. Registered inside the
 * admin plugin (src/http/admin.ts), behind its bearer check.
 */
export function familyAdminRoutes(app: FastifyInstance, service: TokenService): void {
  const actor = (req: FastifyRequest) => ({
    revoked_by: 'admin_api',
    admin_credential: credentialFingerprint(bearerToken(req.headers.authorization) ?? ''),
    ...requestAuditFields(req),
  });

  // POST /admin/users/{sub or username}/revoke-tokens  {"reason": "...", "client_id"?: "..."}
  app.post('/admin/users/:user/revoke-tokens', async (req) => {
    const reason = reasonOf(req.body);
    const clientId = clientIdOf(req.body);
    const login = (req.params as { user: string }).user;
    const user = await service.users.findById(login) ?? await service.users.findByLogin(login);
    if (!user) throw new NotFound('no such user');
    const result = await service.families.revokeFamilies({ userId: user.id, ...(clientId !== undefined ? { clientId } : {}) }, reason, actor(req));
    return { sub: user.id, ...(clientId !== undefined ? { client_id: clientId } : {}), families_revoked: result.families, ...(result.consentDeleted !== undefined ? { consent_deleted: result.consentDeleted } : {}) };
  });

  // POST /admin/clients/{client_id}/revoke-tokens  {"reason": "..."}: the compromised-client runbook.
  app.post('/admin/clients/:client_id/revoke-tokens', async (req) => {
    const reason = reasonOf(req.body);
    const clientId = (req.params as { client_id: string }).client_id;
    const result = await service.families.revokeFamilies({ clientId }, reason, actor(req));
    return { client_id: clientId, families_revoked: result.families };
  });
}
