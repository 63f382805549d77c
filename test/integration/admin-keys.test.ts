import { afterEach, describe, expect, it } from 'vitest';
import { TotpFactors } from '../../src/capabilities/mfa/totp.js';
import { systemClock } from '../../src/platform/clock.js';
import { UserRepository } from '../../src/users/user-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { eventually, keyManagerOf, signToken, TEST_KEY_SECRET, verifyThroughJwks } from '../support/keys.js';
import { auditEvents, metricSample, totpCode } from '../support/mfa.js';
import { openTestStore, twoInstanceStores } from '../support/store.js';

const ADMIN = 'oncall:admin-credential-0123456789-abcdefghijklmnop';
const BEARER = { authorization: 'Bearer admin-credential-0123456789-abcdefghijklmnop' };
const ENV = { KEY_ENCRYPTION_SECRET: TEST_KEY_SECRET, ADMIN_TOKENS: ADMIN };

const post = (a: TestApp, url: string, payload?: unknown) =>
  a.server.inject({ method: 'POST', url, headers: BEARER, ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}) });

interface KeyView { kid: string; alg: string; state: string; [member: string]: unknown }

describe('admin API: signing keys on a running server', () => {
  const toClose: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const c of toClose.splice(0).reverse()) await c.close();
  });
  async function app(env: Record<string, string> = {}, options: Parameters<typeof createTestApp>[1] = {}): Promise<TestApp> {
    const a = await createTestApp({ ...ENV, ...env }, options);
    toClose.push(a);
    return a;
  }
  const list = async (a: TestApp) => {
    const res = await a.server.inject({ method: 'GET', url: '/admin/keys', headers: BEARER });
    expect(res.statusCode).toBe(200);
    return (res.json() as { keys: KeyView[] }).keys;
  };
  const jwksKids = async (a: TestApp) => ((await a.server.inject('/jwks')).json() as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
  const discoveryAlgs = async (a: TestApp) =>
    ((await a.server.inject('/.well-known/openid-configuration')).json() as { id_token_signing_alg_values_supported: string[] }).id_token_signing_alg_values_supported;
  const kidIn = (keys: KeyView[], state: string) => keys.find((k) => k.state === state)?.kid;

  it('needs an admin bearer credential on every key route', async () => {
    const a = await app();
    const kid = keyManagerOf(a).signingKey().kid;
    for (const [method, url] of [['GET', '/admin/keys'], ['POST', '/admin/keys/rotate'], ['POST', `/admin/keys/${kid}/revoke`],
      ['POST', `/admin/keys/${kid}/reactivate`], ['POST', '/admin/keys/re-encrypt']] as const) {
      const res = await a.server.inject({ method, url, headers: { authorization: 'Bearer not-the-admin-credential-0123456789abcdef' } });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    }
    expect(keyManagerOf(a).signingKey().kid).toBe(kid);
  });

  it('GET /admin/keys lists every key as `keys list --json` does, never key material', async () => {
    const a = await app();
    const keys = await list(a);
    expect(keys.map((k) => k.state).sort()).toEqual(['active', 'next']);
    for (const k of keys) {
      expect(Object.keys(k).sort()).toEqual(['activated_at', 'alg', 'created_at', 'kid', 'removed_at', 'retired_at', 'revoked_at', 'revoked_reason', 'state']);
    }
    expect(kidIn(keys, 'active')).toBe(keyManagerOf(a).signingKey().kid);
  });

  it('rotates, revokes and re-activates at once: the JWKS, discovery and the signing key follow each change', async () => {
    const a = await app();
    const keys = keyManagerOf(a);
    const first = keys.signingKey().kid;
    const beforeRotation = await signToken(keys, systemClock, 600);

    // A bad rotation …
    const rotated = await post(a, '/admin/keys/rotate', { alg: 'ES256' });
    expect(rotated.statusCode).toBe(200);
    const bad = keys.signingKey().kid;
    expect(bad).not.toBe(first);
    expect((rotated.json() as { transitions: Array<{ action: string; kid: string }> }).transitions.map((t) => `${t.action}:${t.kid === first ? 'first' : t.kid === bad ? 'bad' : 'new'}`))
      .toEqual(['retired:first', 'activated:bad', 'created:new']);
    const afterRotation = await list(a);
    const next = kidIn(afterRotation, 'next')!;
    expect(await jwksKids(a)).toEqual([bad, next, first]);

    // … rolled back: the retired key signs again, the bad one is retired but still published, the next key stays.
    const rolledBack = await post(a, `/admin/keys/${first}/reactivate`);
    expect(rolledBack.statusCode).toBe(200);
    expect(rolledBack.json()).toEqual({ transitions: [
      { action: 'retired', kid: bad, alg: 'ES256' },
      { action: 'reactivated', kid: first, alg: 'ES256' },
    ] });
    expect(keys.signingKey().kid).toBe(first);
    const states = Object.fromEntries((await list(a)).map((k) => [k.kid, k.state]));
    expect(states).toEqual({ [first]: 'active', [bad]: 'retired', [next]: 'next' });
    expect((await list(a)).find((k) => k.kid === first)!.retired_at).toBeNull();
    expect(await jwksKids(a)).toEqual([first, next, bad]);
    expect(await discoveryAlgs(a)).toEqual(['ES256']);
    // Tokens of the re-activated key verify: signed before the rotation, and newly signed.
    expect((await verifyThroughJwks(a, beforeRotation.token, systemClock)).protectedHeader.kid).toBe(first);
    const fresh = await signToken(keys, systemClock, 600);
    expect(fresh.kid).toBe(first);
    expect((await verifyThroughJwks(a, fresh.token, systemClock)).payload.sub).toBe('alice');

    const reactivated = await auditEvents(a, 'key.reactivated');
    expect(reactivated.map((e) => e.details)).toEqual([expect.objectContaining({ kid: first, alg: 'ES256', replaced: bad, by: 'admin_api', admin: 'oncall' })]);
    expect(await metricSample(a, 'latchkey_signing_key_rotations_total{alg="ES256",trigger="rollback"}')).toBe(1);
    expect(await metricSample(a, 'latchkey_signing_key_rotations_total{alg="ES256",trigger="manual"}')).toBe(1);

    // Revoking the bad key: unpublished at once, audited with the admin's name and reason.
    const revoked = await post(a, `/admin/keys/${bad}/revoke`, { reason: 'bad rotation' });
    expect(revoked.statusCode).toBe(200);
    expect(await jwksKids(a)).toEqual([first, next]);
    expect((await auditEvents(a, 'key.revoked')).map((e) => e.details)).toEqual([
      expect.objectContaining({ kid: bad, previous_state: 'retired', reason: 'bad rotation', admin: 'oncall' }),
    ]);
    expect(await discoveryAlgs(a)).toEqual(['ES256']);
  });

  it('answers 404 for an unknown kid and 400 for a key that cannot be re-activated or revoked', async () => {
    const a = await app();
    const keys = keyManagerOf(a);
    const active = keys.signingKey().kid;
    expect((await post(a, '/admin/keys/no-such-kid/reactivate')).statusCode).toBe(404);
    expect((await post(a, '/admin/keys/no-such-kid/revoke', { reason: 'x' })).json()).toEqual(expect.objectContaining({ error: 'not_found' }));

    // The active key is not retired: nothing to roll back to.
    const notRetired = await post(a, `/admin/keys/${active}/reactivate`);
    expect(notRetired.statusCode).toBe(400);
    expect(notRetired.json()).toEqual(expect.objectContaining({ error: 'invalid_request' }));

    // A revoked key never signs again.
    await post(a, '/admin/keys/rotate');
    expect((await post(a, `/admin/keys/${active}/revoke`, { reason: 'leaked' })).statusCode).toBe(200);
    const revokedAgain = await post(a, `/admin/keys/${active}/reactivate`);
    expect(revokedAgain.statusCode).toBe(400);
    expect((revokedAgain.json() as { error_description: string }).error_description).toContain('is revoked');
    expect(keys.signingKey().kid).not.toBe(active);
    expect(await jwksKids(a)).not.toContain(active);
    expect((await post(a, `/admin/keys/${active}/revoke`, { reason: 'again' })).statusCode).toBe(400);

    // A revocation needs a reason; rotate takes only a known algorithm of SIGNING_ALGS.
    const current = keys.signingKey().kid;
    expect((await post(a, `/admin/keys/${current}/revoke`, {})).statusCode).toBe(400);
    expect((await post(a, `/admin/keys/${current}/revoke`, { reason: '  ' })).statusCode).toBe(400);
    expect((await post(a, '/admin/keys/rotate', { alg: 'HS256' })).statusCode).toBe(400);
    expect((await post(a, '/admin/keys/rotate', { alg: 'EdDSA' })).statusCode).toBe(400);
    expect((await post(a, '/admin/keys/rotate', ['ES256'])).statusCode).toBe(400);
    expect(keys.signingKey().kid).toBe(current);
  });

  it('a re-activation made on one instance is applied by every instance without restart (NOTIFY)', async () => {
    const stores = await twoInstanceStores();
    toClose.push(stores);
    const a = await app({}, { store: stores.a });
    const b = await app({}, { store: stores.b });
    const first = keyManagerOf(a).signingKey().kid;
    await post(a, '/admin/keys/rotate');
    await eventually(() => keyManagerOf(b).signingKey().kid !== first, 'instance B follows the rotation');
    expect((await post(b, `/admin/keys/${first}/reactivate`)).statusCode).toBe(200);
    await eventually(() => keyManagerOf(a).signingKey().kid === first, 'instance A follows the re-activation made through B');
    expect(await jwksKids(a)).toEqual(await jwksKids(b));
  });
});

