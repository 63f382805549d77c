import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { Cleanup } from '../../src/platform/db/cleanup.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { openTestStore } from '../support/store.js';

const NOW = new Date('2030-01-01T00:00:00Z');
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
const OPTIONS = { batchSize: 10, codeRetention: 86400, revokedFamilyRetention: 86400, gracePeriod: 30, loginThrottleWindow: 900 };

/** Rows on either side of every cutoff; returns the ids that must survive. */
async function seed(store: Store, userId: string, expiredPerTable = 1) {
  const db = store.db;
  const code = (expiresAt: Date) => ({
    code_hash: randomBytes(32), grant_id: randomUUID(), client_id: 'c', user_id: userId, redirect_uri: 'https://a.example/cb', code_challenge: 'x',
    scope: 'openid', audience: JSON.stringify('https://api'), nonce: null, sid: 's', auth_time: NOW, amr: ['pwd'], acr: null,
    created_at: NOW, expires_at: expiresAt, redeemed_at: null,
  });
  const family = (id: string, f: { idle: number; absolute: number; revoked?: number }) => ({
    id, client_id: 'c', user_id: userId, scope: 'openid offline_access', audience: JSON.stringify('https://api'), sid: 's', auth_time: NOW, amr: ['pwd'], acr: null,
    created_at: at(-100_000), idle_expires_at: at(f.idle), absolute_expires_at: at(f.absolute),
    revoked_at: f.revoked === undefined ? null : at(f.revoked), revoked_reason: f.revoked === undefined ? null : 'test',
  });
  const session = (sid: string, f: { idle: number; absolute: number; ended?: number }) => ({
    id_hash: randomBytes(32), sid, user_id: userId, auth_time: at(-5000), amr: ['pwd'], acr: null, created_at: at(-5000), last_seen_at: at(-100),
    idle_expires_at: at(f.idle), absolute_expires_at: at(f.absolute), ended_at: f.ended === undefined ? null : at(f.ended),
  });
  const throttle = (key: string, lastFailure: number, blockedUntil?: number) => ({
    key, failures: 3, last_failure_at: at(lastFailure), blocked_until: blockedUntil === undefined ? null : at(blockedUntil),
  });
  for (let i = 0; i < expiredPerTable; i++) {
    await db.insertInto('sessions').values(session(`ended-${i}`, { idle: 100, absolute: 1000, ended: -10 })).execute();
    await db.insertInto('login_throttle').values(throttle(`stale-${i}`, -901)).execute();
    await db.insertInto('authorization_codes').values(code(at(-86401))).execute();
    await db.insertInto('authorization_requests').values({ id_hash: randomBytes(32), kind: 'par', client_id: 'c', params: '{}', created_at: at(-100), expires_at: at(-1) }).execute();
    await db.insertInto('revoked_access_tokens').values({ jti: randomUUID(), client_id: 'c', expires_at: at(-1) }).execute();
    await db.insertInto('revoked_grants').values({ grant_id: randomUUID(), client_id: 'c', reason: 'r', revoked_at: at(-100), expires_at: at(-1) }).execute();
    await db.insertInto('client_assertion_jtis').values({ client_id: 'c', jti_hash: randomUUID(), expires_at: at(-1) }).execute();
    await db.insertInto('refresh_families').values(family(randomUUID(), { idle: -1, absolute: 1000 })).execute();
  }
  const live = {
    code: code(at(60)), recentCode: code(at(-3600)),
    request: { id_hash: randomBytes(32), kind: 'par' as const, client_id: 'c', params: '{}', created_at: at(-10), expires_at: at(50) },
    jti: randomUUID(), grant: randomUUID(), assertion: randomUUID(),
  };
  await db.insertInto('authorization_codes').values([live.code, live.recentCode]).execute();
  // Sessions: ended, idle-expired and absolute-expired go; the live one stays.
  await db.insertInto('sessions').values([
    session('idle-expired', { idle: -1, absolute: 1000 }), session('absolute-expired', { idle: 100, absolute: -1 }), session('live', { idle: 100, absolute: 1000 }),
  ]).execute();
  // Throttle counters: stale and no longer blocking go; recent, or stale but still blocking, stay.
  await db.insertInto('login_throttle').values([
    throttle('stale-was-blocked', -1000, -100), throttle('recent', -60), throttle('stale-still-blocked', -1000, 60),
  ]).execute();
  await db.insertInto('authorization_requests').values(live.request).execute();
  await db.insertInto('revoked_access_tokens').values({ jti: live.jti, client_id: 'c', expires_at: at(60) }).execute();
  await db.insertInto('revoked_grants').values({ grant_id: live.grant, client_id: 'c', reason: 'r', revoked_at: at(-10), expires_at: at(60) }).execute();
  await db.insertInto('client_assertion_jtis').values({ client_id: 'c', jti_hash: live.assertion, expires_at: at(60) }).execute();
  // Families: absolute-expired and long-revoked go; live and recently revoked stay.
  await db.insertInto('refresh_families').values([
    family('absolute-expired', { idle: 100, absolute: -1 }),
    family('revoked-long-ago', { idle: 100, absolute: 1000, revoked: -86401 }),
    family('revoked-recently', { idle: 100, absolute: 1000, revoked: -60 }),
    family('live', { idle: 100, absolute: 1000 }),
  ]).execute();
  const token = (familyId: string, generation: number, state: 'active' | 'rotated', rotatedAgo?: number) => ({
    token_hash: randomBytes(32), family_id: familyId, generation, state, created_at: at(-1000), expires_at: at(100),
    rotated_at: rotatedAgo === undefined ? null : at(-rotatedAgo),
    successor_ciphertext: rotatedAgo === undefined ? null : 'sealed', successor_nonce: rotatedAgo === undefined ? null : 'nonce',
  });
  await db.insertInto('refresh_tokens').values([
    token('live', 1, 'rotated', 31), token('live', 2, 'rotated', 5), token('live', 3, 'active'),
    token('absolute-expired', 1, 'active'),
  ]).execute();
  return live;
}

