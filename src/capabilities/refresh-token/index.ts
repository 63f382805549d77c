import { OFFLINE_ACCESS } from '../../oauth/refresh-families/rotation.js';
import type { Capability } from '../../server/context.js';
import { REFRESH_TOKEN, refreshTokenGrant } from './refresh-token-grant.js';
import { refreshTokenSettings } from './settings.js';

/** Refresh tokens in rotating families with reuse detection (RFC 6749 §6, RFC 9700 §4.14.2). */
export const refreshToken: Capability = {
  name: 'refresh-token',
  settings: refreshTokenSettings,
  grantTypes: [REFRESH_TOKEN],
  register({ services }) {
    return {
      grants: [refreshTokenGrant({
        ...services.tokenIssuing, users: services.users, refreshTokens: services.refreshTokens, revokeGrant: services.revokeGrant,
        refreshMetrics: services.refreshMetrics,
      })],
      // OpenID Connect Core §11: the scope that asks for a refresh token.
      discovery: () => ({ scopes_supported: [OFFLINE_ACCESS] }),
    };
  },
};
