import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/platform/db/database.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, eventually, form, FORM_HEADERS, registryOf } from '../support/clients.js';
import { openTestStore } from '../support/store.js';

/** Counts every query the app sends to the database. */
function countingStore(store: Store): { store: Store; count: () => number } {
  let queries = 0;
  const plugin: KyselyPlugin = {
    transformQuery: (args) => { queries++; return args.node; },
    transformResult: async (args) => args.result,
  };
  return { store: { ...store, db: store.db.withPlugin(plugin) }, count: () => queries };
}

describe('the client cache: no database round trip on the token hot path, invalidated across instances', () => {
  let shared: Store;
  let a: TestApp;
  let b: TestApp;
  let queries: () => number;

  beforeAll(async () => {
    shared = await openTestStore();
    const counted = countingStore(shared);
    queries = counted.count;
    // The durable audit trail writes token.issued in batches off the request path, on its own
    // timer; left on, a flush could land inside the counted loop. The hot path is what is counted.
    a = await createTestApp({ AUDIT_DB_EXCLUDE: 'token.issued' }, { store: counted.store });
    b = await createTestApp({}, { store: shared });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await shared.close();
  });

  const token = (app: TestApp, authorization: string) => app.server.inject({
    method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization }, payload: form({ grant_type: 'client_credentials' }),
  });

  it('issues client_credentials tokens without a database query once the client is cached', async () => {
    // Let the creation's own NOTIFY arrive first (instance a hears it on the same connection),
    // so that it does not invalidate the client a is about to cache.
    let heard!: () => void;
    const notified = new Promise<void>((r) => { heard = r; });
    const unlisten = await shared.notifier.listen('clients', (id) => { if (id === 'hot') heard(); });
    const secret = (await createClient(b.context, { grant_types: ['client_credentials'], scope: 'read' }, 'hot')).clientSecret!;
    await notified;
    await unlisten();
    expect((await token(a, basic('hot', secret))).statusCode).toBe(200); // loads the client
    const before = queries();
    for (let i = 0; i < 20; i++) expect((await token(a, basic('hot', secret))).statusCode).toBe(200);
    expect(queries()).toBe(before);
  });

  it('sees a change made by another instance (disable, then rotate) through LISTEN/NOTIFY', async () => {
    const secret = (await createClient(b.context, { grant_types: ['client_credentials'] }, 'changing')).clientSecret!;
    expect((await token(a, basic('changing', secret))).statusCode).toBe(200);
    await registryOf(b.context).setDisabled('changing', true, { source: 'cli' });
    await eventually(async () => (await token(a, basic('changing', secret))).statusCode === 401);
    await registryOf(b.context).setDisabled('changing', false, { source: 'cli' });
    await eventually(async () => (await token(a, basic('changing', secret))).statusCode === 200);
    const rotated = (await registryOf(b.context).rotateSecret('changing', 0, { source: 'cli' })).clientSecret!;
    await eventually(async () => (await token(a, basic('changing', rotated))).statusCode === 200);
    expect((await token(a, basic('changing', secret))).statusCode).toBe(401);
  });

  it('learns another instance\'s tokens-not-before cutoff through LISTEN/NOTIFY: the token it had cached as live goes inactive', async () => {
    const secret = (await createClient(b.context, { grant_types: ['client_credentials'] }, 'leaky')).clientSecret!;
    const access = (await token(a, basic('leaky', secret))).json().access_token as string;
    const introspect = async () => (await a.server.inject({
      method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic('leaky', secret) }, payload: form({ token: access }),
    })).json().active as boolean;
    expect(await introspect()).toBe(true); // instance a now holds the client, without a cutoff
    await registryOf(b.context).setTokenCutoff('leaky');
    await eventually(async () => !(await introspect()));
  });

  it('forgets a deleted client, and learns of a client created after a miss', async () => {
    const secret = (await createClient(b.context, { grant_types: ['client_credentials'] }, 'doomed')).clientSecret!;
    expect((await token(a, basic('doomed', secret))).statusCode).toBe(200);
    await registryOf(b.context).delete('doomed', { source: 'cli' });
    await eventually(async () => (await token(a, basic('doomed', secret))).statusCode === 401);

    expect((await token(a, basic('late', 'x'.repeat(43)))).statusCode).toBe(401); // remembered as unknown
    const late = (await createClient(b.context, { grant_types: ['client_credentials'] }, 'late')).clientSecret!;
    await eventually(async () => (await token(a, basic('late', late))).statusCode === 200);
  });
});
