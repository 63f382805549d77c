import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * Issue 25: what an operator needs to tell a stolen refresh token from its rightful holder —
 * the client IP address a family was created from, and the time and IP of its last rotation.
 * Written by the statements that create and rotate a family (no extra statement on the refresh
 * path); null for families from before this migration.
 */
export const refreshFamilyActivity: Migration = {
  name: '0026_refresh_family_activity',
  async up(db: Kysely<any>) {
    await sql`alter table refresh_families
      add column created_ip text,
      add column last_rotated_at timestamptz,
      add column last_rotated_ip text`.execute(db);
  },
};
