import { authorizationCodeGrant } from '../../capabilities/authorization-code/authorization-code-grant.js';
import { clientCredentialsGrant } from '../../capabilities/client-credentials/client-credentials-grant.js';
import { refreshTokenGrant } from '../../capabilities/refresh-token/refresh-token-grant.js';
import type { Grant } from './grant.js';

/**
 * The grants the token endpoint serves, by grant_type: the one table (no switch on
 * grant_type anywhere else). A new grant is a file under grants/ and a line here.
 */
export const grants: ReadonlyMap<string, Grant> = new Map<string, Grant>(
  [authorizationCodeGrant as Grant, refreshTokenGrant as Grant, clientCredentialsGrant as Grant].map((grant) => [grant.grantType, grant]),
);

/** grant_types_supported (RFC 8414 §2) follows from the table. */
export function supportedGrantTypes(): string[] {
  return [...grants.keys()];
}
