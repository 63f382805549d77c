import type { Client } from './client.js';
import { isResourceIndicator } from './client-metadata.js';
import { InvalidRequest, InvalidTarget } from './errors.js';

/** An audience as a JWT `aud` holds it: one value as a string, several as an array (RFC 7519 §4.1.3). */
export type Audience = string | string[];

/** Values as a JWT `aud`: de-duplicated, request order kept; one alone as a string. */
export function asAudience(resources: readonly string[]): Audience {
  const unique = [...new Set(resources)];
  return unique.length === 1 ? unique[0]! : unique;
}

/**
 * The audience of a token from the RFC 8707 `resource` parameter(s): each must be an absolute
 * URI without a fragment (§2) and one of the client's registered `resources` or the issuer
 * (this server's own resource, UserInfo), else invalid_target. None requested: the client's
 * first registered resource, or the issuer when it registered none.
 */
export function resolveAudience(resources: readonly string[], client: Client, issuer: string): Audience {
  if (resources.length > 10) throw new InvalidRequest('too many resource parameters');
  const allowed = client.metadata.resources;
  if (resources.length === 0) return allowed[0] ?? issuer;
  for (const resource of resources) {
    // A registered resource is a valid indicator (checked at registration): only others are parsed.
    if (resource === issuer || allowed.includes(resource)) continue;
    if (!isResourceIndicator(resource)) throw new InvalidTarget('resource must be an absolute URI without a fragment (RFC 8707 §2)');
    throw new InvalidTarget('resource not allowed for this client');
  }
  return asAudience(resources);
}

/**
 * RFC 8707 §2.2: a token request may narrow the audience of the grant to some of its resources,
 * never name another one (invalid_target, `refused` saying of what). None requested: the whole
 * audience granted.
 */
export function narrowedAudience(resources: readonly string[], granted: Audience, refused: string): Audience {
  if (resources.length === 0) return granted;
  const authorized = ([] as string[]).concat(granted);
  if (resources.some((r) => !authorized.includes(r))) throw new InvalidTarget(refused);
  return asAudience(resources);
}

/** Whether an `aud` (one value or several, RFC 7519 §4.1.3) holds `value`. */
export function audienceIncludes(aud: Audience, value: string): boolean {
  return typeof aud === 'string' ? aud === value : aud.includes(value);
}

/**
 * Whether a token's `aud` names this client: its client_id, or one of the resource identifiers
 * it serves (`served_resources`, set by an administrator). Such a token was sent to the client:
 * it may introspect it (RFC 7662 §4) and exchange it (RFC 8693). The one rule both read.
 */
export function audienceNamesClient(aud: Audience, client: Pick<Client, 'clientId' | 'metadata'>): boolean {
  const served = client.metadata.served_resources;
  const names = (value: string) => value === client.clientId || (served !== undefined && served.includes(value));
  return typeof aud === 'string' ? names(aud) : aud.some(names);
}
