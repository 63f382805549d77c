import { clientHonours, type Client } from './client.js';
import { verifyAccessToken, type AccessTokenClaims, type AccessTokenDeps } from './tokens.js';

/**
 * Whether an access token of this server is still live: the one rule introspection (RFC 7662
 * §2.2 `active`) and token exchange (RFC 8693 §2.1: a subject or actor token must be valid)
 * both read, so a token one of them accepts the other never calls inactive.
 */

export interface LivenessDeps extends AccessTokenDeps {
  /** The jti denylist, and the revoked grants (a token's `gid`). */
  isRevoked(claims: { jti: string; client_id: string; gid?: string }): Promise<boolean>;
  /** The client cache. */
  clients: { get(clientId: string): Promise<Client | undefined> };
  /** Whether the user exists and is enabled. */
  userActive(sub: string): Promise<boolean>;
}

/**
 * Whether a token's subject is a user: it names the grant it came from (`gid`), or it was
 * exchanged for a user an external issuer's subject mapping named (`sub_kind: user`, which has
 * no Latchkey grant to name). A client's own token (client_credentials) is neither.
 */
export function namesUser(claims: Pick<AccessTokenClaims, 'gid' | 'sub_kind'>): boolean {
  return claims.gid !== undefined || claims.sub_kind === 'user';
}

/** Why a verified (signed, unexpired) access token is no longer live; what introspection's metric counts. */
export type NotLiveReason = 'revoked' | 'unknown_client' | 'client_disabled' | 'client_cutoff' | 'user_disabled';

/**
 * The checks after the signature and expiry (verifyAccessToken): not revoked (its jti or its
 * grant), its client neither deleted nor disabled nor past its cutoff for this token (clientHonours,
 * read from the client cache: no database read), and its user, when it has one, neither deleted
 * nor disabled. Undefined when live, else the first check that failed.
 */
export async function notLiveReason(claims: Readonly<AccessTokenClaims>, deps: LivenessDeps): Promise<NotLiveReason | undefined> {
  if (await deps.isRevoked(claims)) return 'revoked';
  const owner = await deps.clients.get(claims.client_id);
  if (!owner) return 'unknown_client';
  if (owner.disabled) return 'client_disabled';
  if (!clientHonours(owner, claims.iat)) return 'client_cutoff';
  if (namesUser(claims) && !(await deps.userActive(claims.sub))) return 'user_disabled';
  return undefined;
}

/** notLiveReason as a yes/no. */
export async function stillLive(claims: Readonly<AccessTokenClaims>, deps: LivenessDeps): Promise<boolean> {
  return (await notLiveReason(claims, deps)) === undefined;
}

export type LiveAccessToken =
  | { live: true; claims: Readonly<AccessTokenClaims> }
  | { live: false; reason: 'malformed' | 'unknown_key' | 'invalid_signature' | 'expired' | 'invalid_claims' | 'not_live' };

/** An access token this server issued, verified (verifyAccessToken) and still live (stillLive). */
export async function liveAccessToken(token: string, deps: LivenessDeps): Promise<LiveAccessToken> {
  const verified = await verifyAccessToken(deps, token);
  if (!verified.valid) return { live: false, reason: verified.reason };
  if (!(await stillLive(verified.claims, deps))) return { live: false, reason: 'not_live' };
  return { live: true, claims: verified.claims };
}
