import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface Migration {
  /** Ordered, unique, never renamed once released: `0001_signing_keys`. */
  name: string;
  up(db: Kysely<any>): Promise<void>;
}

/** The advisory lock every instance takes before migrating: ("latc", "hkey") in ASCII. */
export const MIGRATION_LOCK = sql.raw('1818326115, 1751868793');

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Applies the pending migrations in one transaction under a transaction-scoped advisory lock, so
 * that when several instances start together exactly one migrates and the others wait, then
 * find nothing left to do. DDL is transactional in Postgres: a failing migration leaves nothing
 * half-applied.
 */
export async function migrate(db: Kysely<Database>, migrations: readonly Migration[]): Promise<MigrationResult> {
  assertOrdered(migrations);
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(tx);
    await sql`create table if not exists latchkey_migrations (
      name text primary key,
      applied_at timestamptz not null default now()
    )`.execute(tx);
    const done = new Set((await tx.selectFrom('latchkey_migrations').select('name').execute()).map((r) => r.name));
    const unknown = [...done].filter((name) => !migrations.some((m) => m.name === name));
    if (unknown.length > 0) {
      throw new Error(`the database has migrations this version does not know (${unknown.join(', ')}): it was migrated by a newer Latchkey`);
    }
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.name)) continue;
      await migration.up(tx);
      await tx.insertInto('latchkey_migrations').values({ name: migration.name }).execute();
      applied.push(migration.name);
    }
    return { applied, alreadyApplied: [...done] };
  });
}

/** Names of the known migrations not yet applied (readiness: empty when up to date). */
export async function pendingMigrations(db: Kysely<Database>, migrations: readonly Migration[]): Promise<string[]> {
  const exists = await sql<{ ok: boolean }>`select to_regclass('latchkey_migrations') is not null as ok`.execute(db);
  if (!exists.rows[0]?.ok) return migrations.map((m) => m.name);
  const done = new Set((await db.selectFrom('latchkey_migrations').select('name').execute()).map((r) => r.name));
  return migrations.filter((m) => !done.has(m.name)).map((m) => m.name);
}

function assertOrdered(migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i - 1]!.name >= migrations[i]!.name) {
      throw new Error(`migrations out of order: ${migrations[i - 1]!.name} before ${migrations[i]!.name}`);
    }
  }
}
