import { sql, type Kysely } from 'kysely';
import type { Migration } from '../../platform/db/migrator.js';

/**
 * Device authorizations (RFC 8628): the device code (stored as SHA-256), the user code a person
 * types, and the state a poll reads — pending, approved (with the sign-in that approved it),
 * denied, redeemed. Every change is one conditional statement (./device-store.ts).
 */
export const deviceAuthorizations: Migration = {
  name: '0022_device_authorizations',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('device_authorizations')
      .addColumn('device_code_hash', 'bytea', (c) => c.primaryKey())
      // Normalised (8 consonants, no separator); unique among live and recent ones.
      .addColumn('user_code', 'text', (c) => c.notNull().unique())
      .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('audience', 'jsonb', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      // The polling interval it was issued with (RFC 8628 §3.2); slow_down's growth is the pacer's (device-grant.ts).
      .addColumn('interval_seconds', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
      // Set by the approval: who, and the sign-in the tokens will say (OpenID Connect Core §2).
      .addColumn('grant_id', 'text')
      .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
      .addColumn('sid', 'text')
      .addColumn('auth_time', 'timestamptz')
      .addColumn('amr', sql`text[]`)
      .addColumn('acr', 'text')
      .addColumn('decided_at', 'timestamptz')
      .addColumn('redeemed_at', 'timestamptz')
      .execute();
    await db.schema.createIndex('device_authorizations_expires_idx').on('device_authorizations').column('expires_at').execute();
  },
};
