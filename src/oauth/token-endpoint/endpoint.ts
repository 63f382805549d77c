import { authenticateClient, type AuthenticatedClient, type ClientAuthDeps, type ClientAuthInput } from '../client-auth/authenticate.js';
import { InvalidRequest, UnauthorizedClient, UnsupportedGrantType } from '../errors.js';
import type { GrantDeps, GrantResult } from './grant.js';
import { grants } from './registry.js';
import { readParams, readRepeatedParam } from '../params.js';

export interface TokenRequestResult extends GrantResult {
  grantType: string;
  client: AuthenticatedClient;
}

/**
 * The token endpoint (RFC 6749 §3.2): find the grant for grant_type, authenticate the client,
 * check it is registered for that grant, hand the grant its declared parameters.
 */
export async function handleTokenRequest(input: ClientAuthInput, deps: ClientAuthDeps & GrantDeps): Promise<TokenRequestResult> {
  const { grant_type: grantType } = readParams(input.body, ['grant_type']);
  if (grantType === undefined) throw new InvalidRequest('grant_type is required');
  const grant = grants.get(grantType);
  if (!grant) throw new UnsupportedGrantType('this grant type is not supported');
  const authenticated = await authenticateClient(input, deps, { allowPublic: true });
  // RFC 6749 §5.2: a client not registered for this grant type is unauthorized_client.
  if (!(authenticated.client.metadata.grant_types as readonly string[]).includes(grant.grantType)) {
    throw new UnauthorizedClient(`this client is not registered for the ${grant.grantType} grant type`);
  }
  const params = readParams(input.body, grant.parameters);
  const resources = readRepeatedParam(input.body, 'resource');
  const result = await grant.handle({ client: authenticated.client, params, resources }, deps);
  return { response: result.response, issued: result.issued, refresh: result.refresh, grantType: grant.grantType, client: authenticated };
}
