import type { AddressClaim, ProfileClaims } from '../platform/db/schema.js';
import { InvalidRequest } from './errors.js';

/** The standard claims each scope releases (OpenID Connect Core §5.4). */
export const SCOPE_CLAIMS = {
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile',
    'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
} as const;

/** Every claim the server can release (discovery's claims_supported). */
export const CLAIMS_SUPPORTED = ['sub', ...Object.values(SCOPE_CLAIMS).flat()];

export interface ClaimSource {
  id: string;
  email: string | null;
  email_verified: boolean;
  phone_number: string | null;
  phone_number_verified: boolean;
  profile: ProfileClaims;
  address: AddressClaim | null;
  updated_at: Date;
}

/**
 * The claims released for the granted scopes: `sub` always, the rest by scope; claims the user
 * has no value for are omitted rather than sent empty (Core §5.3.2). With `only`, just the
 * claims it names (a claims request, Core §5.5) — still never one whose scope was not granted.
 */
export function claimsForScopes(user: ClaimSource, scopes: Iterable<string>, only?: ReadonlySet<string>): Record<string, unknown> {
  const granted = new Set(scopes);
  const all: Record<string, unknown> = {
    ...user.profile,
    updated_at: Math.floor(user.updated_at.getTime() / 1000),
    email: user.email,
    email_verified: user.email_verified,
    phone_number: user.phone_number,
    phone_number_verified: user.phone_number_verified,
    address: user.address,
  };
  const claims: Record<string, unknown> = { sub: user.id };
  for (const [scope, names] of Object.entries(SCOPE_CLAIMS)) {
    if (!granted.has(scope)) continue;
    for (const name of names) {
      if (only && !only.has(name)) continue;
      const value = all[name];
      if (value === null || value === undefined || value === '') continue;
      if ((name === 'email_verified' && !user.email) || (name === 'phone_number_verified' && !user.phone_number)) continue;
      claims[name] = value;
    }
  }
  return claims;
}

/** OpenID Connect Core §5.5.1: how one claim is requested (`null`: released by default, nothing more asked). */
export interface ClaimRequest {
  essential?: boolean;
  value?: unknown;
  values?: unknown[];
}

/**
 * A validated `claims` request parameter (OpenID Connect Core §5.5): for the UserInfo response
 * and for the ID token, the claims asked for by name. Only claims this server can release are
 * kept (unknown names are ignored, §5.5); `essential`, `value` and `values` are checked for
 * their shape and kept, but a claim is released as the user's value or not at all: no value is
 * matched, and an essential claim the user has no value for is simply absent (§5.5.1 allows it).
 */
export interface ClaimsRequest {
  userinfo?: Record<string, ClaimRequest | null>;
  id_token?: Record<string, ClaimRequest | null>;
  /**
   * The `acr` the `id_token` member asks for (Core §5.5.1.1): its values (`value` or `values`,
   * strings only) and whether it is essential. Not a user claim: the sign-in level decides it.
   */
  acr?: { essential: boolean; values: string[] };
}

/** Longest `claims` parameter read (a request naming every claim with values fits many times). */
export const MAX_CLAIMS_PARAMETER_LENGTH = 8192;
const RELEASABLE = new Set<string>(Object.values(SCOPE_CLAIMS).flat());

/**
 * Parses the `claims` request parameter (OpenID Connect Core §5.5): a JSON object whose
 * optional `userinfo` and `id_token` members map claim names to null or to
 * `{ essential?: boolean, value?: any, values?: any[] }`. Anything else is invalid_request;
 * other top-level members and unknown claim names are ignored (§5.5).
 */
export function parseClaimsRequest(raw: string): ClaimsRequest {
  if (raw.length > MAX_CLAIMS_PARAMETER_LENGTH) throw new InvalidRequest(`claims must be at most ${MAX_CLAIMS_PARAMETER_LENGTH} characters`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new InvalidRequest('claims must be a JSON object (OpenID Connect Core §5.5)');
  }
  if (!isObject(parsed)) throw new InvalidRequest('claims must be a JSON object (OpenID Connect Core §5.5)');
  const result: ClaimsRequest = {};
  for (const member of ['userinfo', 'id_token'] as const) {
    const requested = parsed[member];
    if (requested === undefined) continue;
    if (!isObject(requested)) throw new InvalidRequest(`claims.${member} must be a JSON object`);
    const kept: Record<string, ClaimRequest | null> = {};
    for (const [name, spec] of Object.entries(requested)) {
      if (spec !== null && !isObject(spec)) throw new InvalidRequest(`claims.${member}.${name} must be null or a JSON object`);
      if (spec !== null) {
        if (spec.essential !== undefined && typeof spec.essential !== 'boolean') throw new InvalidRequest(`claims.${member}.${name}.essential must be a boolean`);
        if (spec.values !== undefined && !Array.isArray(spec.values)) throw new InvalidRequest(`claims.${member}.${name}.values must be an array`);
      }
      if (member === 'id_token' && name === 'acr') {
        const values = spec === null ? [] : [...(spec.value !== undefined ? [spec.value] : []), ...((spec.values as unknown[] | undefined) ?? [])];
        result.acr = { essential: spec?.essential === true, values: values.filter((v): v is string => typeof v === 'string') };
        continue;
      }
      if (!RELEASABLE.has(name)) continue;
      kept[name] = spec === null ? null : {
        ...(spec.essential !== undefined ? { essential: spec.essential as boolean } : {}),
        ...(spec.value !== undefined ? { value: spec.value } : {}),
        ...(spec.values !== undefined ? { values: spec.values as unknown[] } : {}),
      };
    }
    result[member] = kept;
  }
  return result;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The user claims an ID token carries besides its own (OpenID Connect Core §5.4, §5.5): every
 * claim of the granted scopes for a client registered with `id_token_scope_claims`, else those
 * the `id_token` member of its claims request names; in both cases only claims of granted
 * scopes, so consent to a scope stays what releases its claims.
 */
export function idTokenUserClaims(
  user: ClaimSource, scopes: Iterable<string>, options: { allScopeClaims: boolean; requested?: ClaimsRequest | null },
): Record<string, unknown> {
  const names = options.allScopeClaims ? undefined : new Set(Object.keys(options.requested?.id_token ?? {}));
  if (names && names.size === 0) return {};
  const { sub: _, ...claims } = claimsForScopes(user, scopes, names);
  return claims;
}
