import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * The authorization code flow's state:
 * - authorization_requests: pushed authorization requests (RFC 9126) and the pending
 *   requests a browser is signing in or consenting for; one row each, keyed by the SHA-256 of
 *   a random id, consumed once by a conditional UPDATE.
 * - authorization_codes: codes stored hashed, bound to everything the token request must
 *   match (RFC 6749 §4.1.3, RFC 7636 §4.6), redeemed once by a conditional UPDATE.
 * - revoked_grants: grants (a code and every token issued from it) revoked by a code replay
 *   (RFC 6749 §4.1.2) or later by refresh family revocation; access tokens carry the grant id.
 */
export const authorization: Migration = {
  name: '0014_authorization',
  async up(db: Kysely<any>) {
    await sql`create table authorization_requests (
      id_hash bytea primary key,
      kind text not null check (kind in ('par', 'interaction')),
      client_id text not null,
      params jsonb not null,
      created_at timestamptz not null,
      expires_at timestamptz not null,
      consumed_at timestamptz
    )`.execute(db);
    await sql`create index authorization_requests_expires_at on authorization_requests (expires_at)`.execute(db);

    await sql`create table authorization_codes (
      code_hash bytea primary key,
      grant_id text not null,
      client_id text not null,
      user_id text not null references users (id) on delete cascade,
      redirect_uri text not null,
      code_challenge text not null,
      scope text not null,
      audience jsonb not null,
      nonce text,
      sid text not null,
      auth_time timestamptz not null,
      amr text[] not null,
      acr text,
      created_at timestamptz not null,
      expires_at timestamptz not null,
      redeemed_at timestamptz
    )`.execute(db);
    await sql`create index authorization_codes_expires_at on authorization_codes (expires_at)`.execute(db);

    await sql`create table revoked_grants (
      grant_id text primary key,
      client_id text not null,
      reason text not null,
      revoked_at timestamptz not null,
      expires_at timestamptz not null
    )`.execute(db);
    await sql`create index revoked_grants_expires_at on revoked_grants (expires_at)`.execute(db);
  },
};
