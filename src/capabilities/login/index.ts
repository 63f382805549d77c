import type { Capability } from '../../server/context.js';
import { loginRoutes } from './routes.js';
import { loginSettings } from './settings.js';

/** First-party sign-in with an SSO session: /login and the account page at / (its sign-out posts to /logout, the logout capability). */
export const login: Capability = {
  name: 'login',
  settings: loginSettings,
  register: (ctx) => ({ routes: [loginRoutes(ctx)] }),
};
