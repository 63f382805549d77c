import { afterAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { ACCESS_TOKEN_REVOKED_CHANNEL, AccessTokenDenylist, GRANT_REVOKED_CHANNEL, RevokedGrantsTable, RevokedSet } from '../../src/oauth/revocation-state.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, eventually, form, FORM_HEADERS } from '../support/clients.js';
import { openTestStore, twoInstanceStores } from '../support/store.js';

describe('revocation across instances', () => {
  const toClose: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => { for (const c of toClose.reverse()) await c.close(); });

  it('a token revoked on one instance is inactive at introspection on another (NOTIFY, no database read)', async () => {
    const stores = await twoInstanceStores();
    toClose.push(stores);
    const { a: storeA, b: storeB } = stores;
    const a: TestApp = await createTestApp({}, { store: storeA });
    toClose.push(a);
    const b: TestApp = await createTestApp({}, { store: storeB });
    toClose.push(b);
    const svc = basic('svc', (await createClient(a.context, { grant_types: ['client_credentials'], scope: 'read' }, 'svc')).clientSecret!);
    const post = (app: TestApp, url: string, params: Record<string, string>) =>
      app.server.inject({ method: 'POST', url, headers: { ...FORM_HEADERS, authorization: svc }, payload: form(params) });

    const token = (await post(a, '/token', { grant_type: 'client_credentials' })).json().access_token as string;
    expect((await post(b, '/introspect', { token })).json()).toMatchObject({ active: true, client_id: 'svc' });
    expect((await post(a, '/revoke', { token })).statusCode).toBe(200);
    expect((await post(a, '/introspect', { token })).json()).toEqual({ active: false });
    await eventually(async () => (await post(b, '/introspect', { token })).json().active === false);
  });

  it('picks up, on its periodic reload, a revocation whose notification it never received', async () => {
    const store = await openTestStore();
    toClose.push(store);
    await migrate(store.db, migrations);
    const now = new Date('2026-06-01T00:00:00Z');
    const denylist = new AccessTokenDenylist(store.db);
    const revoked = new RevokedSet(ACCESS_TOKEN_REVOKED_CHANNEL, denylist, store.notifier, () => now);
    toClose.push({ close: await revoked.start(3600, () => {}) });
    await denylist.add('jti-lost-notify', 'svc', new Date('2026-06-01T00:10:00Z')); // the table only, no NOTIFY
    await denylist.add('jti-expired', 'svc', new Date('2026-05-31T23:59:00Z'));
    expect(revoked.has('jti-lost-notify')).toBe(false);
    await revoked.reload();
    expect(revoked.has('jti-lost-notify')).toBe(true);
    expect(revoked.has('jti-expired')).toBe(false);
  });

  it('ids written in bulk reach another instance by one re-read notification', async () => {
    const stores = await twoInstanceStores();
    toClose.push(stores);
    await migrate(stores.a.db, migrations);
    const now = () => new Date('2026-06-01T00:00:00Z');
    const a = new RevokedSet(GRANT_REVOKED_CHANNEL, new RevokedGrantsTable(stores.a.db, now), stores.a.notifier, now);
    const b = new RevokedSet(GRANT_REVOKED_CHANNEL, new RevokedGrantsTable(stores.b.db, now), stores.b.notifier, now);
    toClose.push({ close: await a.start(3600, () => {}) }, { close: await b.start(3600, () => {}) });
    const expiresAt = new Date('2026-06-02T00:00:00Z');
    // Written by the caller's own statement (as a bulk family revocation does), then announced once.
    for (const id of ['g1', 'g2', 'g3']) await stores.a.db.insertInto('revoked_grants').values({ grant_id: id, client_id: 'c', reason: 'admin', revoked_at: now(), expires_at: expiresAt }).execute();
    await a.addWritten(['g1', 'g2', 'g3'], expiresAt);
    expect(a.has('g2')).toBe(true);
    await eventually(() => b.has('g1') && b.has('g2') && b.has('g3'));
  });
});
