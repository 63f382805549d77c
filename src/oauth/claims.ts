import type { AddressClaim, ProfileClaims } from '../platform/db/schema.js';

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
 * has no value for are omitted rather than sent empty (Core §5.3.2).
 */
export function claimsForScopes(user: ClaimSource, scopes: Iterable<string>): Record<string, unknown> {
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
      const value = all[name];
      if (value === null || value === undefined || value === '') continue;
      if ((name === 'email_verified' && !user.email) || (name === 'phone_number_verified' && !user.phone_number)) continue;
      claims[name] = value;
    }
  }
  return claims;
}
