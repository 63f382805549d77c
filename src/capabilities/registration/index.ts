import type { Capability } from '../../server/context.js';
import { registrationRoutes } from './routes.js';
import { registrationSettings } from './settings.js';

/** Dynamic Client Registration (RFC 7591) and management (RFC 7592); on only with INITIAL_ACCESS_TOKEN. */
export const registration: Capability = {
  name: 'registration',
  settings: registrationSettings,
  enabled: (config) => config.initialAccessTokens.length > 0,
  register(ctx) {
    return {
      routes: [registrationRoutes(ctx.services, ctx.config, ctx.metrics, ctx.clock)],
      discovery: () => ({ registration_endpoint: ctx.services.endpoints.registration }),
    };
  },
};
