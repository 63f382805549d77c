import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/platform/db/database.js';
import { openStore } from '../../src/platform/db/database.js';
import { onPostgres, openTestStore } from '../support/store.js';

describe('cross-instance notifications (LISTEN/NOTIFY)', () => {
  let store: Store;
  beforeAll(async () => { store = await openTestStore(); });
  afterAll(async () => { await store.close(); });

  it('delivers a payload to a listener, and not after it unsubscribes', async () => {
    const received: string[] = [];
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => { resolveFirst = r; });
    const unlisten = await store.notifier.listen('clients', (payload) => { received.push(payload); resolveFirst(); });
    await store.notifier.notify('clients', 'client-a');
    await first;
    expect(received).toEqual(['client-a']);
    await unlisten();
    await store.notifier.notify('clients', 'client-b');
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toEqual(['client-a']);
  });
});

describe.runIf(onPostgres)('a lost LISTEN connection (PostgreSQL)', () => {
  let store: Store & { schema: string };
  let other: Store;
  beforeAll(async () => {
    store = await openTestStore();
    other = await openStore({ databaseUrl: process.env.DATABASE_URL!, schema: store.schema, poolMax: 1 });
  });
  afterAll(async () => { await other.close(); await store.close(); });

  /** Ends this store's LISTEN connection from the server side, as a restart or failover does. */
  async function terminateListenConnection(): Promise<number> {
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    try {
      // Only this store's: the one listening on its schema's channel.
      const r = await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'latchkey-listen' and pid = any(select pid from pg_stat_activity where query like $1)`, [`%latchkey_${store.schema}_%`]);
      return r.rowCount ?? 0;
    } finally {
      await admin.end();
    }
  }

  it('is re-opened; every subscriber gets an empty payload ("reload: you may have missed something"), then notifications again', async () => {
    const received: string[] = [];
    const unlisten = await store.notifier.listen('clients', (payload) => { received.push(payload); });
    expect(await store.ensureListening()).toBe(true);
    expect(await terminateListenConnection()).toBe(1);
    // Sent while the connection is down (or being re-opened): it may be lost — the empty payload makes up for it.
    await other.notifier.notify('clients', 'changed-while-down');
    await expect.poll(() => received.includes(''), { timeout: 10_000 }).toBe(true);
    expect(await store.ensureListening()).toBe(true);
    await other.notifier.notify('clients', 'after');
    await expect.poll(() => received.at(-1), { timeout: 5_000 }).toBe('after');
    await unlisten();
  });

  it('a second loss is handled the same way (no unhandled error event ends this process); readiness then says listening again', async () => {
    const received: string[] = [];
    await store.notifier.listen('keys', (payload) => { received.push(payload); });
    expect(await terminateListenConnection()).toBe(1);
    await expect.poll(() => received.includes(''), { timeout: 10_000 }).toBe(true);
    expect(await store.ensureListening()).toBe(true);
  });
});
