import { authenticateClient, type AuthenticatedClient, type ClientAuthDeps, type ClientAuthInput } from '../client-auth/authenticate.js';
import { InvalidRequest, UnauthorizedClient, UnsupportedGrantType } from '../errors.js';
import { readParams, readRepeatedParam } from '../params.js';
import type { GrantInput, GrantResult } from './grant.js';
import type { GrantRegistry } from './registry.js';

export interface TokenRequestResult extends GrantResult {
  grantType: string;
  client: AuthenticatedClient;
}

export interface TokenEndpointDeps extends ClientAuthDeps {
  grants: GrantRegistry;
}

/**
 * The token endpoint (RFC 6749 §3.2): find the grant for grant_type, authenticate the client,
 * check it is registered for that grant, hand the grant its declared parameters.
 */
export async function handleTokenRequest(input: ClientAuthInput, deps: TokenEndpointDeps): Promise<TokenRequestResult> {
  const { grant_type: grantType } = readParams(input.body, ['grant_type']);
  if (grantType === undefined) throw new InvalidRequest('grant_type is required');
  const grant = deps.grants.get(grantType);
  if (!grant) throw new UnsupportedGrantType('this grant type is not supported');
  const authenticated = await authenticateClient(input, deps, { allowPublic: true });
  // RFC 6749 §5.2: a client not registered for this grant type is unauthorized_client.
  if (!(authenticated.client.metadata.grant_types as readonly string[]).includes(grant.grantType)) {
    throw new UnauthorizedClient(`this client is not registered for the ${grant.grantType} grant type`);
  }
  // RFC 6749 §2.1: a grant for confidential clients only (registration refuses the pair too).
  if (!grant.publicClients && authenticated.method === 'none') {
    throw new UnauthorizedClient(`the ${grant.grantType} grant type requires client authentication`);
  }
  const params = readParams(input.body, grant.parameters);
  const resources = readRepeatedParam(input.body, 'resource');
  const grantInput: GrantInput<string> = { client: authenticated.client, params, resources };
  if (input.ip !== undefined) grantInput.ip = input.ip;
  if (grant.repeatedParameters) grantInput.repeated = Object.fromEntries(grant.repeatedParameters.map((name) => [name, readRepeatedParam(input.body, name)]));
  const result = await grant.handle(grantInput);
  // Built by assignment, not a spread: this runs for every token issued.
  const answer: TokenRequestResult = { response: result.response, issued: result.issued, grantType: grant.grantType, client: authenticated };
  if (result.audit) answer.audit = result.audit;
  return answer;
}
