import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * Access tokens are JWTs and not stored; revoking one (RFC 7009) records its jti until the
 * token would have expired anyway. Introspection asks one primary-key question of this table.
 */
export const migration: Migration = {
  name: '0003_token_revocations',
  async up(db: Kysely<any>) {
    await sql`create table revoked_access_tokens (
      jti text primary key,
      client_id text not null,
      expires_at timestamptz not null,
      revoked_at timestamptz not null default now()
    )`.execute(db);
    await sql`create index revoked_access_tokens_expires_at on revoked_access_tokens (expires_at)`.execute(db);
  },
};
