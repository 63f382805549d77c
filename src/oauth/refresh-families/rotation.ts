import { KeyEncryption, type KeyEncryptionSecrets } from '../../platform/keys/encryption.js';
import type { NewRefreshFamily, StoredRefreshToken, Successor } from './store.js';
import type { Client } from '../client.js';
import { randomToken, sha256 } from '../../platform/crypto.js';

/**
 * Refresh token families: the rules shared by the grants that start a family (authorization
 * code), the refresh_token grant that rotates it, and revocation. Tokens are 256-bit random
 * values (43 base64url characters) stored as their SHA-256.
 */

export const REFRESH_TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

/** The scope a user grants for a refresh token (OpenID Connect Core §11). */
export const OFFLINE_ACCESS = 'offline_access';

/**
 * Whether a user's grant gets a refresh token: the client is registered for the refresh_token
 * grant type (RFC 6749 §5.2 unauthorized_client otherwise, when it presents one) AND the user
 * granted `offline_access`. OpenID Connect Core §11 makes offline_access the scope that asks
 * for a refresh token; requiring it of plain OAuth clients too means a refresh token (access
 * while the user is away) is never issued without the user having been shown and granted
 * exactly that on the consent page (RFC 9700 §4.14: refresh tokens are the long-lived
 * credential worth stealing). client_credentials never gets one (RFC 6749 §4.4.3).
 */
export function mayIssueRefreshToken(client: Client, grantedScope: string): boolean {
  return (client.metadata.grant_types as readonly string[]).includes('refresh_token') &&
    grantedScope.split(' ').includes(OFFLINE_ACCESS);
}

export interface RefreshLifetimeDefaults {
  idle: number;
  absolute: number;
  /** RFC 9700 §4.14.2: public clients' tokens are bearer credentials bound to nothing; shorter. */
  publicIdle: number;
  publicAbsolute: number;
}

/**
 * A client's refresh token lifetimes in seconds: its own `refresh_token_idle_ttl` /
 * `refresh_token_absolute_ttl`, else the defaults for its type. Idle never exceeds absolute.
 */
export function refreshLifetimes(client: Client, defaults: RefreshLifetimeDefaults): { idle: number; absolute: number } {
  const isPublic = client.clientType === 'public';
  const absolute = client.metadata.refresh_token_absolute_ttl ?? (isPublic ? defaults.publicAbsolute : defaults.absolute);
  const idle = client.metadata.refresh_token_idle_ttl ?? (isPublic ? defaults.publicIdle : defaults.idle);
  return { idle: Math.min(idle, absolute), absolute };
}

/**
 * The successor of a rotated token, kept for the grace window only: AES-256-GCM under a key
 * derived from the key-encryption secret for this purpose alone, with the family and
 * generation as associated data (a ciphertext moved to another row does not decrypt).
 */
export class SuccessorSealer {
  private readonly encryption: KeyEncryption;

  /** The current secret, or the current and previous ones while KEY_ENCRYPTION_SECRET is changed. */
  constructor(secret: string | KeyEncryptionSecrets) {
    this.encryption = new KeyEncryption(secret, { salt: 'latchkey/refresh-successors/v1', info: 'AES-256-GCM refresh token successor' });
  }

  seal(familyId: string, generation: number, token: string): { ciphertext: string; nonce: string } {
    return this.encryption.encrypt(`${familyId}.${generation}`, token);
  }

  /** The successor, or undefined when it does not decrypt (another secret, a tampered row). */
  open(familyId: string, generation: number, sealed: { ciphertext: string; nonce: string }): string | undefined {
    try {
      return this.encryption.decrypt(`${familyId}.${generation}`, sealed);
    } catch {
      return undefined;
    }
  }
}

/** The narrow store the refresh machinery uses (src/oauth/refresh-families/store.ts). */
export interface RefreshTokenStore {
  startFamily(f: NewRefreshFamily, tokenHash: Buffer, tokenExpiresAt: Date, now: Date): Promise<{ revoked: boolean }>;
  revokeIfGrantRevoked(familyId: string, now: Date): Promise<boolean>;
  find(tokenHash: Buffer): Promise<StoredRefreshToken | undefined>;
  rotate(tokenHash: Buffer, clientId: string, successor: Successor, now: Date, ip?: string): Promise<{ generation: number; expiresAt: Date } | undefined>;
}

/** What the grants need to issue and rotate refresh tokens. */
export interface RefreshTokenDeps {
  store: RefreshTokenStore;
  sealer: SuccessorSealer;
  lifetimes: RefreshLifetimeDefaults;
  /** Seconds a rotated token still returns its successor; 0: never (any second use is reuse). */
  gracePeriod: number;
}

/**
 * Starts the family of a grant with its first token. The family id is the grant id, so the
 * access tokens issued from the code and from every rotation carry the same `gid`.
 *
 * `revoked`: the family ended revoked here, because its grant was revoked while the code was
 * being redeemed (a replay of the code, RFC 6749 §4.1.2). The token is returned all the same —
 * the redemption that won the code answers 200 whatever a replay did meanwhile, and what it
 * answers is dead (refresh: invalid_grant; its access tokens' `gid` is in the revoked set).
 *
 * Why no race leaves a live family. The winner (W) redeemed the code before any replay (R) can
 * see it redeemed; then W runs W2 (insert the family, born revoked if its grant is in
 * revoked_grants) and W3 (revoke the family if its grant is in revoked_grants), R runs R1 (add
 * to revoked_grants) and R2 (revoke the family) — FamilyRevocation.revokeGrant, in that order.
 * Each is one autocommitted statement that sees what was committed when it started (READ
 * COMMITTED). Whatever the interleaving: R1 before W2 started → born revoked; else if R2
 * started after W2 committed → R2 revokes it; else R2 started before W2 committed, so R1
 * committed before that, before W3 started → W3 revokes it. One of the three always does.
 * (W2 and W3 must not share a transaction: W2 would then be invisible to R2 until after W3.)
 * A process that dies between W2 and W3 leaves a family whose only token was never answered.
 */
export async function startRefreshFamily(
  deps: RefreshTokenDeps, client: Client, grant: Omit<NewRefreshFamily, 'absoluteExpiresAt' | 'clientId'>, now: Date,
): Promise<{ token: string; revoked: boolean }> {
  const { idle, absolute } = refreshLifetimes(client, deps.lifetimes);
  const token = randomToken();
  const born = await deps.store.startFamily(
    { ...grant, clientId: client.clientId, absoluteExpiresAt: new Date(now.getTime() + absolute * 1000) },
    sha256(token), new Date(now.getTime() + idle * 1000), now,
  );
  const revoked = born.revoked || await deps.store.revokeIfGrantRevoked(grant.id, now);
  return { token, revoked };
}

/** A new successor token for `familyId`, generation `generation`, sealed when the grace window is on. */
export function newSuccessor(deps: RefreshTokenDeps, client: Client, familyId: string, generation: number, now: Date): { token: string; successor: Successor } {
  const token = randomToken();
  const { idle } = refreshLifetimes(client, deps.lifetimes);
  return {
    token,
    successor: {
      hash: sha256(token),
      idleExpiresAt: new Date(now.getTime() + idle * 1000),
      sealed: deps.gracePeriod > 0 ? deps.sealer.seal(familyId, generation, token) : null,
    },
  };
}
