import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore, type Store } from '../../src/platform/db/database.js';

/** True when the suite runs against the real Postgres named by DATABASE_URL. */
export const onPostgres = Boolean(process.env.DATABASE_URL);

export function uniqueSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/**
 * A fresh, isolated store: in-memory PGlite, or with DATABASE_URL a schema of its own on the
 * real Postgres, dropped again by `close()`.
 */
export async function openTestStore(schema = uniqueSchema()): Promise<Store & { schema: string }> {
  if (!onPostgres) {
    const store = await openStore({ dataDir: 'memory' });
    return { ...store, schema: 'public' };
  }
  const url = process.env.DATABASE_URL!;
  const store = await openStore({ databaseUrl: url, schema, poolMax: 5 });
  return {
    ...store,
    schema,
    async close() {
      await store.close();
      await dropSchema(schema);
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/**
 * The stores of two instances on one database: on Postgres a second pool (and LISTEN
 * connection) on the same schema, as a second process has; embedded, the one store both share.
 * The caller closes both (the second only when it is not the first).
 */
export async function twoInstanceStores(): Promise<{ a: Store & { schema: string }; b: Store; close(): Promise<void> }> {
  const a = await openTestStore();
  const b = onPostgres ? await openStore({ databaseUrl: process.env.DATABASE_URL!, schema: a.schema, poolMax: 2 }) : a;
  return {
    a, b,
    async close() {
      if (b !== a) await b.close();
      await a.close();
    },
  };
}
