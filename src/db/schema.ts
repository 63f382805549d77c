import type { Generated } from 'kysely';

/**
 * The table types kysely checks every query against: declared once, here. Each migration that
 * adds a table adds its interface and its entry in `Database`.
 */

export interface LatchkeyMigrationsTable {
  name: string;
  applied_at: Generated<Date>;
}

export type SigningKeyState = 'next' | 'active' | 'retired' | 'removed' | 'revoked';

export interface SigningKeysTable {
  kid: string;
  alg: 'ES256' | 'EdDSA' | 'RS256' | 'PS256';
  state: SigningKeyState;
  /** Public members only (kty, crv/x/y or n/e), as published. */
  public_jwk: Record<string, unknown>;
  /** base64url(AES-256-GCM ciphertext ‖ tag) of the private JWK; null once removed or revoked. */
  private_key_ciphertext: string | null;
  private_key_nonce: string | null;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  removed_at: Date | null;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

export interface Database {
  latchkey_migrations: LatchkeyMigrationsTable;
  signing_keys: SigningKeysTable;
}
