import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEVICE_CODE, deviceCodeGrant, PollPacer, type DeviceGrantDeps, type PollAnswer } from '../../src/capabilities/device-authorization/device-grant.js';
import type { DeviceAuthorization, DeviceAuthorizationRepository, PollOutcome } from '../../src/capabilities/device-authorization/device-store.js';
import {
  displayUserCode, newUserCode, normaliseUserCode, USER_CODE_ALPHABET, USER_CODE_LENGTH, USER_CODE_SPACE,
} from '../../src/capabilities/device-authorization/user-code.js';
import type { Client } from '../../src/oauth/client.js';
import { AuthorizationPending, DeviceAccessDenied, ExpiredToken, InvalidGrant, InvalidRequest, InvalidTarget, SlowDown } from '../../src/oauth/errors.js';
import { SuccessorSealer } from '../../src/oauth/refresh-families/rotation.js';
import { sha256 } from '../../src/platform/crypto.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing, person, testClient } from '../support/kernel.js';
import { counterValue, MemoryRefreshFamilies, testRefreshMetrics } from '../support/refresh-families.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const DEVICE_CODE_VALUE = 'd'.repeat(43);
const AUTH_TIME = new Date('2029-12-31T23:55:00Z');
const LIFETIMES = { idle: 1000, absolute: 9000, publicIdle: 100, publicAbsolute: 900 };

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

const PENDING: PollOutcome = { outcome: 'pending', intervalSeconds: 5, expiresAt: new Date('2030-01-01T00:10:00Z') };

/** The one method the grant calls, answering whatever outcome the test sets; every call recorded. */
class FakeDevices {
  next: PollOutcome = PENDING;
  readonly calls: Array<{ deviceCodeHash: Buffer; clientId: string; now: Date; resources: readonly string[] }> = [];
  async poll(deviceCodeHash: Buffer, clientId: string, now: Date, resources: readonly string[] = []): Promise<PollOutcome> {
    this.calls.push({ deviceCodeHash, clientId, now, resources });
    return this.next;
  }
}

/** An approved authorization as the store returns it from the poll that redeems it. */
function approved(extra: Partial<DeviceAuthorization> = {}): DeviceAuthorization {
  return {
    device_code_hash: sha256(DEVICE_CODE_VALUE), user_code: 'BCDFGHJK', client_id: 'tv', scope: 'openid offline_access', audience: API,
    status: 'redeemed', interval_seconds: 5,
    created_at: new Date('2029-12-31T23:58:00Z'), expires_at: new Date('2030-01-01T00:08:00Z'),
    grant_id: 'grant-d1', user_id: 'alice', sid: 'sid-1', auth_time: AUTH_TIME, amr: ['pwd', 'otp'], acr: 'urn:latchkey:acr:mfa',
    decided_at: new Date('2029-12-31T23:59:00Z'), redeemed_at: new Date('2030-01-01T00:00:00Z'), ...extra,
  };
}

function setup() {
  const keys = new MemoryKeyRing(['ES256']);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const devices = new FakeDevices();
  const families = new MemoryRefreshFamilies();
  const users = new Map([['alice', person('alice', false)], ['bob', person('bob', true)]]);
  const answers: PollAnswer[] = [];
  const refreshMetrics = testRefreshMetrics();
  const deps: DeviceGrantDeps = {
    keys, clock, issuer: ISSUER, accessTokenTtl: 600, idTokenTtl: 300,
    devices: devices as unknown as DeviceAuthorizationRepository,
    users: { findById: async (id) => users.get(id) },
    refreshTokens: { store: families, sealer: new SuccessorSealer('a-key-encryption-secret-of-32-characters!'), lifetimes: LIFETIMES, gracePeriod: 30 },
    refreshMetrics,
    polled: (answer) => { answers.push(answer); },
    pacer: new PollPacer(),
  };
  const grant = deviceCodeGrant(deps);
  const tv = testClient('tv', {
    token_endpoint_auth_method: 'none', redirect_uris: [], grant_types: [DEVICE_GRANT, 'refresh_token'],
    scope: 'openid profile offline_access', resources: [API],
  });
  const poll = (client: Client = tv, params: Record<string, string> = { device_code: DEVICE_CODE_VALUE }, resources: string[] = []) =>
    grant.handle({ client, params, resources });
  return { keys, clock, devices, families, answers, grant, tv, poll, refreshMetrics };
}

describe('the device_code declaration (RFC 8628 §3.4)', () => {
  it('the RFC grant type, public clients allowed, reading only device_code', () => {
    const { grant } = setup();
    expect(grant.grantType).toBe(DEVICE_GRANT);
    expect(DEVICE_CODE.grantType).toBe(DEVICE_GRANT);
    expect(grant.publicClients).toBe(true);
    expect(grant.parameters).toEqual(['device_code']);
  });
});

