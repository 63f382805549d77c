import { OFFLINE_ACCESS } from '../../oauth/refresh-families/rotation.js';
import { scopeList } from '../../oauth/scope.js';

/**
 * The scope a self-registered client gets when it sends no `scope` member (RFC 7591 §2: the
 * server may register a default). OpenID Connect Dynamic Registration has no `scope` member, so
 * its clients never send one; without a default they could not ask for `openid`. Given only to
 * a client registering for the authorization code grant (the default grant type), with
 * `offline_access` added when it also registers the refresh_token grant. An empty default
 * (REGISTRATION_DEFAULT_SCOPE=none) leaves the metadata as sent.
 */
export function withDefaultScope(metadata: Record<string, unknown>, defaultScope: string): Record<string, unknown> {
  if (metadata.scope !== undefined || defaultScope === '') return metadata;
  const grantTypes = Array.isArray(metadata.grant_types) ? metadata.grant_types : ['authorization_code'];
  if (!grantTypes.includes('authorization_code')) return metadata;
  const scope = scopeList(defaultScope);
  if (grantTypes.includes('refresh_token') && !scope.includes(OFFLINE_ACCESS)) scope.push(OFFLINE_ACCESS);
  return { ...metadata, scope: scope.join(' ') };
}
