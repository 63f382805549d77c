import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/server/capabilities.js';
import { expiredChallengesBatch, Passkeys } from '../../src/capabilities/mfa/passkeys.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { UserRepository } from '../../src/users/user-store.js';
import { openTestStore } from '../support/store.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';

const ORIGIN = 'https://id.example.com';
const RP_ID = 'id.example.com';

describe('passkeys (WebAuthn Level 3)', () => {
  let store: Store;
  let passkeys: Passkeys;
  let alice: { id: string; username: string };
  let bob: { id: string; username: string };
  let carol: { id: string; username: string };
  const now = new Date('2026-06-01T00:00:00Z');
  const later = (seconds: number) => new Date(now.getTime() + seconds * 1000);
  const device = (opts: Partial<ConstructorParameters<typeof SoftwareAuthenticator>[0]> = {}) =>
    new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID, ...opts });

  /** Registers a new passkey of `user` on `authenticator`; its credential id. */
  async function enrol(user: { id: string; username: string }, authenticator: SoftwareAuthenticator, name = 'Laptop'): Promise<string> {
    const result = await passkeys.register(user, authenticator.create(await passkeys.registrationOptions(user, now)), name, now);
    if (!result.ok) throw new Error(`registration failed: ${result.reason}`);
    return result.passkey.id;
  }

  async function storedCounter(id: string): Promise<number> {
    const row = await store.db.selectFrom('webauthn_credentials').select('counter').where('id', '=', id).executeTakeFirstOrThrow();
    return Number(row.counter);
  }

  beforeAll(async () => {
    store = await openTestStore();
    // Every migration, in name order (the released ones and each capability's, mfa's among them).
    await migrate(store.db, MIGRATIONS);
    passkeys = new Passkeys(store.db, { rpId: RP_ID, rpName: 'Latchkey', origin: ORIGIN });
    const users = new UserRepository(store.db);
    const create = async (username: string) => ({ id: (await users.create({ username }, now)).id, username });
    alice = await create('alice');
    bob = await create('bob');
    carol = await create('carol');
  });
  afterAll(async () => { await store.close(); });

  describe('registration (§7.1)', () => {
    it('offers a discoverable, user-verified credential for the account, excluding its passkeys', async () => {
      const first = device();
      const id = await enrol(carol, first);
      const options = await passkeys.registrationOptions(carol, now);
      expect(options.rp).toEqual({ id: RP_ID, name: 'Latchkey' });
      expect(Buffer.from(options.user.id, 'base64url').toString('utf8')).toBe(carol.id);
      expect(options.user.name).toBe('carol');
      expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'required' });
      expect(options.attestation).toBe('none');
      expect(options.timeout).toBe(300_000);
      expect(options.excludeCredentials).toEqual([{ id, type: 'public-key', transports: ['internal', 'hybrid'] }]);
      expect(() => first.create(options)).toThrow('InvalidStateError');
    });

    it('stores a device-bound passkey with its name, and lists it', async () => {
      const user = { id: (await new UserRepository(store.db).create({ username: 'dave' }, now)).id, username: 'dave' };
      const options = await passkeys.registrationOptions(user, now);
      const result = await passkeys.register(user, device().create(options), '  Work key  ', now);
      expect(result).toEqual({ ok: true, userVerified: true, passkey: { id: expect.any(String), name: 'Work key', createdAt: now, lastUsedAt: null, deviceBound: true, backedUp: false } });
      expect(await passkeys.list(user.id)).toEqual([result.ok && result.passkey]);
      expect(await passkeys.count(user.id)).toBe(1);
    });

    it('stores a synced passkey as not device-bound and backed up, named Passkey when the name is blank', async () => {
      const options = await passkeys.registrationOptions(carol, now);
      const result = await passkeys.register(carol, device({ backupEligible: true }).create(options), '   ', now);
      expect(result).toMatchObject({ ok: true, passkey: { name: 'Passkey', deviceBound: false, backedUp: true } });
    });

    it('cuts a long name to 64 characters', async () => {
      const options = await passkeys.registrationOptions(carol, now);
      const result = await passkeys.register(carol, device().create(options), 'é'.repeat(100), now);
      expect(result.ok && result.passkey.name).toBe('é'.repeat(64));
    });

    it('removes control characters from the name and drops transports that are not tokens', async () => {
      const options = await passkeys.registrationOptions(carol, now);
      const response = device().create(options);
      response.response.transports = ['usb', 'x\u0000', 7 as unknown as string, 'hybrid'];
      const result = await passkeys.register(carol, response, 'Phone\u0000\n', now);
      expect(result.ok && result.passkey.name).toBe('Phone');
      const row = await store.db.selectFrom('webauthn_credentials').select('transports').where('id', '=', response.id).executeTakeFirstOrThrow();
      expect(row.transports).toEqual(['usb', 'hybrid']);
    });

    it('accepts a registration challenge once', async () => {
      const options = await passkeys.registrationOptions(carol, now);
      const response = device().create(options);
      expect((await passkeys.register(carol, response, 'A', now)).ok).toBe(true);
      expect(await passkeys.register(carol, response, 'A', now)).toEqual({ ok: false, reason: 'bad_challenge' });
    });

    it("refuses a registration challenge issued for another account", async () => {
      const options = await passkeys.registrationOptions(carol, now);
      expect(await passkeys.register(bob, device().create(options), 'A', now)).toEqual({ ok: false, reason: 'bad_challenge' });
    });

    it('refuses a response from another origin (§7.1 step 9) and stores nothing', async () => {
      const before = await passkeys.count(carol.id);
      const options = await passkeys.registrationOptions(carol, now);
      expect(await passkeys.register(carol, device().create(options, { origin: 'https://evil.example' }), 'A', now)).toEqual({ ok: false, reason: 'invalid' });
      expect(await passkeys.count(carol.id)).toBe(before);
    });

    it('refuses a credential made without user verification (§7.1 step 15)', async () => {
      const before = await passkeys.count(carol.id);
      const options = await passkeys.registrationOptions(carol, now);
      expect(await passkeys.register(carol, device({ uv: false }).create(options), 'A', now)).toEqual({ ok: false, reason: 'user_verification_required' });
      expect(await passkeys.count(carol.id)).toBe(before);
    });

    it('refuses an expired registration challenge', async () => {
      const options = await passkeys.registrationOptions(carol, now);
      expect(await passkeys.register(carol, device().create(options), 'A', later(301))).toEqual({ ok: false, reason: 'bad_challenge' });
    });

    it('answers malformed responses with invalid, never throwing', async () => {
      for (const response of [undefined, null, 'x', 42, {}, { response: {} }, { response: { clientDataJSON: 'not json' } }, { id: 1, response: { clientDataJSON: 7 } }]) {
        expect(await passkeys.register(carol, response, 'A', now)).toEqual({ ok: false, reason: 'invalid' });
      }
    });
  });

  describe('authentication (§7.2)', () => {
    let aliceKey: SoftwareAuthenticator;
    let aliceId: string;
    let bobKey: SoftwareAuthenticator;
    let bobId: string;
    beforeAll(async () => {
      aliceKey = device();
      aliceId = await enrol(alice, aliceKey);
      bobKey = device();
      bobId = await enrol(bob, bobKey);
    });

    it('signs in without a username with a user-verified passkey', async () => {
      const options = await passkeys.authenticationOptions(undefined, now);
      expect(options.allowCredentials).toBeUndefined();
      expect(options.userVerification).toBe('required');
      expect(options.rpId).toBe(RP_ID);
      const result = await passkeys.authenticate(aliceKey.get(options), { requireUserVerification: true }, later(1));
      expect(result).toEqual({ ok: true, userId: alice.id, credentialId: aliceId, userVerified: true, deviceBound: true, backedUp: false });
      expect((await passkeys.list(alice.id))[0]!.lastUsedAt).toEqual(later(1));
    });

    it('refuses a passkey sign-in without user verification when it is required', async () => {
      const options = await passkeys.authenticationOptions(undefined, now);
      expect(await passkeys.authenticate(aliceKey.get(options, { uv: false }), { requireUserVerification: true }, now))
        .toEqual({ ok: false, reason: 'user_verification_required', userId: alice.id, credentialId: aliceId });
    });

    it('accepts a second factor without user verification when not required', async () => {
      const options = await passkeys.authenticationOptions(alice.id, now);
      expect(options.allowCredentials).toEqual([{ id: aliceId, type: 'public-key', transports: ['internal', 'hybrid'] }]);
      expect(options.userVerification).toBe('preferred');
      expect(await passkeys.authenticate(aliceKey.get(options, { uv: false }), { userId: alice.id, requireUserVerification: false }, now))
        .toMatchObject({ ok: true, userId: alice.id, credentialId: aliceId, userVerified: false });
    });

    it('refuses another account\'s passkey as a second factor', async () => {
      const options = await passkeys.authenticationOptions(alice.id, now);
      expect(await passkeys.authenticate(bobKey.get(options, { credentialId: bobId }), { userId: alice.id, requireUserVerification: false }, now))
        .toEqual({ ok: false, reason: 'wrong_user', userId: bob.id, credentialId: bobId });
    });

    it('refuses a challenge issued for another account, or for a sign-in without one', async () => {
      const forBob = await passkeys.authenticationOptions(bob.id, now);
      expect(await passkeys.authenticate(aliceKey.get(forBob, { credentialId: aliceId }), { userId: alice.id, requireUserVerification: false }, now))
        .toEqual({ ok: false, reason: 'bad_challenge' });
      const usernameless = await passkeys.authenticationOptions(undefined, now);
      expect(await passkeys.authenticate(aliceKey.get(usernameless), { userId: alice.id, requireUserVerification: false }, now))
        .toEqual({ ok: false, reason: 'bad_challenge' });
    });

    it('refuses a user handle naming another account (§7.2 step 6)', async () => {
      const options = await passkeys.authenticationOptions(undefined, now);
      const response = aliceKey.get(options);
      response.response.userHandle = Buffer.from(bob.id).toString('base64url');
      expect(await passkeys.authenticate(response, { requireUserVerification: true }, now)).toMatchObject({ ok: false, reason: 'invalid' });
    });

    it('refuses an assertion from another origin, or with a bad signature', async () => {
      let options = await passkeys.authenticationOptions(undefined, now);
      expect(await passkeys.authenticate(aliceKey.get(options, { origin: 'https://evil.example' }), { requireUserVerification: true }, now))
        .toEqual({ ok: false, reason: 'invalid', userId: alice.id, credentialId: aliceId });
      options = await passkeys.authenticationOptions(undefined, now);
      const forged = aliceKey.get(options);
      forged.response.signature = bobKey.get({ challenge: options.challenge, rpId: RP_ID }).response.signature;
      expect(await passkeys.authenticate(forged, { requireUserVerification: true }, now)).toMatchObject({ ok: false, reason: 'invalid' });
    });

    it('refuses an expired challenge', async () => {
      const options = await passkeys.authenticationOptions(undefined, now);
      expect(await passkeys.authenticate(aliceKey.get(options), { requireUserVerification: true }, later(300)))
        .toEqual({ ok: false, reason: 'bad_challenge' });
    });

    it('answers a removed passkey with unknown_credential', async () => {
      const key = device();
      const id = await enrol(carol, key);
      expect(await passkeys.remove(alice.id, id)).toBe(false);
      expect(await passkeys.remove(carol.id, id)).toBe(true);
      expect(await passkeys.remove(carol.id, id)).toBe(false);
      const options = await passkeys.authenticationOptions(undefined, now);
      expect(await passkeys.authenticate(key.get(options), { requireUserVerification: true }, now)).toEqual({ ok: false, reason: 'unknown_credential' });
    });

    it('answers malformed responses with invalid, never throwing', async () => {
      const malformed: ((good: ReturnType<SoftwareAuthenticator['get']>) => unknown)[] = [
        () => undefined, () => null, () => [], () => ({ response: null }), (good) => ({ ...good, id: 5 }),
        (good) => ({ ...good, response: { ...good.response, authenticatorData: 3 } }),
        (good) => ({ ...good, type: 'password' }),
        (good) => ({ ...good, id: 'a\u0000b' }),
        (good) => ({ ...good, id: 'x'.repeat(1365) }),
      ];
      for (const make of malformed) {
        const good = aliceKey.get(await passkeys.authenticationOptions(undefined, now));
        expect(await passkeys.authenticate(make(good), { requireUserVerification: true }, now)).toMatchObject({ ok: false, reason: 'invalid' });
      }
    });
  });

  describe('signature counter (§6.1.1)', () => {
    it('accepts a growing counter and refuses one that did not grow, keeping the highest', async () => {
      const key = device();
      const id = await enrol(carol, key);
      const assert = async (counter: number) =>
        passkeys.authenticate(key.get(await passkeys.authenticationOptions(carol.id, now), { credentialId: id, counter }), { userId: carol.id, requireUserVerification: true }, now);
      expect(await assert(5)).toMatchObject({ ok: true });
      expect(await assert(6)).toMatchObject({ ok: true });
      expect(await assert(6)).toEqual({ ok: false, reason: 'counter_regression', userId: carol.id, credentialId: id });
      expect(await assert(3)).toEqual({ ok: false, reason: 'counter_regression', userId: carol.id, credentialId: id });
      expect(await assert(0)).toMatchObject({ ok: false, reason: 'counter_regression' });
      expect(await storedCounter(id)).toBe(6);
    });

    it('accepts an authenticator that keeps no counter (always 0) every time', async () => {
      const key = device({ zeroCounter: true, backupEligible: true });
      const id = await enrol(carol, key);
      for (let i = 0; i < 3; i++) {
        const result = await passkeys.authenticate(key.get(await passkeys.authenticationOptions(undefined, now), { credentialId: id }), { requireUserVerification: true }, now);
        expect(result).toMatchObject({ ok: true, userId: carol.id, credentialId: id, deviceBound: false, backedUp: true });
      }
      expect(await storedCounter(id)).toBe(0);
    });

    it('accepts one of two parallel assertions reporting the same counter (each with its own challenge)', async () => {
      const key = device();
      const id = await enrol(carol, key);
      const responses = await Promise.all([1, 2].map(async () => key.get(await passkeys.authenticationOptions(undefined, now), { credentialId: id, counter: 7 })));
      const results = await Promise.all(responses.map((r) => passkeys.authenticate(r, { requireUserVerification: true }, now)));
      expect(results.map((r) => (r.ok ? 'ok' : r.reason)).sort()).toEqual(['counter_regression', 'ok']);
      expect(await storedCounter(id)).toBe(7);
    });

    it('records a change of the backup state (BS)', async () => {
      const key = device({ backupEligible: true, backedUp: false });
      const id = await enrol(carol, key);
      expect((await passkeys.list(carol.id)).find((p) => p.id === id)?.backedUp).toBe(false);
      const result = await passkeys.authenticate(key.get(await passkeys.authenticationOptions(undefined, now), { credentialId: id, backedUp: true }), { requireUserVerification: true }, now);
      expect(result).toMatchObject({ ok: true, backedUp: true });
      expect((await passkeys.list(carol.id)).find((p) => p.id === id)?.backedUp).toBe(true);
    });
  });

  it('accepts one of five parallel presentations of an assertion (the challenge is single-use)', async () => {
    const key = device();
    await enrol(carol, key);
    const response = key.get(await passkeys.authenticationOptions(undefined, now));
    const results = await Promise.all(Array.from({ length: 5 }, () => passkeys.authenticate(structuredClone(response), { requireUserVerification: true }, now)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual(Array(4).fill({ ok: false, reason: 'bad_challenge' }));
  });

  it('lists oldest first, counts, and removes all of an account\'s passkeys', async () => {
    const user = { id: (await new UserRepository(store.db).create({ username: 'erin' }, now)).id, username: 'erin' };
    const key = device();
    const first = (await passkeys.register(user, key.create(await passkeys.registrationOptions(user, now)), 'One', now));
    const second = (await passkeys.register(user, device().create(await passkeys.registrationOptions(user, later(1))), 'Two', later(1)));
    expect(first.ok && second.ok).toBe(true);
    expect((await passkeys.list(user.id)).map((p) => p.name)).toEqual(['One', 'Two']);
    expect(await passkeys.count(user.id)).toBe(2);
    expect(await passkeys.removeAll(user.id)).toBe(2);
    expect(await passkeys.list(user.id)).toEqual([]);
    expect(await passkeys.removeAll(user.id)).toBe(0);
  });

  it('cleans up expired challenges only, in bounded batches', async () => {
    await store.db.deleteFrom('webauthn_challenges').execute();
    await passkeys.authenticationOptions(undefined, now);
    await passkeys.authenticationOptions(undefined, now);
    await passkeys.authenticationOptions(undefined, later(200));
    const left = async () => (await store.db.selectFrom('webauthn_challenges').select('expires_at').execute()).length;
    await expiredChallengesBatch(later(301), 1).execute(store.db);
    expect(await left()).toBe(2);
    await expiredChallengesBatch(later(301), 10).execute(store.db);
    expect(await left()).toBe(1);
    expect(await store.db.selectFrom('webauthn_challenges').select('expires_at').execute()).toEqual([{ expires_at: later(500) }]);
  });
});