describe('changing KEY_ENCRYPTION_SECRET on a running deployment', () => {
  const OLD = 'the-old-key-encryption-secret-0123456789abcdef';
  const NEW = 'the-new-key-encryption-secret-0123456789abcdef';
  const T = new Date('2030-01-01T00:00:00Z');
  const later = (s: number) => new Date(T.getTime() + s * 1000);

  it('starts with the new secret and the previous one, works, re-encrypts, then needs the new secret alone', async () => {
    const store = await openTestStore();
    try {
      // Written under the old secret: the signing keys, and a TOTP factor.
      const before = await createTestApp({ KEY_ENCRYPTION_SECRET: OLD, ADMIN_TOKENS: ADMIN }, { store });
      const signedBefore = await signToken(keyManagerOf(before), systemClock, 600);
      const user = await new UserRepository(store.db).create({ username: 'carol' }, T);
      const enrol = new TotpFactors(store.db, before.context.keyEncryptionSecrets, 'id.example.com');
      const { secret } = (await enrol.begin(user, T))!;
      expect(await enrol.confirm(user.id, totpCode(secret, T), T)).toBe('ok');
      await before.close();

      // The new secret alone does not start (the keys are under the old one) …
      await expect(createTestApp({ KEY_ENCRYPTION_SECRET: NEW }, { store })).rejects.toThrow(/KEY_ENCRYPTION_SECRET_PREVIOUS/);
      // … with the old one as KEY_ENCRYPTION_SECRET_PREVIOUS it does, and everything works.
      const during = await createTestApp({ KEY_ENCRYPTION_SECRET: NEW, KEY_ENCRYPTION_SECRET_PREVIOUS: OLD, ADMIN_TOKENS: ADMIN }, { store });
      const keysDuring = keyManagerOf(during);
      expect(keysDuring.signingKey().kid).toBe(signedBefore.kid);
      expect((await verifyThroughJwks(during, signedBefore.token, systemClock)).payload.sub).toBe('alice');
      const signedDuring = await signToken(keysDuring, systemClock, 600);
      expect((await verifyThroughJwks(during, signedDuring.token, systemClock)).payload.sub).toBe('alice');
      const totpDuring = new TotpFactors(store.db, during.context.keyEncryptionSecrets, 'id.example.com');
      expect(await totpDuring.verify(user.id, totpCode(secret, later(30)), later(30))).toBe('ok');
      // A rotation meanwhile seals its new key under the new secret.
      await keysDuring.rotate();

      const res = await during.server.inject({ method: 'POST', url: '/admin/keys/re-encrypt', headers: BEARER });
      expect(res.statusCode).toBe(200);
      // Two keys from the first start, one created by the rotation (under the new secret already).
      expect(res.json()).toEqual({ tables: [
        { table: 'signing_keys', re_encrypted: 3, from_previous: 2 },
        { table: 'totp_factors', re_encrypted: 1, from_previous: 1 },
      ] });
      const audited = await auditEvents(during, 'key.re_encrypted');
      expect(audited.map((e) => e.details)).toEqual([expect.objectContaining({ re_encrypted: 4, from_previous: 2 + 1, admin: 'oncall', by: 'admin_api' })]);
      expect(JSON.stringify(audited)).not.toContain(OLD.slice(0, 12));
      const again = await during.server.inject({ method: 'POST', url: '/admin/keys/re-encrypt', headers: BEARER });
      expect(again.json()).toEqual({ tables: [
        { table: 'signing_keys', re_encrypted: 3, from_previous: 0 },
        { table: 'totp_factors', re_encrypted: 1, from_previous: 0 },
      ] });
      const activeDuring = keysDuring.signingKey().kid;
      await during.close();

      // The previous secret dropped: the new one alone starts, signs, verifies, checks the TOTP code.
      const after = await createTestApp({ KEY_ENCRYPTION_SECRET: NEW, ADMIN_TOKENS: ADMIN }, { store });
      try {
        const keysAfter = keyManagerOf(after);
        expect(keysAfter.signingKey().kid).toBe(activeDuring);
        const signedAfter = await signToken(keysAfter, systemClock, 600);
        expect((await verifyThroughJwks(after, signedAfter.token, systemClock)).payload.sub).toBe('alice');
        expect((await verifyThroughJwks(after, signedDuring.token, systemClock)).payload.sub).toBe('alice');
        // The retired key's private material was re-sealed too: rolling back to it still works.
        expect((await post(after, `/admin/keys/${signedBefore.kid}/reactivate`)).statusCode).toBe(200);
        expect(keysAfter.signingKey().kid).toBe(signedBefore.kid);
        expect(await new TotpFactors(store.db, NEW, 'id.example.com').verify(user.id, totpCode(secret, later(60)), later(60))).toBe('ok');
      } finally {
        await after.close();
      }
      // And the old secret no longer opens anything.
      await expect(createTestApp({ KEY_ENCRYPTION_SECRET: OLD }, { store })).rejects.toThrow(/does not decrypt the signing keys/);
    } finally {
      await store.close();
    }
  });

  it('refuses KEY_ENCRYPTION_SECRET_PREVIOUS without KEY_ENCRYPTION_SECRET, or equal to it', async () => {
    await expect(createTestApp({ KEY_ENCRYPTION_SECRET_PREVIOUS: OLD })).rejects.toThrow(/KEY_ENCRYPTION_SECRET_PREVIOUS: needs KEY_ENCRYPTION_SECRET/);
    await expect(createTestApp({ KEY_ENCRYPTION_SECRET: OLD, KEY_ENCRYPTION_SECRET_PREVIOUS: OLD })).rejects.toThrow(/must differ from KEY_ENCRYPTION_SECRET/);
  });
});
