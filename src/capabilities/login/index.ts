import type { Capability } from '../../server/context.js';
import { sql } from 'kysely';
import { knownSignInAddresses } from './migrations.js';
import { loginRoutes } from './routes.js';
import { loginSettings } from './settings.js';

/** First-party sign-in with an SSO session: /login and the account page at / (its sign-out posts to /logout, the logout capability). */
export const login: Capability = {
  name: 'login',
  settings: loginSettings,
  migrations: [knownSignInAddresses],
  register: (ctx) => ({
    routes: [loginRoutes(ctx)],
    cleanup: [{
      // An address unused for LOGIN_KNOWN_TTL is no longer known anyway.
      name: 'known_sign_in_addresses',
      batch: (now, n) => sql`delete from known_sign_in_addresses where (user_id, address) in (
        select user_id, address from known_sign_in_addresses
        where last_signed_in_at < ${new Date(now.getTime() - ctx.config.loginKnownTtl * 1000)} limit ${n} for update skip locked)`,
    }],
  }),
};
