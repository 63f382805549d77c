import type { Capability } from '../../server/context.js';
import { logoutRoutes } from './routes.js';
import { logoutSettings } from './settings.js';

/**
 * RP-Initiated Logout 1.0 (the end_session_endpoint at /logout) and Back-Channel Logout 1.0 (the
 * session-end notifier is a shared service, since a sign-in that replaces a session and
 * `latchkey users disable` end sessions too).
 */
export const logout: Capability = {
  name: 'logout',
  settings: logoutSettings,
  register: (ctx) => ({
    routes: [logoutRoutes(ctx)],
    discovery: () => ({
      end_session_endpoint: `${ctx.config.issuer}/logout`,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
    }),
  }),
};
