import { boolean, defineSlice, duration, integer, setting, type SliceValues } from '../platform/config/settings.js';

/** Tokens and the token endpoint: lifetimes, the verified-signature cache, /token's limits. */
export const tokenSettings = defineSlice({
  name: 'tokens',
  settings: {
    accessTokenTtl: setting('ACCESS_TOKEN_TTL', duration(10, 86400).default(600).describe('Lifetime of access tokens (RFC 9068 JWTs).')),
    idTokenTtl: setting('ID_TOKEN_TTL', duration(10, 86400).default(3600).describe('Lifetime of ID tokens.')),
    verifiedTokenCacheSize: setting('VERIFIED_TOKEN_CACHE_SIZE', integer(0, 1_000_000).default(10000).describe('Most access tokens whose signature is remembered as verified (introspection, revocation and UserInfo check a token\'s signature once; key trust, claims and revocation every time). 0 turns the cache off.')),
    tokenRateLimitPerClient: setting('TOKEN_RATE_LIMIT_PER_CLIENT', integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one client may make to /token, counted once it has authenticated; then 429 with Retry-After.')),
    tokenRateLimitPerIp: setting('TOKEN_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /token; then 429 with Retry-After.')),
    clientAssertionTokenEndpointAudience: setting('CLIENT_ASSERTION_TOKEN_ENDPOINT_AUDIENCE', boolean.default(true).describe('Also accept the token endpoint URL as the one audience of a private_key_jwt client assertion (OpenID Connect Core §9); the issuer identifier is always accepted. Turn this off once your clients send the issuer (oauth4webapi and openid-client 6 do): only the issuer rules out the audience injection attack (draft-ietf-oauth-rfc7523bis, FAPI 2.0 §5.3.2.1). The default will become false.')),
    clientAssertionMaxLifetime: setting('CLIENT_ASSERTION_MAX_LIFETIME', duration(60, 86400).default(3600).describe('Longest a private_key_jwt client assertion may be valid (its exp, from now; plus 30 s of leeway); one valid for longer is refused with an error_description saying so. Each assertion\'s jti is remembered until its exp, so a replay is refused as long as the assertion could be used. One hour by default, what Authlib signs.')),
    clientAuthFailureLimit: setting('CLIENT_AUTH_FAILURE_LIMIT', integer(1, 10_000_000).default(20).describe('Failed client authentications (at /token, /introspect, /revoke, /par) one IP address may have per RATE_LIMIT_WINDOW; after that every client-authenticating request from it gets 429 until the window ends.')),
  },
});
export type TokenSettings = SliceValues<typeof tokenSettings>;