describe('the poll answers (RFC 8628 §3.5)', () => {
  const cases: Array<[string, PollOutcome, new (...args: any[]) => Error, string, PollAnswer, string | RegExp]> = [
    ['pending', PENDING, AuthorizationPending, 'authorization_pending', 'authorization_pending', 'the user has not yet approved this device'],
    ['denied', { outcome: 'denied' }, DeviceAccessDenied, 'access_denied', 'access_denied', 'the user denied this device'],
    ['expired', { outcome: 'expired' }, ExpiredToken, 'expired_token', 'expired_token', 'the device code has expired; start again'],
    ['used', { outcome: 'used' }, InvalidGrant, 'invalid_grant', 'invalid_grant', 'the device code was already used'],
    ['unknown', { outcome: 'unknown' }, InvalidGrant, 'invalid_grant', 'invalid_grant', 'the device code is invalid, or was issued to another client'],
    ['resource_not_granted', { outcome: 'resource_not_granted' }, InvalidTarget, 'invalid_target', 'invalid_target', 'resource was not part of the device authorization request'],
  ];
  for (const [name, outcome, cls, error, answer, description] of cases) {
    it(`${name} → ${error} (400), polled('${answer}'), the store asked once with the code's SHA-256 and the client`, async () => {
      const { devices, answers, poll, clock } = setup();
      devices.next = outcome;
      const err = await rejection(poll());
      expect(err).toBeInstanceOf(cls);
      expect(err.error).toBe(error);
      expect(err.status).toBe(400);
      expect(err.description).toBe(description);
      expect(answers).toEqual([answer]);
      expect(devices.calls).toHaveLength(1);
      expect(devices.calls[0]!.deviceCodeHash.equals(sha256(DEVICE_CODE_VALUE))).toBe(true);
      expect(devices.calls[0]!.clientId).toBe('tv');
      expect(devices.calls[0]!.now).toEqual(clock.now());
    });
  }

  it('denied is the token endpoint\'s access_denied (400), not the authorization endpoint\'s (403)', async () => {
    const { devices, poll } = setup();
    devices.next = { outcome: 'denied' };
    const err = await rejection(poll());
    expect(err.status).toBe(400);
    expect(err).not.toBeInstanceOf(InvalidGrant);
  });

  it.each([
    ['too short', 'd'.repeat(42)],
    ['too long', 'd'.repeat(44)],
    ['not base64url', `${'d'.repeat(42)}+`],
    ['a user code', 'BCDF-GHJK'],
    ['empty', ''],
  ])('a malformed device_code (%s) → invalid_grant without touching the store', async (_name, code) => {
    const { devices, answers, poll } = setup();
    const err = await rejection(poll(undefined, { device_code: code }));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err.error).toBe('invalid_grant');
    expect(err.status).toBe(400);
    expect(err.description).toBe('the device code is invalid');
    expect(devices.calls).toEqual([]);
    expect(answers).toEqual(['invalid_grant']);
  });

  it('no device_code → invalid_request, the store untouched, no poll answer counted', async () => {
    const { devices, answers, poll } = setup();
    const err = await rejection(poll(undefined, {}));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.error).toBe('invalid_request');
    expect(err.status).toBe(400);
    expect(err.description).toBe('device_code is required');
    expect(devices.calls).toEqual([]);
    expect(answers).toEqual([]);
  });
});

