import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * Signing keys and their lifecycle (next → active → retired → removed, or revoked). The private
 * key is stored only encrypted (AES-256-GCM, src/keys/encryption.ts) and wiped on removal and
 * revocation; the public JWK stays for the record. At most one active and one next key per alg.
 */
export const signingKeys: Migration = {
  name: '0001_signing_keys',
  async up(db: Kysely<any>) {
    await sql`create table signing_keys (
      kid text primary key,
      alg text not null check (alg in ('ES256', 'EdDSA', 'RS256', 'PS256')),
      state text not null check (state in ('next', 'active', 'retired', 'removed', 'revoked')),
      public_jwk jsonb not null,
      private_key_ciphertext text,
      private_key_nonce text,
      created_at timestamptz not null,
      activated_at timestamptz,
      retired_at timestamptz,
      removed_at timestamptz,
      revoked_at timestamptz,
      revoked_reason text,
      check ((private_key_ciphertext is null) = (private_key_nonce is null)),
      check (state in ('removed', 'revoked') or private_key_ciphertext is not null)
    )`.execute(db);
    await sql`create unique index signing_keys_one_active_per_alg on signing_keys (alg) where state = 'active'`.execute(db);
    await sql`create unique index signing_keys_one_next_per_alg on signing_keys (alg) where state = 'next'`.execute(db);
  },
};
