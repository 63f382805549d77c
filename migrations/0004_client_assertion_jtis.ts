import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * RFC 7523 §3 (7): a client assertion's jti is used once. Each accepted assertion's jti
 * (SHA-256, per client) is kept until the assertion's exp; the primary key makes a second
 * INSERT of the same jti conflict, which is how a replay is detected atomically.
 */
export const migration: Migration = {
  name: '0004_client_assertion_jtis',
  async up(db: Kysely<any>) {
    await sql`create table client_assertion_jtis (
      client_id text not null,
      jti_hash text not null,
      expires_at timestamptz not null,
      primary key (client_id, jti_hash)
    )`.execute(db);
    await sql`create index client_assertion_jtis_expires_at on client_assertion_jtis (expires_at)`.execute(db);
  },
};
