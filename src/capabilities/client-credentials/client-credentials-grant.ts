import { issueAccessToken, type TokenIssuingDeps } from '../../oauth/tokens.js';
import { grantedScope } from '../../oauth/scope.js';
import { resolveAudience } from '../../oauth/audience.js';
import { tokenResponse, type GrantType, type TokenGrant } from '../../oauth/token-endpoint/grant.js';

/** RFC 6749 §4.4: for confidential clients only (§2.1), so registration refuses a public one. */
export const CLIENT_CREDENTIALS: GrantType = {
  grantType: 'client_credentials',
  publicClients: false,
  clientMetadataProblems: (m) => (m.token_endpoint_auth_method === 'none'
    ? ['client_credentials requires a confidential client (token_endpoint_auth_method other than none)']
    : []),
};

/**
 * RFC 6749 §4.4: a confidential client asks for a token for itself. The client is already
 * authenticated and registered for this grant (the token endpoint checked both).
 */
export function clientCredentialsGrant(deps: TokenIssuingDeps): TokenGrant<'scope'> {
  return {
    ...CLIENT_CREDENTIALS,
    parameters: ['scope'],

    async handle({ client, params, resources }) {
      // RFC 6749 §4.4.2 + §3.3: within the client's allowed scopes, or its default ones.
      const scope = grantedScope(params.scope, client);
      // RFC 8707 §2: the resource names the audience; unknown ones are invalid_target.
      const aud = resolveAudience(resources, client, deps.issuer);
      // RFC 9068 §2.2: for client_credentials the subject is the client itself.
      const token = issueAccessToken(deps, {
        sub: client.clientId,
        clientId: client.clientId,
        aud,
        scope,
        ttl: client.metadata.access_token_ttl ?? deps.accessTokenTtl,
      });
      // RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
      return {
        response: tokenResponse(token, scope),
        issued: { sub: client.clientId, scope, jti: token.jti },
      };
    },
  };
}
