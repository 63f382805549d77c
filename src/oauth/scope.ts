import type { Client } from './client.js';
import { isResourceIndicator, scopeList } from './client-metadata.js';
import { InvalidRequest, InvalidScope, InvalidTarget } from './errors.js';

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * The scope granted for a request (RFC 6749 §3.3): every requested scope-token must be one the
 * client is allowed (its registered `scope`), else invalid_scope. No `scope` parameter: the
 * client's `default_scope`, or all of its allowed scopes when it registered no default.
 * Returns the space-separated granted scope (duplicates removed, request order kept).
 */
export function grantedScope(requested: string | undefined, client: Client): string {
  if (requested === undefined) {
    return scopeList(client.metadata.default_scope ?? client.metadata.scope).join(' ');
  }
  const tokens = requested.split(' ');
  if (tokens.some((t) => !SCOPE_TOKEN.test(t))) {
    throw new InvalidScope('scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)');
  }
  const allowed = allowedScopes(client);
  const outside = tokens.filter((t) => !allowed.has(t));
  if (outside.length > 0) throw new InvalidScope(`scope not allowed for this client: ${[...new Set(outside)].join(' ').slice(0, 200)}`);
  return tokens.length === 1 ? requested : [...new Set(tokens)].join(' ');
}

/** A client's allowed scopes as a set, made once per loaded client (client objects are immutable; a change loads a new one). */
const allowedSets = new WeakMap<Client, Set<string>>();
function allowedScopes(client: Client): Set<string> {
  let set = allowedSets.get(client);
  if (!set) { set = new Set(scopeList(client.metadata.scope)); allowedSets.set(client, set); }
  return set;
}

/**
 * The audience of a token from the RFC 8707 `resource` parameter(s): each must be an absolute
 * URI without a fragment (§2) and one of the client's registered `resources` or the issuer
 * (this server's own resource, UserInfo), else invalid_target. None requested: the client's
 * first registered resource, or the issuer when it registered none.
 */
export function resolveAudience(resources: readonly string[], client: Client, issuer: string): string | string[] {
  if (resources.length > 10) throw new InvalidRequest('too many resource parameters');
  const allowed = client.metadata.resources;
  if (resources.length === 0) return allowed[0] ?? issuer;
  for (const resource of resources) {
    // A registered resource is a valid indicator (checked at registration): only others are parsed.
    if (resource === issuer || allowed.includes(resource)) continue;
    if (!isResourceIndicator(resource)) throw new InvalidTarget('resource must be an absolute URI without a fragment (RFC 8707 §2)');
    throw new InvalidTarget('resource not allowed for this client');
  }
  const unique = [...new Set(resources)];
  return unique.length === 1 ? unique[0]! : unique;
}
