import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/** People who sign in: the stable `sub`, login names, OIDC standard claims (Core §5.1), password hash. */
export const users: Migration = {
  name: '0010_users',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull())
      .addColumn('email', 'text')
      .addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('phone_number', 'text')
      .addColumn('phone_number_verified', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('profile', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
      .addColumn('address', 'jsonb')
      .addColumn('password_hash', 'text')
      .addColumn('disabled', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
      .execute();
    // Login names are unique regardless of case: "Alice" and "alice" are one person.
    await sql`create unique index users_username_key on users (lower(username))`.execute(db);
    await sql`create unique index users_email_key on users (lower(email)) where email is not null`.execute(db);
  },
};