describe('the tokens of an approved device (RFC 8628 §3.5, RFC 6749 §5.1)', () => {
  const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

  it('openid + offline_access with a refresh_token client: access, refresh and ID token; the approving sign-in in them', async () => {
    const { devices, answers, poll, keys, families, refreshMetrics } = setup();
    devices.next = { outcome: 'redeemed', authorization: approved() };
    const result = await poll();
    expect(Object.keys(result.response).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type']);
    expect(result.response).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'openid offline_access' });
    expect(answers).toEqual(['issued']);
    const { payload: at } = await jwtVerify(result.response.access_token, keys.publicKey(), { issuer: ISSUER, audience: API });
    expect(at).toMatchObject({ sub: 'alice', client_id: 'tv', scope: 'openid offline_access', gid: 'grant-d1', auth_time: Math.floor(AUTH_TIME.getTime() / 1000), acr: 'urn:latchkey:acr:mfa' });
    const { payload: id } = await jwtVerify(result.response.id_token!, keys.publicKey(), { issuer: ISSUER, audience: 'tv' });
    expect(id).toMatchObject({ sub: 'alice', sid: 'sid-1', amr: ['pwd', 'otp'], acr: 'urn:latchkey:acr:mfa', auth_time: Math.floor(AUTH_TIME.getTime() / 1000) });
    expect(id.nonce).toBeUndefined();
    // The refresh family is the grant's, counted as issued.
    expect([...families.families.keys()]).toEqual(['grant-d1']);
    expect(await counterValue(refreshMetrics.refreshTokens, { outcome: 'issued' })).toBe(1);
    expect(families.families.get('grant-d1')).toMatchObject({ user_id: 'alice', client_id: 'tv' });
    expect(result.issued).toEqual({ sub: 'alice', scope: 'openid offline_access', jti: at.jti });
    expect(result.audit).toEqual([{ event: 'device.redeemed', fields: { client_id: 'tv', sub: 'alice', grant_id: 'grant-d1' } }]);
  });

  it('`resource` (RFC 8707 §2.2) goes to the store and narrows the access token\'s audience; the family keeps the whole grant', async () => {
    const { devices, poll, keys, families } = setup();
    devices.next = { outcome: 'redeemed', authorization: approved({ audience: [API, 'https://reports.example.com'] }) };
    const result = await poll(undefined, undefined, [API]);
    expect(devices.calls[0]!.resources).toEqual([API]);
    const { payload } = await jwtVerify(result.response.access_token, keys.publicKey(), { issuer: ISSUER });
    expect(payload.aud).toBe(API);
    expect(families.families.get('grant-d1')!.audience).toEqual([API, 'https://reports.example.com']);
  });

  it('without offline_access granted: no refresh token, no family, none counted', async () => {
    const { devices, poll, families, refreshMetrics } = setup();
    devices.next = { outcome: 'redeemed', authorization: approved({ scope: 'openid profile' }) };
    const result = await poll();
    expect(Object.keys(result.response).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'scope', 'token_type']);
    expect(families.families.size).toBe(0);
    expect(await counterValue(refreshMetrics.refreshTokens, { outcome: 'issued' })).toBe(0);
  });

  it('offline_access granted but the client not registered for refresh_token: no refresh token', async () => {
    const { devices, grant, families } = setup();
    const noRefresh = testClient('tv', { token_endpoint_auth_method: 'none', redirect_uris: [], grant_types: [DEVICE_GRANT], scope: 'openid offline_access' });
    devices.next = { outcome: 'redeemed', authorization: approved() };
    const result = await grant.handle({ client: noRefresh, params: { device_code: DEVICE_CODE_VALUE }, resources: [] });
    expect(result.response.refresh_token).toBeUndefined();
    expect(result.response.id_token).toEqual(expect.any(String));
    expect(families.families.size).toBe(0);
  });

  it('without openid: no ID token (an OAuth device, not a sign-in)', async () => {
    const { devices, poll } = setup();
    devices.next = { outcome: 'redeemed', authorization: approved({ scope: 'offline_access' }) };
    const result = await poll();
    expect(Object.keys(result.response).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
  });

  it('the approving user disabled since: invalid_grant, polled(\'invalid_grant\'), no tokens, no family', async () => {
    const { devices, poll, answers, families } = setup();
    devices.next = { outcome: 'redeemed', authorization: approved({ user_id: 'bob' }) };
    const err = await rejection(poll());
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err.description).toBe('the user who approved this device is no longer active');
    expect(answers).toEqual(['invalid_grant']);
    expect(families.families.size).toBe(0);
  });

  it('the approving user deleted since: invalid_grant', async () => {
    const { devices, poll } = setup();
    devices.next = { outcome: 'redeemed', authorization: approved({ user_id: 'carol' }) };
    expect((await rejection(poll())).error).toBe('invalid_grant');
  });

  it('polled is called with each answer, in order, over a whole flow', async () => {
    const { devices, poll, answers, clock } = setup();
    devices.next = PENDING;
    await poll().catch(() => undefined);
    await poll().catch(() => undefined); // at the same instant: slow_down, the interval now 10 s
    clock.advance(10);
    await poll().catch(() => undefined);
    devices.next = { outcome: 'redeemed', authorization: approved() };
    await poll().catch(() => undefined);
    devices.next = { outcome: 'used' };
    await poll().catch(() => undefined);
    expect(answers).toEqual(['authorization_pending', 'slow_down', 'authorization_pending', 'issued', 'invalid_grant']);
  });

  it('slow_down (§3.5): a poll sooner than the interval, described with the interval that now holds (5 → 10)', async () => {
    const { devices, poll, clock } = setup();
    devices.next = PENDING;
    await rejection(poll());
    clock.advance(4);
    const err = await rejection(poll());
    expect(err).toBeInstanceOf(SlowDown);
    expect([err.error, err.status, err.description]).toEqual(['slow_down', 400, 'polling too fast: wait at least 10 seconds between requests']);
  });
});

