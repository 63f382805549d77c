import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { NotFound } from '../../oauth/errors.js';
import type { User } from '../../users/user-store.js';
import type { Config, Services } from '../../server/context.js';
import { adminActor, requireAdmin } from '../../server/http/admin-auth.js';
import type { Actor, FactorAdministration } from './factor-administration.js';

export interface MfaAdminDeps {
  services: Services;
  config: Config;
  admin: FactorAdministration;
  /** Ends every live session of the user and tells their apps (back-channel logout); how many ended. */
  endSessions(userId: string, fields: Actor): Promise<number>;
}

/**
 * The admin API for an account's second factors, behind the same ADMIN_TOKENS bearer check as
 * /admin/clients (registered only when ADMIN_TOKENS is set). `:login` is a username or e-mail.
 * Reset and require-enrolment also sign the person out everywhere: a session signed in with a
 * factor that is gone (or by whoever compromised the account) must not outlive it.
 */
export function mfaAdminRoutes(deps: MfaAdminDeps): FastifyPluginAsync {
  const { services, admin, endSessions } = deps;
  const actor = (req: FastifyRequest): Actor => ({ ...adminActor(req) });
  const userOf = async (req: FastifyRequest): Promise<User> => {
    const login = (req.params as { login: string }).login;
    // A name with a NUL or other control character is no user (and must not reach the database).
    const user = /[\u0000-\u001f]/.test(login) ? undefined : await services.users.findByLogin(login);
    if (!user) throw new NotFound('no such user');
    return user;
  };

  return async (app) => {
    requireAdmin(app, deps.config.adminTokens);

    app.get('/admin/users/:login/mfa', async (req) => admin.status((await userOf(req)).id));

    app.post('/admin/users/:login/mfa/reset', async (req) => {
      const user = await userOf(req);
      const by = actor(req);
      const removed = await admin.reset(user.id, by);
      return { ...removed, sessions_ended: await endSessions(user.id, by) };
    });

    app.post('/admin/users/:login/mfa/require-enrolment', async (req) => {
      const user = await userOf(req);
      const by = actor(req);
      await admin.requireEnrolment(user.id, by);
      return { sessions_ended: await endSessions(user.id, by) };
    });
  };
}
