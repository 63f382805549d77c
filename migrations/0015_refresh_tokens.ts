import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * Refresh token families (issue 6, DESIGN "Refresh tokens live in families"):
 * - refresh_families: one per grant (its id is the authorization code's grant id, which every
 *   access token of the family carries as `gid`), with what a refresh needs to issue tokens,
 *   its absolute expiry (never extended), idle expiry (slides with each rotation) and revocation.
 * - refresh_tokens: every token of a family, stored as the SHA-256 of a 256-bit random value,
 *   one generation after another; exactly one is `active`. A rotated token keeps its successor
 *   encrypted (AES-256-GCM under the key-encryption secret) only for the grace window.
 */
export const refreshTokens: Migration = {
  name: '0015_refresh_tokens',
  async up(db: Kysely<any>) {
    await sql`create table refresh_families (
      id text primary key,
      client_id text not null,
      user_id text not null references users (id) on delete cascade,
      scope text not null,
      audience jsonb not null,
      sid text not null,
      auth_time timestamptz not null,
      amr text[] not null,
      acr text,
      created_at timestamptz not null,
      absolute_expires_at timestamptz not null,
      idle_expires_at timestamptz not null,
      revoked_at timestamptz,
      revoked_reason text
    )`.execute(db);
    await sql`create index refresh_families_user_client on refresh_families (user_id, client_id)`.execute(db);
    await sql`create index refresh_families_client on refresh_families (client_id)`.execute(db);
    await sql`create index refresh_families_idle_expires_at on refresh_families (idle_expires_at)`.execute(db);

    await sql`create table refresh_tokens (
      token_hash bytea primary key,
      family_id text not null references refresh_families (id) on delete cascade,
      generation integer not null,
      state text not null check (state in ('active', 'rotated', 'revoked')),
      created_at timestamptz not null,
      expires_at timestamptz not null,
      rotated_at timestamptz,
      successor_ciphertext text,
      successor_nonce text,
      unique (family_id, generation)
    )`.execute(db);
    // The cleanup job erases kept successors once their window has passed.
    await sql`create index refresh_tokens_kept_successors on refresh_tokens (rotated_at) where successor_ciphertext is not null`.execute(db);
  },
};
