import type { Capability } from '../../server/context.js';
import { CLIENT_CREDENTIALS, clientCredentialsGrant } from './client-credentials-grant.js';

/** Tokens for services acting for themselves (RFC 6749 §4.4). */
export const clientCredentials: Capability = {
  name: 'client-credentials',
  grantTypes: [CLIENT_CREDENTIALS],
  register: ({ services }) => ({ grants: [clientCredentialsGrant(services.tokenIssuing)] }),
};
