import { defineSlice, integer, optionalCredentialList, setting } from '../../platform/config/settings.js';

/** Dynamic Client Registration (RFC 7591, RFC 7592): the initial access tokens that turn it on, and its limits. */
export const registrationSettings = defineSlice({
  name: 'registration',
  settings: {
    initialAccessTokens: setting('INITIAL_ACCESS_TOKEN', optionalCredentialList.describe('Initial access token(s) for Dynamic Client Registration (RFC 7591) at /register, comma-separated, each ≥ 32 characters. Unset: registration is off (404, not advertised).')),
    registrationRateLimitPerIp: setting('REGISTRATION_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(60).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /register and /register/:client_id together (RFC 7591, RFC 7592).')),
    registrationRateLimitPerClient: setting('REGISTRATION_RATE_LIMIT_PER_CLIENT', integer(1, 10_000_000).default(60).describe('Requests per RATE_LIMIT_WINDOW to one client\'s configuration endpoint /register/:client_id (RFC 7592), counted once its registration access token matched.')),
  },
});
