import { InvalidScope } from './errors.js';

/** What scope rules read of a client: its registered scope and default scope (RFC 7591 §2). */
export interface ScopeHolder {
  readonly metadata: { readonly scope: string; readonly default_scope?: string | undefined };
}

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export function isScopeToken(token: string): boolean {
  return SCOPE_TOKEN.test(token);
}

/** A space-separated scope as its list of tokens (none for an empty or absent scope). */
export function scopeList(scope: string | undefined): string[] {
  return (scope ?? '').split(' ').filter(Boolean);
}

/**
 * The scope-tokens of a requested `scope` (RFC 6749 §3.3), each one within `allowed`; a token
 * outside it is invalid_scope, the description saying what the limit was.
 */
function requestedWithin(requested: string, allowed: ReadonlySet<string>, limit: string): string[] {
  const tokens = requested.split(' ');
  if (!tokens.every(isScopeToken)) {
    throw new InvalidScope('scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)');
  }
  const outside = tokens.filter((t) => !allowed.has(t));
  if (outside.length > 0) throw new InvalidScope(`${limit}: ${[...new Set(outside)].join(' ').slice(0, 200)}`);
  return tokens;
}

/**
 * The scope granted for a request (RFC 6749 §3.3): every requested scope-token must be one the
 * client is allowed (its registered `scope`), else invalid_scope. No `scope` parameter: the
 * client's `default_scope`, or all of its allowed scopes when it registered no default.
 * Returns the space-separated granted scope (duplicates removed, request order kept).
 */
export function grantedScope(requested: string | undefined, client: ScopeHolder): string {
  if (requested === undefined) {
    return scopeList(client.metadata.default_scope ?? client.metadata.scope).join(' ');
  }
  const tokens = requestedWithin(requested, allowedScopes(client), 'scope not allowed for this client');
  return tokens.length === 1 ? requested : [...new Set(tokens)].join(' ');
}

/** RFC 6749 §6: a refresh may narrow the scope granted, never widen it; omitted, it is the scope granted. */
export function narrowedScope(requested: string | undefined, granted: string): string {
  if (requested === undefined) return granted;
  const tokens = requestedWithin(requested, new Set(scopeList(granted)), 'scope exceeds the scope originally granted (RFC 6749 §6)');
  return [...new Set(tokens)].join(' ');
}

/** A client's allowed scopes as a set, made once per loaded client (client objects are immutable; a change loads a new one). */
const allowedSets = new WeakMap<ScopeHolder, Set<string>>();
function allowedScopes(client: ScopeHolder): Set<string> {
  let set = allowedSets.get(client);
  if (!set) { set = new Set(scopeList(client.metadata.scope)); allowedSets.set(client, set); }
  return set;
}
