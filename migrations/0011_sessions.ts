import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/** SSO sessions (opaque id in a cookie, stored as SHA-256) and the login throttle counters. */
export const sessions: Migration = {
  name: '0011_sessions',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('sessions')
      .addColumn('id_hash', 'bytea', (c) => c.primaryKey())
      // A public handle for the session (OIDC `sid`, audit), unrelated to the cookie value.
      .addColumn('sid', 'text', (c) => c.notNull().unique())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('auth_time', 'timestamptz', (c) => c.notNull())
      .addColumn('amr', sql`text[]`, (c) => c.notNull())
      .addColumn('acr', 'text')
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull())
      .addColumn('idle_expires_at', 'timestamptz', (c) => c.notNull())
      .addColumn('absolute_expires_at', 'timestamptz', (c) => c.notNull())
      .addColumn('ended_at', 'timestamptz')
      .execute();
    await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();

    await db.schema
      .createTable('login_throttle')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('blocked_until', 'timestamptz')
      .addColumn('last_failure_at', 'timestamptz', (c) => c.notNull())
      .execute();
  },
};
