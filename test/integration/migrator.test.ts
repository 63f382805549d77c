import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/platform/db/database.js';
import { migrate, pendingMigrations, type Migration } from '../../src/platform/db/migrator.js';
import { onPostgres, openTestStore } from '../support/store.js';

const table = (name: string): Migration => ({
  name,
  async up(db: Kysely<any>) {
    await db.schema.createTable(name.replace(/^\d+_/, '')).addColumn('id', 'integer', (c) => c.primaryKey()).execute();
  },
});

async function tables(store: Store): Promise<string[]> {
  const r = await sql<{ t: string }>`select tablename as t from pg_tables where schemaname = current_schema() order by 1`.execute(store.db);
  return r.rows.map((row) => row.t);
}

describe('migrations', () => {
  let store: Store & { schema: string };
  beforeEach(async () => { store = await openTestStore(); });
  afterEach(async () => { await store.close(); });

  it('applies pending migrations in order, once', async () => {
    const first = await migrate(store.db, [table('0001_alpha'), table('0002_beta')]);
    expect(first.applied).toEqual(['0001_alpha', '0002_beta']);
    const again = await migrate(store.db, [table('0001_alpha'), table('0002_beta'), table('0003_gamma')]);
    expect(again.applied).toEqual(['0003_gamma']);
    expect(await tables(store)).toEqual(['alpha', 'beta', 'gamma', 'latchkey_migrations']);
    expect(await pendingMigrations(store.db, [table('0001_alpha'), table('0002_beta'), table('0003_gamma')])).toEqual([]);
  });

  it('reports every migration pending on an empty database', async () => {
    expect(await pendingMigrations(store.db, [table('0001_alpha')])).toEqual(['0001_alpha']);
  });

  it('leaves nothing half-applied when a migration fails', async () => {
    const broken: Migration = { name: '0002_broken', async up(db) { await sql`select * from no_such_table`.execute(db); } };
    await expect(migrate(store.db, [table('0001_alpha'), broken])).rejects.toThrow(/no_such_table/);
    expect(await tables(store)).toEqual([]);
  });

  it('refuses a database migrated by a newer version', async () => {
    await migrate(store.db, [table('0001_alpha'), table('0002_beta')]);
    await expect(migrate(store.db, [table('0001_alpha')])).rejects.toThrow('the database has migrations this version does not know (0002_beta)');
  });

  it('refuses migrations listed out of order', async () => {
    await expect(migrate(store.db, [table('0002_beta'), table('0001_alpha')])).rejects.toThrow('migrations out of order');
  });

  it('migrates once when several instances start together (advisory lock)', async () => {
    // Instances are separate pools on the same schema (real Postgres), or the one embedded store.
    const others: Store[] = onPostgres
      ? await Promise.all([1, 2, 3].map(() => openStore({ databaseUrl: process.env.DATABASE_URL, schema: store.schema, poolMax: 2 })))
      : [store, store, store];
    try {
      let runs = 0;
      const slow: Migration = {
        name: '0001_slow',
        async up(db) {
          runs++;
          await sql`select pg_sleep(0.2)`.execute(db);
          await db.schema.createTable('slow').addColumn('id', 'integer').execute();
        },
      };
      const results = await Promise.all([store, ...others].map((s) => migrate(s.db, [slow])));
      expect(runs).toBe(1);
      expect(results.filter((r) => r.applied.length === 1)).toHaveLength(1);
      expect(results.filter((r) => r.alreadyApplied.includes('0001_slow'))).toHaveLength(3);
    } finally {
      if (onPostgres) await Promise.all(others.map((s) => s.close()));
    }
  });
});
