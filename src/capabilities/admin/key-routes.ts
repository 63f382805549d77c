import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidRequest, NotFound } from '../../oauth/errors.js';
import { describeSigningKey, describeTransition, type KeyAdministration } from '../../platform/keys/administration.js';
import { SIGNING_ALGS, type SigningAlg } from '../../platform/keys/keyring.js';
import { KeyLifecycleError, UnknownSigningKey } from '../../platform/keys/lifecycle.js';
import type { AppliedTransition } from '../../platform/keys/manager.js';
import { adminActor } from '../../server/http/admin-auth.js';
import { reasonOf } from './family-routes.js';

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The lifecycle's refusals as OAuth-shaped answers: an unknown kid is 404, a move the state forbids 400. */
async function lifecycle(change: () => Promise<AppliedTransition[]>): Promise<{ transitions: Record<string, unknown>[] }> {
  try {
    return { transitions: (await change()).map(describeTransition) };
  } catch (err) {
    if (err instanceof UnknownSigningKey) throw new NotFound('no such signing key');
    if (err instanceof KeyLifecycleError) throw new InvalidRequest(err.message);
    throw err;
  }
}

/**
 * Admin API for the signing keys, on the running server: list, rotate, revoke, re-activate a
 * retired key (rollback of a bad rotation), and re-encrypt every sealed secret under the current
 * KEY_ENCRYPTION_SECRET. Each change goes through the key manager, which NOTIFYs every instance
 * to reload at once: no restart. Registered inside the admin plugin, behind its bearer check.
 */
export function keyAdminRoutes(app: FastifyInstance, keys: KeyAdministration): void {
  const actor = (req: FastifyRequest) => ({ ...adminActor(req) });
  const kidOf = (req: FastifyRequest) => (req.params as { kid: string }).kid;

  app.get('/admin/keys', async () => ({ keys: (await keys.list()).map(describeSigningKey) }));

  // POST /admin/keys/rotate  {"alg"?: "ES256"}
  app.post('/admin/keys/rotate', async (req) => {
    const alg = bodyObject(req.body).alg;
    if (alg !== undefined && (typeof alg !== 'string' || !(SIGNING_ALGS as readonly string[]).includes(alg))) {
      throw new InvalidRequest(`alg must be one of ${SIGNING_ALGS.join(', ')}`);
    }
    return lifecycle(() => keys.rotate(alg as SigningAlg | undefined, actor(req)));
  });

  // POST /admin/keys/{kid}/revoke  {"reason": "..."}
  app.post('/admin/keys/:kid/revoke', async (req) => {
    const reason = reasonOf(bodyObject(req.body)); // required, so the audit trail always says why
    return lifecycle(() => keys.revoke(kidOf(req), reason, actor(req)));
  });

  // POST /admin/keys/{kid}/reactivate: the rollback after a bad rotation.
  app.post('/admin/keys/:kid/reactivate', async (req) => lifecycle(() => keys.reactivate(kidOf(req), actor(req))));

  // POST /admin/keys/re-encrypt: after it, KEY_ENCRYPTION_SECRET_PREVIOUS can be dropped.
  app.post('/admin/keys/re-encrypt', async (req) => {
    const counts = await keys.reEncrypt(actor(req));
    return { tables: counts.map((c) => ({ table: c.table, re_encrypted: c.reEncrypted, from_previous: c.fromPrevious })) };
  });
}
