import type { Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/** Consent decisions: the scopes a user granted a client, one row per (user, client). */
export const consents: Migration = {
  name: '0012_consents',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('consents')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('granted_at', 'timestamptz', (c) => c.notNull())
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
      .addPrimaryKeyConstraint('consents_pkey', ['user_id', 'client_id'])
      .execute();
    await db.schema.createIndex('consents_client_idx').on('consents').column('client_id').execute();
  },
};