describe('PollPacer (RFC 8628 §3.5 slow_down, in memory)', () => {
  const expires = new Date('2030-01-01T00:10:00Z');
  const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s));
  it('the first poll is never slow_down; each poll sooner than the interval adds 5 s for good; one after it is pending', () => {
    const pacer = new PollPacer();
    expect(pacer.poll('d', 5, expires, at(0))).toEqual({ slowDown: false, interval: 5 });
    expect(pacer.poll('d', 5, expires, at(4))).toEqual({ slowDown: true, interval: 10 });
    expect(pacer.poll('d', 5, expires, at(10))).toEqual({ slowDown: true, interval: 15 });
    expect(pacer.poll('d', 5, expires, at(25))).toEqual({ slowDown: false, interval: 15 });
    expect(pacer.poll('other', 5, expires, at(25))).toEqual({ slowDown: false, interval: 5 });
  });
  it('stays bounded: expired devices go first, then the least recently polled', () => {
    const pacer = new PollPacer(2);
    pacer.poll('old', 5, at(1), at(0));
    pacer.poll('a', 5, expires, at(0));
    pacer.poll('b', 5, expires, at(2)); // 'old' expired at 00:00:01: pruned
    pacer.poll('c', 5, expires, at(3)); // all live: 'a', polled least recently, goes
    expect(pacer.poll('a', 5, expires, at(3))).toEqual({ slowDown: false, interval: 5 });
    expect(pacer.poll('c', 5, expires, at(4))).toEqual({ slowDown: true, interval: 10 });
  });
});

describe('user codes (RFC 8628 §6.1)', () => {
  it('20 consonants without Y, vowels or digits; 8 characters; 20⁸ codes', () => {
    expect(USER_CODE_ALPHABET).toBe('BCDFGHJKLMNPQRSTVWXZ');
    expect(new Set(USER_CODE_ALPHABET).size).toBe(20);
    expect(USER_CODE_ALPHABET).not.toMatch(/[AEIOUY0-9]/);
    expect(USER_CODE_LENGTH).toBe(8);
    expect(USER_CODE_SPACE).toBe(25_600_000_000);
  });

  it('1000 fresh codes: each 8 characters of the alphabet, and not all the same', () => {
    const codes = Array.from({ length: 1000 }, () => newUserCode());
    for (const code of codes) expect(code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{8}$/);
    expect(new Set(codes).size).toBeGreaterThan(990);
    // Every letter of the alphabet turns up in 8000 draws (each is missed with probability ~1e-178).
    expect(new Set(codes.join('')).size).toBe(20);
  });

  it('displayUserCode: two groups of four', () => {
    expect(displayUserCode('BCDFGHJK')).toBe('BCDF-GHJK');
  });

  it.each([
    ['BCDFGHJK', 'BCDFGHJK'],
    ['BCDF-GHJK', 'BCDFGHJK'],
    ['bcdf-ghjk', 'BCDFGHJK'],
    ['bcdfghjk', 'BCDFGHJK'],
    ['BCDF GHJK', 'BCDFGHJK'],
    [' bcdf - ghjk ', 'BCDFGHJK'],
    ['B-C-D-F-G-H-J-K', 'BCDFGHJK'],
    ['bcdf\tghjk', 'BCDFGHJK'],
  ])('normaliseUserCode(%j) → %s', (typed, code) => {
    expect(normaliseUserCode(typed)).toBe(code);
  });

  it.each([
    ['a vowel', 'BCDF-GHJA'],
    ['Y', 'BCDF-GHJY'],
    ['a digit', 'BCDF-GHJ1'],
    ['zero for O', 'BCDF-GH0K'],
    ['seven characters', 'BCDF-GHJ'],
    ['nine characters', 'BCDF-GHJKL'],
    ['other punctuation', 'BCDF.GHJK'],
    ['an underscore', 'BCDF_GHJK'],
    ['empty', ''],
    ['longer than 32 characters', `BCDF-GHJK${' '.repeat(30)}`],
  ])('normaliseUserCode refuses %s', (_name, typed) => {
    expect(normaliseUserCode(typed)).toBeUndefined();
  });

  it.each([[undefined], [null], [12345678], [['BCDFGHJK']], [{}]])('normaliseUserCode refuses a non-string %j', (typed) => {
    expect(normaliseUserCode(typed)).toBeUndefined();
  });

  it('a displayed code normalises back to itself', () => {
    for (let i = 0; i < 100; i++) {
      const code = newUserCode();
      expect(normaliseUserCode(displayUserCode(code))).toBe(code);
      expect(normaliseUserCode(displayUserCode(code).toLowerCase())).toBe(code);
    }
  });
});
