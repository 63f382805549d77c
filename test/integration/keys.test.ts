import { importPKCS8, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyEncryption } from '../../src/platform/keys/encryption.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { DAY, HOUR, ManualClock } from '../support/clock.js';
import { eventually, keyManagerOf, signToken, TEST_KEY_SECRET, verifyThroughJwks } from '../support/keys.js';
import { openTestStore, twoInstanceStores } from '../support/store.js';

const ENV = { KEY_ENCRYPTION_SECRET: TEST_KEY_SECRET };

describe('signing keys', () => {
  const toClose: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const c of toClose.splice(0).reverse()) await c.close();
  });
  async function app(env: Record<string, string> = {}, options: Parameters<typeof createTestApp>[1] = {}): Promise<TestApp> {
    const a = await createTestApp({ ...ENV, ...env }, options);
    toClose.push(a);
    return a;
  }

  it('runs the whole lifecycle across simulated months: published ahead, rotated on schedule, removed after its last token expired', async () => {
    const clock = new ManualClock();
    // Long-lived tokens so that several are alive across each rotation.
    const a = await app({ ACCESS_TOKEN_TTL: '12h', ID_TOKEN_TTL: '1d' }, { clock });
    const keys = keyManagerOf(a);
    const retention = DAY + 300 + 60; // longest token lifetime + KEY_RETIRE_LEEWAY + KEY_CHECK_INTERVAL
    expect(keys.policy.retentionSeconds).toBe(retention);

    const bootstrapKid = keys.signingKey().kid;
    const firstInJwks = new Map<string, number>();
    const lastExp = new Map<string, number>();
    const signers: string[] = [];
    const alive: Array<{ token: string; kid: string; exp: number }> = [];
    const removedSeen = new Set<string>();

    for (let step = 0; step <= 361; step++) { // 12-hour steps up to day 180.5
      if (step > 0) { clock.advance(12 * HOUR); await keys.tick(); }
      const now = clock.now().getTime() / 1000;
      const jwks = JSON.parse((await a.server.inject('/jwks')).body) as { keys: Array<{ kid: string }> };
      for (const k of jwks.keys) if (!firstInJwks.has(k.kid)) firstInJwks.set(k.kid, now);

      // Exactly one active key and one next key at every moment.
      const records = keys.records();
      expect(records.filter((r) => r.state === 'active')).toHaveLength(1);
      expect(records.filter((r) => r.state === 'next')).toHaveLength(1);

      const signing = keys.signingKey().kid;
      if (signers.at(-1) !== signing) {
        signers.push(signing);
        // Never used for signing before it was in the JWKS for the publish-ahead period (the very first key aside).
        if (signing !== bootstrapKid) expect(now - firstInJwks.get(signing)!).toBeGreaterThanOrEqual(DAY);
      }
      const signed = await signToken(keys, clock, DAY);
      lastExp.set(signed.kid, signed.exp);
      alive.push(signed);

      // Every token not yet expired still verifies through the JWKS, across rotations.
      for (const t of alive.splice(0)) {
        if (t.exp <= now) continue;
        alive.push(t);
        expect((await verifyThroughJwks(a, t.token, clock)).protectedHeader.kid).toBe(t.kid);
      }
      // A key is removed only after the last token it signed expired.
      for (const r of records.filter((r) => r.state === 'removed' && !removedSeen.has(r.kid))) {
        removedSeen.add(r.kid);
        expect(r.removedAt!.getTime() / 1000).toBeGreaterThanOrEqual(lastExp.get(r.kid)!);
        expect(jwks.keys.some((k) => k.kid === r.kid)).toBe(false);
      }
    }

    // Day 0 bootstrap, then rotations on days 30, 60, …, 180.
    expect(signers).toHaveLength(7);
    const byKid = new Map(keys.records().map((r) => [r.kid, r]));
    expect(signers.map((kid) => (byKid.get(kid)!.activatedAt!.getTime() - new Date('2030-01-01T00:00:00Z').getTime()) / (DAY * 1000)))
      .toEqual([0, 30, 60, 90, 120, 150, 180]);
    expect(keys.records().filter((r) => r.state === 'removed').map((r) => r.kid).sort()).toEqual(signers.slice(0, 5).sort());
    expect(keys.records().filter((r) => r.state === 'retired').map((r) => r.kid)).toEqual([signers[5]]);
    // Removed keys keep no private material.
    const removedRows = await a.context.store.db.selectFrom('signing_keys').selectAll().where('state', '=', 'removed').execute();
    expect(removedRows).toHaveLength(5);
    for (const row of removedRows) expect([row.private_key_ciphertext, row.private_key_nonce]).toEqual([null, null]);

    const metrics = await a.context.metrics.registry.metrics();
    expect(metrics).toContain('latchkey_signing_key_rotations_total{alg="ES256",trigger="scheduled"} 6');
    expect(metrics).toContain('latchkey_signing_keys{state="removed",alg="ES256"} 5');
    expect(metrics).toContain('latchkey_signing_keys{state="active",alg="ES256"} 1');
    expect(metrics).toContain(`latchkey_signing_key_age_seconds{alg="ES256"} ${DAY / 2}`);
    const events = a.logs.lines.filter((l) => typeof l.event === 'string' && String(l.event).startsWith('key.')).map((l) => l.event);
    expect(events.filter((e) => e === 'key.rotated')).toHaveLength(6);
    expect(events.filter((e) => e === 'key.retired')).toHaveLength(6);
    expect(events.filter((e) => e === 'key.removed')).toHaveLength(5);
    expect(events.filter((e) => e === 'key.created')).toHaveLength(8);
  });

  it('rotates by itself: the timer inside the server performs the due rotation', async () => {
    const clock = new ManualClock();
    const a = await app({ KEY_CHECK_INTERVAL: '1s' }, { clock });
    const keys = keyManagerOf(a);
    const first = keys.signingKey().kid;
    const next = keys.records().find((r) => r.state === 'next')!.kid;
    clock.advance(30 * DAY);
    await eventually(() => keys.signingKey().kid !== first, 'the timer rotated the key');
    expect(keys.signingKey().kid).toBe(next);
    expect(a.logs.lines.find((l) => l.event === 'key.rotated')).toMatchObject({ kid: next, trigger: 'scheduled' });
  });

  it('on schedule, waits for a next key younger than the publish-ahead period', async () => {
    const clock = new ManualClock();
    const a = await app({}, { clock });
    const keys = keyManagerOf(a);
    const active = keys.signingKey().kid;
    clock.advance(30 * DAY - HOUR);
    const young = keys.records().find((r) => r.state === 'next')!.kid;
    await keys.revoke(young, 'test: replace the next key'); // a fresh next key, published from now
    const fresh = keys.records().find((r) => r.state === 'next')!.kid;

    clock.advance(2 * HOUR); // rotation is due, the next key is 2 h old
    expect(await keys.tick()).toEqual([]);
    expect(keys.signingKey().kid).toBe(active);
    clock.advance(DAY - 2 * HOUR - 1);
    await keys.tick();
    expect(keys.signingKey().kid).toBe(active);
    clock.advance(1);
    await keys.tick();
    expect(keys.signingKey().kid).toBe(fresh);
  });

  it('a token signed before a rotation still verifies through the JWKS after it', async () => {
    const clock = new ManualClock();
    const a = await app({}, { clock });
    const keys = keyManagerOf(a);
    clock.advance(2 * DAY);
    const before = await signToken(keys, clock, 600);
    await keys.rotate();
    expect(keys.signingKey().kid).not.toBe(before.kid);
    expect(keys.verificationKey(before.kid)?.kid).toBe(before.kid);
    clock.advance(60);
    expect((await verifyThroughJwks(a, before.token, clock)).payload.sub).toBe('alice');
    const after = await signToken(keys, clock, 600);
    expect((await verifyThroughJwks(a, after.token, clock)).protectedHeader.kid).toBe(keys.signingKey().kid);
    expect(a.logs.lines.find((l) => l.event === 'key.rotated')).toMatchObject({ trigger: 'manual', early: false, alg: 'ES256' });
  });

  it('on demand promotes a next key younger than publish-ahead, with a warning', async () => {
    const clock = new ManualClock();
    const a = await app({}, { clock });
    const keys = keyManagerOf(a);
    const next = keys.records().find((r) => r.state === 'next')!.kid;
    clock.advance(HOUR);
    await keys.rotate('ES256');
    expect(keys.signingKey().kid).toBe(next);
    expect(a.logs.lines.find((l) => l.event === 'key.rotated')).toMatchObject({ kid: next, trigger: 'manual', early: true });
    expect(a.logs.lines.some((l) => l.level === 40 && String(l.msg).includes('before its publish-ahead period ended'))).toBe(true);
  });

  it('revoke unpublishes the key, stops trusting it at once, and signing continues with the next key', async () => {
    const clock = new ManualClock();
    const a = await app({}, { clock });
    const keys = keyManagerOf(a);
    clock.advance(3 * DAY);
    const victim = await signToken(keys, clock, 600);
    const next = keys.records().find((r) => r.state === 'next')!.kid;
    await keys.revoke(victim.kid, 'key compromised');

    expect(keys.verificationKey(victim.kid)).toBeUndefined();
    const jwks = JSON.parse((await a.server.inject('/jwks')).body) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).not.toContain(victim.kid);
    await expect(verifyThroughJwks(a, victim.token, clock)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(keys.signingKey().kid).toBe(next);
    expect(keys.records().filter((r) => r.state === 'next')).toHaveLength(1);

    const row = await a.context.store.db.selectFrom('signing_keys').selectAll().where('kid', '=', victim.kid).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ state: 'revoked', revoked_reason: 'key compromised', private_key_ciphertext: null, private_key_nonce: null });
    expect(a.logs.lines.find((l) => l.event === 'key.revoked')).toMatchObject({ kid: victim.kid, alg: 'ES256', reason: 'key compromised', previous_state: 'active' });
    expect(a.logs.lines.find((l) => l.event === 'key.rotated')).toMatchObject({ kid: next, trigger: 'revoke', early: false });
    expect(await a.context.metrics.registry.metrics()).toContain('latchkey_signing_key_rotations_total{alg="ES256",trigger="revoke"} 1');
    await expect(keys.revoke(victim.kid)).rejects.toThrow(`signing key ${victim.kid} is already revoked`);
  });

  it('stores no plaintext private key: the row holds neither the private JWK nor anything that parses as a key', async () => {
    const a = await app({ SIGNING_ALGS: 'ES256,RS256' });
    const rows = await a.context.store.db.selectFrom('signing_keys').selectAll().execute();
    expect(rows).toHaveLength(4);
    const enc = new KeyEncryption(TEST_KEY_SECRET);
    for (const row of rows) {
      const privateJwk = JSON.parse(enc.decrypt(row.kid, { ciphertext: row.private_key_ciphertext!, nonce: row.private_key_nonce! })) as JWK;
      expect(privateJwk.d).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      const stored = JSON.stringify(row);
      expect(stored).not.toContain(privateJwk.d);
      for (const member of ['p', 'q', 'dp', 'dq', 'qi'] as const) if (privateJwk[member]) expect(stored).not.toContain(privateJwk[member]);
      const raw = Buffer.from(row.private_key_ciphertext!, 'base64url');
      expect(raw.includes(Buffer.from(privateJwk.d!, 'base64url'))).toBe(false);
      expect(raw.includes(Buffer.from(privateJwk.d!))).toBe(false);
      expect(Object.keys(row.public_jwk).sort()).toEqual(row.alg === 'ES256' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n']);
      expect(() => JSON.parse(raw.toString('utf8'))).toThrow();
      await expect(importPKCS8(row.private_key_ciphertext!, row.alg)).rejects.toThrow();
      expect(() => JSON.parse(row.private_key_ciphertext!)).toThrow();
      expect(a.logs.text()).not.toContain(privateJwk.d);
    }
  });

  it('refuses to start with the wrong KEY_ENCRYPTION_SECRET, creating no new key', async () => {
    const store = await openTestStore();
    toClose.push(store);
    const first = await createTestApp(ENV, { store });
    await first.close();
    const before = await store.db.selectFrom('signing_keys').select('kid').execute();
    await expect(createTestApp({ KEY_ENCRYPTION_SECRET: 'a-different-key-encryption-secret-0123456789' }, { store }))
      .rejects.toThrow(/^KEY_ENCRYPTION_SECRET does not decrypt the signing keys in the database \(kid [\w-]+\)\. Start with the secret the keys were created under/);
    expect(await store.db.selectFrom('signing_keys').select('kid').execute()).toEqual(before);
    // The right secret still starts, with the same keys.
    const again = await createTestApp(ENV, { store });
    toClose.push(again);
    expect(before.map((r) => r.kid)).toContain(again.context.keys.signingKey().kid);
  });

  it('two instances on one database agree on the active key after a rotation or revocation made by either (NOTIFY)', async () => {
    const stores = await twoInstanceStores();
    toClose.push(stores);
    const { a: storeA, b: storeB } = stores;
    const a = await app({}, { store: storeA });
    const b = await app({}, { store: storeB });
    const ka = keyManagerOf(a);
    const kb = keyManagerOf(b);
    expect(kb.signingKey().kid).toBe(ka.signingKey().kid);

    const oldKid = ka.signingKey().kid;
    await ka.rotate();
    expect(ka.signingKey().kid).not.toBe(oldKid);
    await eventually(() => kb.signingKey().kid === ka.signingKey().kid, 'instance B follows the rotation made by A');
    expect((await b.server.inject('/jwks')).body).toBe((await a.server.inject('/jwks')).body);

    const revoked = kb.signingKey().kid;
    await kb.revoke(revoked, 'test');
    await eventually(() => ka.verificationKey(revoked) === undefined && ka.signingKey().kid === kb.signingKey().kid,
      'instance A follows the revocation made by B');
    expect(ka.signingKey().kid).not.toBe(revoked);
    expect((await a.server.inject('/jwks')).body).not.toContain(revoked);
  });

  it('instances starting together on an empty database create one set of keys', async () => {
    const stores = await twoInstanceStores();
    toClose.push(stores);
    const { a: storeA, b: storeB } = stores;
    const [a, b] = await Promise.all([app({}, { store: storeA }), app({}, { store: storeB })]);
    expect(b.context.keys.signingKey().kid).toBe(a.context.keys.signingKey().kid);
    const rows = await storeA.db.selectFrom('signing_keys').select(['state']).execute();
    expect(rows.map((r) => r.state).sort()).toEqual(['active', 'next']);
  });

  it('reports readiness of the signing keys', async () => {
    const a = await app();
    const res = await a.server.inject('/readyz');
    expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok', notifications: 'ok' } });
  });
});
