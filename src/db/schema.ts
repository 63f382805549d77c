import type { Generated } from 'kysely';

/**
 * The table types kysely checks every query against: declared once, here. Each migration that
 * adds a table adds its interface and its entry in `Database`.
 */

export interface LatchkeyMigrationsTable {
  name: string;
  applied_at: Generated<Date>;
}

export interface Database {
  latchkey_migrations: LatchkeyMigrationsTable;
}