describe('the cleanup job', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore();
    await migrate(store.db, migrations);
    await store.db.insertInto('users').values({ id: 'u1', username: 'u1', profile: {}, created_at: NOW, updated_at: NOW, email: null, phone_number: null, address: null, password_hash: null }).execute();
  });
  afterAll(async () => { await store.close(); });

  it('deletes what has expired in batches, erases successors past the window, and leaves live rows untouched', async () => {
    const live = await seed(store, 'u1', 25);
    const removed = await new Cleanup(store.db, OPTIONS).run(NOW);
    expect(removed).toEqual({
      authorization_codes: 25, authorization_requests: 25, revoked_access_tokens: 25, revoked_grants: 25, client_assertion_jtis: 25,
      refresh_families: 27, sessions: 27, login_throttle: 26, refresh_successors: 1,
    });
    const db = store.db;
    expect((await db.selectFrom('authorization_codes').select('code_hash').execute()).map((r) => Buffer.from(r.code_hash).toString('hex')).sort())
      .toEqual([live.code.code_hash.toString('hex'), live.recentCode.code_hash.toString('hex')].sort());
    expect(await db.selectFrom('authorization_requests').select('expires_at').execute()).toEqual([{ expires_at: live.request.expires_at }]);
    expect(await db.selectFrom('revoked_access_tokens').select('jti').execute()).toEqual([{ jti: live.jti }]);
    expect(await db.selectFrom('revoked_grants').select('grant_id').execute()).toEqual([{ grant_id: live.grant }]);
    expect(await db.selectFrom('client_assertion_jtis').select('jti_hash').execute()).toEqual([{ jti_hash: live.assertion }]);
    expect((await db.selectFrom('refresh_families').select('id').orderBy('id').execute()).map((r) => r.id)).toEqual(['live', 'revoked-recently']);
    expect(await db.selectFrom('sessions').select('sid').execute()).toEqual([{ sid: 'live' }]);
    expect((await db.selectFrom('login_throttle').select('key').orderBy('key').execute()).map((r) => r.key)).toEqual(['recent', 'stale-still-blocked']);
    // Tokens went with their family; the live family's tokens stay, only the successor past the window erased.
    expect(await db.selectFrom('refresh_tokens').select(['family_id', 'generation', 'successor_ciphertext']).orderBy('generation').execute()).toEqual([
      { family_id: 'live', generation: 1, successor_ciphertext: null },
      { family_id: 'live', generation: 2, successor_ciphertext: 'sealed' },
      { family_id: 'live', generation: 3, successor_ciphertext: null },
    ]);
    // A second run finds nothing.
    expect(Object.values(await new Cleanup(store.db, OPTIONS).run(NOW)).every((n) => n === 0)).toBe(true);
  });

  it('several instances running at once share the rows (FOR UPDATE SKIP LOCKED): each expired row removed once, no errors', async () => {
    await store.db.deleteFrom('refresh_families').execute();
    await store.db.deleteFrom('authorization_codes').execute();
    for (let i = 0; i < 60; i++) {
      await store.db.insertInto('revoked_access_tokens').values({ jti: `x-${i}`, client_id: 'c', expires_at: at(-1) }).execute();
    }
    const runs = await Promise.all([1, 2, 3].map(() => new Cleanup(store.db, OPTIONS).run(NOW)));
    expect(runs.reduce((sum, r) => sum + r.revoked_access_tokens!, 0)).toBe(60);
    expect(await store.db.selectFrom('revoked_access_tokens').select('jti').where('jti', 'like', 'x-%').execute()).toEqual([]);
  });
});

describe('the cleanup job in the app', () => {
  let app: TestApp;
  const clock = new ManualClock(NOW);
  beforeAll(async () => { app = await createTestApp({}, { clock }); });
  afterAll(async () => { await app.close(); });

  it('counts the rows it removed per table in latchkey_cleanup_deleted_rows_total', async () => {
    await app.context.store.db.insertInto('revoked_access_tokens').values([1, 2, 3].map((i) => ({ jti: `m-${i}`, client_id: 'c', expires_at: at(-1) }))).execute();
    await app.services.runCleanup();
    const metrics = await app.context.metrics.registry.metrics();
    expect(metrics).toContain('latchkey_cleanup_deleted_rows_total{table="revoked_access_tokens"} 3');
  });
});
