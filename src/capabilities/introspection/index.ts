import { supportedAuthMethods } from '../../oauth/client-auth/authenticate.js';
import type { Capability } from '../../server/context.js';
import { introspectionRoutes } from './routes.js';
import { introspectionSettings } from './settings.js';

/** Token introspection (RFC 7662), with JWT responses on request (RFC 9701). */
export const introspection: Capability = {
  name: 'introspection',
  settings: introspectionSettings,
  register(ctx) {
    const authMethods = supportedAuthMethods();
    return {
      routes: [introspectionRoutes(ctx)],
      discovery: () => ({
        introspection_endpoint: ctx.services.endpoints.introspection,
        // RFC 7662 §2.1: only authenticated clients, so never `none`.
        introspection_endpoint_auth_methods_supported: authMethods.methods.filter((m) => m !== 'none'),
        introspection_endpoint_auth_signing_alg_values_supported: authMethods.signingAlgs,
        // RFC 9701 §7: the algorithms a client may register as introspection_signed_response_alg and be served.
        introspection_signing_alg_values_supported: ctx.keys.algorithms(),
      }),
    };
  },
};
