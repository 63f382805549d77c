import { z } from 'zod';
import { isScopeToken } from '../../oauth/scope.js';
import { boolean, defineSlice, integer, optionalCredentialList, setting } from '../../platform/config/settings.js';

/** A space-separated scope, or `none` for no default. */
const defaultScope = z.string().refine(
  (text) => text === 'none' || (text.split(' ').every(isScopeToken) && text.length <= 2000),
  'must be scope tokens separated by single spaces (RFC 6749 §3.3), or none',
).transform((text) => (text === 'none' ? '' : text));

/** Dynamic Client Registration (RFC 7591, RFC 7592): the initial access tokens that turn it on, and its limits. */
export const registrationSettings = defineSlice({
  name: 'registration',
  settings: {
    initialAccessTokens: setting('INITIAL_ACCESS_TOKEN', optionalCredentialList.describe('Initial access token(s) for Dynamic Client Registration (RFC 7591) at /register, comma-separated, each ≥ 32 characters. Unset: registration is off (404, not advertised).')),
    registrationAllowForeignUris: setting('REGISTRATION_ALLOW_FOREIGN_URIS', boolean.default(false).describe('Accept client_uri, logo_uri, policy_uri and tos_uri at /register (and RFC 7592 updates) whose scheme and host are not those of one of the client\'s redirect_uris (RFC 7591 §5). Off: refused with invalid_client_metadata, so a self-registered client cannot show another organisation\'s pages on the consent page.')),
    registrationDefaultScope: setting('REGISTRATION_DEFAULT_SCOPE', defaultScope.default('openid profile email address phone').describe('The scope a client registered at /register without a scope member may request (OpenID Connect Dynamic Registration clients send none), when it registers for authorization_code; offline_access is added when it also registers refresh_token. The registration response shows it; an administrator can still change the client\'s scope. none: no default (scope "").')),
    registrationRateLimitPerIp: setting('REGISTRATION_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(60).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /register and /register/:client_id together (RFC 7591, RFC 7592).')),
    registrationRateLimitPerClient: setting('REGISTRATION_RATE_LIMIT_PER_CLIENT', integer(1, 10_000_000).default(60).describe('Requests per RATE_LIMIT_WINDOW to one client\'s configuration endpoint /register/:client_id (RFC 7592), counted once its registration access token matched.')),
  },
});
