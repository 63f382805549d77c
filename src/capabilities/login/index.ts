import type { Capability } from '../../server/context.js';
import { loginRoutes } from './routes.js';

/** First-party sign-in with an SSO session: /login, the account page at /, and /logout. */
export const login: Capability = {
  name: 'login',
  register: (ctx) => ({ routes: [loginRoutes(ctx)] }),
};
