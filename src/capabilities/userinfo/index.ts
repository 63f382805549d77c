import { CLAIMS_SUPPORTED, SCOPE_CLAIMS } from '../../oauth/claims.js';
import type { Capability } from '../../server/context.js';
import { userInfoRoutes } from './routes.js';
import { userinfoSettings } from './settings.js';

/** The UserInfo endpoint (OpenID Connect Core §5.3) and the claims it serves. */
export const userInfo: Capability = {
  name: 'userinfo',
  settings: userinfoSettings,
  register(ctx) {
    return {
      routes: [userInfoRoutes(ctx)],
      discovery: () => ({
        userinfo_endpoint: ctx.services.endpoints.userinfo,
        claims_supported: CLAIMS_SUPPORTED,
        scopes_supported: ['openid', ...Object.keys(SCOPE_CLAIMS)],
      }),
    };
  },
};
