import { supportedAuthMethods } from '../../oauth/client-auth/authenticate.js';
import type { Capability } from '../../server/context.js';
import { revocationRoutes } from './routes.js';
import { revocationSettings } from './settings.js';

/** Token revocation (RFC 7009): access tokens by jti, refresh tokens with their family. */
export const revocation: Capability = {
  name: 'revocation',
  settings: revocationSettings,
  register(ctx) {
    const authMethods = supportedAuthMethods();
    return {
      routes: [revocationRoutes(ctx)],
      discovery: () => ({
        revocation_endpoint: ctx.services.endpoints.revocation,
        revocation_endpoint_auth_methods_supported: authMethods.methods,
        revocation_endpoint_auth_signing_alg_values_supported: authMethods.signingAlgs,
      }),
    };
  },
};
