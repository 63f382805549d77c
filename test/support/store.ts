import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore, type Store } from '../../src/db/database.js';

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
