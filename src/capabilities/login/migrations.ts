import type { Kysely } from 'kysely';
import type { Migration } from '../../platform/db/migrator.js';

/**
 * The addresses each account signed in from, for the sign-in throttle
 * (src/users/known-address-store.ts); rows unused for LOGIN_KNOWN_TTL are deleted by the cleanup job.
 */
export const knownSignInAddresses: Migration = {
  name: '0017_known_sign_in_addresses',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('known_sign_in_addresses')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('last_signed_in_at', 'timestamptz', (c) => c.notNull())
      .addPrimaryKeyConstraint('known_sign_in_addresses_pkey', ['user_id', 'address'])
      .execute();
    await db.schema.createIndex('known_sign_in_addresses_last_idx').on('known_sign_in_addresses').column('last_signed_in_at').execute();
  },
};
