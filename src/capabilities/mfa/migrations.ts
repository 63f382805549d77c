import { sql, type Kysely } from 'kysely';
import type { Migration } from '../../platform/db/migrator.js';

/**
 * The second factors: passkeys (WebAuthn credentials) and their pending challenges, one TOTP
 * secret per account (encrypted at rest), single-use recovery codes (hashed), and the accounts an
 * operator sent back through enrolment (the compromised-account runbook).
 */
export const mfaFactors: Migration = {
  name: '0021_mfa_factors',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('webauthn_credentials')
      // The credential id, base64url (WebAuthn §6.1: at most 1023 bytes).
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('public_key', 'bytea', (c) => c.notNull())
      // WebAuthn §6.1.1: the signature counter last seen (0 when the authenticator keeps none).
      .addColumn('counter', 'bigint', (c) => c.notNull())
      .addColumn('transports', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
      // WebAuthn §6.1.3: BE (may be synced: a multi-device credential) and BS (is backed up now).
      .addColumn('device_bound', 'boolean', (c) => c.notNull())
      .addColumn('backed_up', 'boolean', (c) => c.notNull())
      .addColumn('aaguid', 'text')
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addColumn('last_used_at', 'timestamptz')
      .execute();
    await db.schema.createIndex('webauthn_credentials_user_idx').on('webauthn_credentials').column('user_id').execute();

    await db.schema
      .createTable('webauthn_challenges')
      .addColumn('challenge_hash', 'bytea', (c) => c.primaryKey())
      .addColumn('purpose', 'text', (c) => c.notNull())
      // Registration and second-factor challenges are for one account; usernameless sign-in's for none.
      .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
      .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('webauthn_challenges_expires_idx').on('webauthn_challenges').column('expires_at').execute();

    await db.schema
      .createTable('totp_factors')
      .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
      // AES-256-GCM under a key derived from KEY_ENCRYPTION_SECRET, as signing keys are.
      .addColumn('secret_ciphertext', 'text', (c) => c.notNull())
      .addColumn('secret_nonce', 'text', (c) => c.notNull())
      // Null until a first code confirmed it: an unconfirmed secret is not a factor.
      .addColumn('confirmed_at', 'timestamptz')
      // RFC 6238 §5.2: the last time step accepted; a code of it or an earlier step is refused.
      .addColumn('last_used_step', 'bigint')
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addColumn('last_used_at', 'timestamptz')
      .execute();

    await db.schema
      .createTable('recovery_codes')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('code_hash', 'bytea', (c) => c.notNull())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addColumn('used_at', 'timestamptz')
      .addPrimaryKeyConstraint('recovery_codes_pkey', ['user_id', 'code_hash'])
      .execute();

    await db.schema
      .createTable('mfa_enrolment_required')
      .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('required_at', 'timestamptz', (c) => c.notNull())
      .execute();
  },
};
