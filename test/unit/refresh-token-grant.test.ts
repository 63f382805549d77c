import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  REFRESH_TOKEN, refreshTokenGrant, RefreshTokenReused, type RefreshTokenGrantDeps,
} from '../../src/capabilities/refresh-token/refresh-token-grant.js';
import type { Client } from '../../src/oauth/client.js';
import { InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, TemporarilyUnavailable } from '../../src/oauth/errors.js';
import { startRefreshFamily, SuccessorSealer } from '../../src/oauth/refresh-families/rotation.js';
import { auditEventOf } from '../../src/oauth/token-endpoint/grant.js';
import { atHash } from '../../src/oauth/tokens.js';
import { sha256 } from '../../src/platform/crypto.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing, person, secretSlot, testClient } from '../support/kernel.js';
import { counterValue, MemoryRefreshFamilies, testRefreshMetrics } from '../support/refresh-families.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const REPORTS = 'https://reports.example.com';
const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;
const AUTH_TIME = new Date('2029-12-31T23:55:00Z');
const LIFETIMES = { idle: 1000, absolute: 9000, publicIdle: 100, publicAbsolute: 900 };
const INVALID = 'the refresh token is invalid, expired or revoked';
const SECRET = 'a-key-encryption-secret-of-32-characters!';

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

const webClient = (metadata: Record<string, unknown> = {}) => testClient('web', {
  grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile email offline_access', resources: [API, REPORTS], ...metadata,
}, { secrets: [secretSlot('web-secret')] });

function setup(options: { gracePeriod?: number; scope?: string; audience?: string | string[]; userId?: string } = {}) {
  const keys = new MemoryKeyRing(['ES256']);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const families = new MemoryRefreshFamilies();
  const revoker = families.grantRevoker(clock);
  const users = new Map([['alice', person('alice', false)], ['bob', person('bob', true)]]);
  const metrics = testRefreshMetrics();
  const deps: RefreshTokenGrantDeps = {
    keys, clock, issuer: ISSUER, accessTokenTtl: 600, idTokenTtl: 300,
    users: { findById: async (id) => users.get(id) },
    refreshTokens: { store: families, sealer: new SuccessorSealer(SECRET), lifetimes: LIFETIMES, gracePeriod: options.gracePeriod ?? 30 },
    revokeGrant: revoker.revokeGrant,
    refreshMetrics: metrics,
  };
  const grant = refreshTokenGrant(deps);
  const web = webClient();
  /** A family as the authorization code grant starts it: its first token. */
  const start = (client: Client = web, grantId = 'grant-1') => startRefreshFamily(deps.refreshTokens, client, {
    id: grantId, userId: options.userId ?? 'alice', scope: options.scope ?? 'openid profile offline_access', audience: options.audience ?? API,
    sid: 'sid-1', authTime: AUTH_TIME, amr: ['pwd'], acr: null,
  }, clock.now()).then((family) => family.token);
  const refresh = (token: string, extra: { client?: Client; scope?: string; resources?: string[] } = {}) => grant.handle({
    client: extra.client ?? web,
    params: extra.scope === undefined ? { refresh_token: token } : { refresh_token: token, scope: extra.scope },
    resources: extra.resources ?? [],
  });
  const count = {
    rotated: () => counterValue(metrics.refreshTokens, { outcome: 'rotated' }),
    grace: () => counterValue(metrics.refreshTokens, { outcome: 'grace' }),
    reuse: () => counterValue(metrics.reuseDetected),
  };
  return { keys, clock, families, revoker, users, metrics, deps, grant, web, start, refresh, count };
}

describe('the refresh_token declaration (RFC 6749 §6)', () => {
  it('grant type refresh_token, public clients too, reading refresh_token and scope, no metadata rule', () => {
    const { grant } = setup();
    expect(grant.grantType).toBe('refresh_token');
    expect(grant.publicClients).toBe(true);
    expect(grant.parameters).toEqual(['refresh_token', 'scope']);
    expect(REFRESH_TOKEN.clientMetadataProblems).toBeUndefined();
  });
});

describe('rotation (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1)', () => {
  it('a new refresh token of the next generation, the presented one rotated, counted as rotated', async () => {
    const { start, refresh, families, count } = setup();
    const first = await start();
    const result = await refresh(first);
    const second = result.response.refresh_token!;
    expect(second).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(second).not.toBe(first);
    expect(families.familyTokens('grant-1').map((t) => [t.tokenHash, t.generation, t.state])).toEqual([
      [sha256(first), 1, 'rotated'],
      [sha256(second), 2, 'active'],
    ]);
    expect(await count.rotated()).toBe(1);
    expect(await count.grace()).toBe(0);
  });
  it('the response: an access token of the grant, the scope granted, the new refresh token, and an ID token with openid', async () => {
    const { start, refresh } = setup();
    const result = await refresh(await start());
    expect(payloadOf(result.response.access_token)).toEqual({
      gid: 'grant-1', auth_time: AUTH_TIME.getTime() / 1000, iss: ISSUER, sub: 'alice', aud: API, exp: NOW + 600, iat: NOW, jti: result.issued.jti, client_id: 'web', scope: 'openid profile offline_access',
    });
    expect(result.response).toEqual({
      access_token: result.response.access_token, token_type: 'Bearer', expires_in: 600, scope: 'openid profile offline_access',
      refresh_token: result.response.refresh_token, id_token: result.response.id_token,
    });
    expect(result.issued).toEqual({ sub: 'alice', scope: 'openid profile offline_access', jti: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });
  it('the refresh.rotated audit event: client, user, scope, grant, generation, not grace', async () => {
    const { start, refresh } = setup();
    const first = await start();
    const result = await refresh(first);
    expect(result.audit).toEqual([{
      event: 'refresh.rotated',
      fields: { client_id: 'web', sub: 'alice', scope: 'openid profile offline_access', grant_id: 'grant-1', generation: 2, grace: false },
    }]);
    const third = await refresh(result.response.refresh_token!);
    expect(third.audit![0]!.fields).toMatchObject({ generation: 3, grace: false });
  });
  it('the ID token is about the original sign-in, without a nonce (OpenID Connect Core §12.2)', async () => {
    const { start, refresh, keys, clock } = setup();
    clock.advance(120);
    const result = await refresh(await start());
    const { payload } = await jwtVerify(result.response.id_token!, keys.publicKey(), { typ: 'JWT', issuer: ISSUER, audience: 'web', currentDate: clock.now() });
    expect(payload).toEqual({
      iss: ISSUER, sub: 'alice', aud: 'web', azp: 'web', exp: NOW + 120 + 300, iat: NOW + 120, auth_time: AUTH_TIME.getTime() / 1000,
      amr: ['pwd'], sid: 'sid-1', at_hash: atHash(result.response.access_token, 'ES256'),
    });
  });
  it('a client registered with id_token_scope_claims: the refreshed ID token carries the granted scopes\' claims too', async () => {
    const { start, refresh, keys, clock } = setup();
    const rp = webClient({ id_token_scope_claims: true });
    const result = await refresh(await start(rp), { client: rp });
    const { payload } = await jwtVerify(result.response.id_token!, keys.publicKey(), { currentDate: clock.now() });
    expect(payload).toMatchObject({ sub: 'alice', name: 'Alice' });
    expect('email' in payload).toBe(false);
  });
  it('without openid in the scope: no ID token', async () => {
    const { start, refresh } = setup({ scope: 'profile offline_access' });
    expect('id_token' in (await refresh(await start())).response).toBe(false);
  });
  it('the successor\'s idle lifetime from now, never past the family\'s absolute expiry; the family\'s idle expiry slides', async () => {
    const { start, refresh, families, clock } = setup();
    const first = await start();
    clock.advance(500);
    const second = (await refresh(first)).response.refresh_token!;
    expect(families.familyTokens('grant-1')[1]).toMatchObject({ tokenHash: sha256(second), expiresAt: new Date((NOW + 1500) * 1000) });
    expect(families.families.get('grant-1')!.idle_expires_at).toEqual(new Date((NOW + 1500) * 1000));
    let token = second;
    for (let i = 0; i < 9; i++) { clock.advance(900); token = (await refresh(token)).response.refresh_token!; }
    expect(families.familyTokens('grant-1').at(-1)!.expiresAt).toEqual(new Date((NOW + 9000) * 1000));
  });
  it('with the grace window on, the successor is kept sealed with the rotated token; off, it is not kept', async () => {
    for (const gracePeriod of [30, 0]) {
      const { start, refresh, families } = setup({ gracePeriod });
      const first = await start();
      const second = (await refresh(first)).response.refresh_token!;
      const rotated = families.familyTokens('grant-1')[0]!;
      if (gracePeriod === 0) expect(rotated.sealed).toBeNull();
      else expect(new SuccessorSealer(SECRET).open('grant-1', 2, rotated.sealed!)).toBe(second);
    }
  });
});

describe('the grace window', () => {
  it('the rotated token again within the window: the same successor, counted as grace, the family unchanged and not revoked', async () => {
    const { start, refresh, families, clock, count, revoker } = setup({ gracePeriod: 30 });
    const first = await start();
    const rotated = await refresh(first);
    clock.advance(29);
    const again = await refresh(first);
    expect(again.response.refresh_token).toBe(rotated.response.refresh_token);
    expect(again.response.access_token).not.toBe(rotated.response.access_token);
    expect(again.audit).toEqual([{
      event: 'refresh.rotated',
      fields: { client_id: 'web', sub: 'alice', scope: 'openid profile offline_access', grant_id: 'grant-1', generation: 2, grace: true },
    }]);
    expect(families.familyTokens('grant-1').map((t) => [t.generation, t.state])).toEqual([[1, 'rotated'], [2, 'active']]);
    expect(await count.grace()).toBe(1);
    expect(await count.rotated()).toBe(1);
    expect(revoker.calls).toEqual([]);
  });
  it('two requests racing with the same token: one rotates, the other gets the same successor', async () => {
    const { start, refresh, families, count } = setup();
    const first = await start();
    const [a, b] = await Promise.all([refresh(first), refresh(first)]);
    expect(a.response.refresh_token).toBe(b.response.refresh_token);
    expect(families.familyTokens('grant-1')).toHaveLength(2);
    expect(await count.rotated()).toBe(1);
    expect(await count.grace()).toBe(1);
  });
  it('a successor sealed under another key-encryption secret: invalid_grant, and no sign of theft', async () => {
    const { start, refresh, deps, revoker, count } = setup();
    const first = await start();
    await refresh(first);
    deps.refreshTokens.sealer = new SuccessorSealer('another-key-encryption-secret-32-chars!!');
    const err = await rejection(refresh(first));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).not.toBeInstanceOf(RefreshTokenReused);
    expect(err).toMatchObject({ description: INVALID, debug: 'successor does not decrypt' });
    expect(revoker.calls).toEqual([]);
    expect(await count.reuse()).toBe(0);
  });
});

describe('reuse of a rotated token (RFC 9700 §4.14.2)', () => {
  it('after the window: RefreshTokenReused, the grant revoked, counted, its audit event', async () => {
    const { start, refresh, clock, revoker, count } = setup({ gracePeriod: 30 });
    const first = await start();
    await refresh(first);
    clock.advance(30);
    const err = await rejection(refresh(first));
    expect(err).toBeInstanceOf(RefreshTokenReused);
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({
      error: 'invalid_grant', status: 400, description: 'the refresh token was already used; every token issued from this grant is revoked',
      debug: 'family grant-1 revoked: generation 1 reused', familyId: 'grant-1', clientId: 'web', sub: 'alice', generation: 1,
    });
    expect(auditEventOf(err)).toEqual({ event: 'refresh.reuse_detected', fields: { client_id: 'web', sub: 'alice', grant_id: 'grant-1', generation: 1 } });
    expect(revoker.calls).toEqual([['grant-1', 'web', 'refresh_token_reused', new Date((NOW + 30 + 86400) * 1000)]]);
    expect(await count.reuse()).toBe(1);
  });
  it('the whole family is revoked: its successor no longer refreshes (and that is not reuse again)', async () => {
    const { start, refresh, clock, count, families } = setup({ gracePeriod: 30 });
    const first = await start();
    const second = (await refresh(first)).response.refresh_token!;
    clock.advance(31);
    await rejection(refresh(first));
    const err = await rejection(refresh(second));
    expect(err).not.toBeInstanceOf(RefreshTokenReused);
    expect(err).toMatchObject({ error: 'invalid_grant', description: INVALID });
    expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['revoked', 'revoked']);
    expect(await count.reuse()).toBe(1);
  });
  it('within the window, once the successor was itself rotated: reuse', async () => {
    const { start, refresh, revoker, count } = setup({ gracePeriod: 30 });
    const first = await start();
    const second = (await refresh(first)).response.refresh_token!;
    await refresh(second);
    const err = await rejection(refresh(first));
    expect(err).toBeInstanceOf(RefreshTokenReused);
    expect(auditEventOf(err)).toEqual({ event: 'refresh.reuse_detected', fields: { client_id: 'web', sub: 'alice', grant_id: 'grant-1', generation: 1 } });
    expect(revoker.calls).toHaveLength(1);
    expect(await count.reuse()).toBe(1);
  });
  it('within the window, a successor no longer active is reuse even were its sealed copy still kept', async () => {
    const { start, refresh, families, revoker } = setup({ gracePeriod: 30 });
    const first = await start();
    const second = (await refresh(first)).response.refresh_token!;
    const kept = families.familyTokens('grant-1')[0]!.sealed;
    await refresh(second);
    // The store erases it on the next rotation; the grant does not rely on that.
    families.familyTokens('grant-1')[0]!.sealed = kept;
    expect(await rejection(refresh(first))).toBeInstanceOf(RefreshTokenReused);
    expect(revoker.calls).toHaveLength(1);
  });
  it('with the grace window off, any second use is reuse', async () => {
    const { start, refresh, revoker, count } = setup({ gracePeriod: 0 });
    const first = await start();
    await refresh(first);
    expect(await rejection(refresh(first))).toBeInstanceOf(RefreshTokenReused);
    expect(revoker.calls).toEqual([['grant-1', 'web', 'refresh_token_reused', new Date((NOW + 86400) * 1000)]]);
    expect(await count.reuse()).toBe(1);
  });
  it('with the grace window off, two requests racing with the same token: one rotates, the other is reuse and revokes the family, the winner\'s successor with it', async () => {
    const { start, refresh, families, revoker, count } = setup({ gracePeriod: 0 });
    const first = await start();
    const settled = await Promise.allSettled([refresh(first), refresh(first)]);
    const won = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    expect([won.length, refused.length]).toEqual([1, 1]);
    expect(refused[0]).toBeInstanceOf(RefreshTokenReused);
    expect(revoker.calls).toHaveLength(1);
    expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['revoked', 'revoked']);
    expect(await rejection(refresh(won[0]!.response.refresh_token!))).toMatchObject({ error: 'invalid_grant', description: INVALID });
    expect([await count.rotated(), await count.reuse()]).toEqual([1, 1]);
  });
  it('other refusals carry no audit event and are not counted as reuse', async () => {
    const { refresh, count } = setup();
    const err = await rejection(refresh('x'.repeat(43)));
    expect(auditEventOf(err)).toBeUndefined();
    expect(await count.reuse()).toBe(0);
  });
});

describe('the presented token', () => {
  it('missing: invalid_request', async () => {
    const { grant, web } = setup();
    const err = await rejection(grant.handle({ client: web, params: {}, resources: [] }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ error: 'invalid_request', description: 'refresh_token is required' });
  });
  it('malformed: invalid_grant without a lookup', async () => {
    const { refresh, families } = setup();
    const lookups: Buffer[] = [];
    const find = families.find.bind(families);
    families.find = async (hash) => { lookups.push(hash); return find(hash); };
    for (const token of ['short', 'x'.repeat(44), `${'x'.repeat(42)}=`, `${'x'.repeat(42)}.`]) {
      const err = await rejection(refresh(token));
      expect(err).toBeInstanceOf(InvalidGrant);
      expect(err, token).toMatchObject({ error: 'invalid_grant', description: INVALID });
    }
    expect(lookups).toEqual([]);
  });
  it('unknown: invalid_grant', async () => {
    const { refresh, start } = setup();
    await start();
    expect(await rejection(refresh('x'.repeat(43)))).toMatchObject({ error: 'invalid_grant', description: INVALID });
  });
  it('issued to another client: invalid_grant, and nothing changes', async () => {
    const { start, refresh, families, revoker } = setup();
    const first = await start();
    const other = testClient('other', { grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile offline_access', resources: [API] });
    const err = await rejection(refresh(first, { client: other }));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the refresh token was issued to another client' });
    expect(families.rotations).toEqual([]);
    expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['active']);
    expect(revoker.calls).toEqual([]);
    expect((await refresh(first)).response.refresh_token).toBeDefined();
  });
  it('a revoked family: invalid_grant, not reuse', async () => {
    const { start, refresh, families, clock, count } = setup();
    const first = await start();
    await families.revokeFamily('grant-1', 'revoked_by_client', clock.now());
    const err = await rejection(refresh(first));
    expect(err).not.toBeInstanceOf(RefreshTokenReused);
    expect(err).toMatchObject({ error: 'invalid_grant', description: INVALID });
    expect(await count.reuse()).toBe(0);
  });
  it('idle-expired, or past the family\'s absolute expiry: invalid_grant (expired), nothing rotated', async () => {
    const idle = setup();
    const first = await idle.start();
    idle.clock.advance(1000);
    expect(await rejection(idle.refresh(first))).toMatchObject({ error: 'invalid_grant', description: INVALID, debug: 'expired' });
    expect(idle.families.familyTokens('grant-1').map((t) => t.state)).toEqual(['active']);

    const absolute = setup();
    let token = await absolute.start();
    for (let i = 0; i < 9; i++) { absolute.clock.advance(999); token = (await absolute.refresh(token)).response.refresh_token!; }
    absolute.clock.advance(9);
    expect(await rejection(absolute.refresh(token))).toMatchObject({ description: INVALID, debug: 'expired' });
  });
  it('a rotated token of an expired family: invalid_grant (expired), not reuse', async () => {
    const { start, refresh, clock, revoker } = setup();
    let token = await start();
    const first = token;
    for (let i = 0; i < 9; i++) { clock.advance(900); token = (await refresh(token)).response.refresh_token!; }
    clock.advance(900);
    expect(await rejection(refresh(first))).toMatchObject({ description: INVALID, debug: 'expired' });
    expect(revoker.calls).toEqual([]);
  });
});

describe('scope on refresh (RFC 6749 §6)', () => {
  it('narrowed: the token and the response carry less, the family keeps what was granted', async () => {
    const { start, refresh } = setup();
    const narrowed = await refresh(await start(), { scope: 'profile' });
    expect(narrowed.response.scope).toBe('profile');
    expect(payloadOf(narrowed.response.access_token).scope).toBe('profile');
    expect('id_token' in narrowed.response).toBe(false);
    expect(narrowed.audit![0]!.fields.scope).toBe('profile');
    const next = await refresh(narrowed.response.refresh_token!);
    expect(next.response.scope).toBe('openid profile offline_access');
  });
  it('widened: invalid_scope naming the scope, and the token not rotated', async () => {
    const { start, refresh, families } = setup();
    const first = await start();
    const err = await rejection(refresh(first, { scope: 'openid email' }));
    expect(err).toBeInstanceOf(InvalidScope);
    expect(err).toMatchObject({ error: 'invalid_scope', status: 400, description: 'scope exceeds the scope originally granted (RFC 6749 §6): email' });
    expect(families.rotations).toEqual([]);
  });
  it('a scope the client may no longer request is dropped from what the family grants', async () => {
    const { start, refresh } = setup();
    const first = await start();
    const narrower = webClient({ scope: 'openid offline_access' });
    const result = await refresh(first, { client: narrower });
    expect(result.response.scope).toBe('openid offline_access');
    expect(await rejection(refresh(result.response.refresh_token!, { client: narrower, scope: 'profile' })))
      .toMatchObject({ description: 'scope exceeds the scope originally granted (RFC 6749 §6): profile' });
  });
});

describe('audience on refresh (RFC 8707 §2.2)', () => {
  it('no resource: the family\'s audience; narrowed to some of it', async () => {
    const { start, refresh } = setup({ audience: [API, REPORTS] });
    const first = await start();
    const whole = await refresh(first);
    expect(payloadOf(whole.response.access_token).aud).toEqual([API, REPORTS]);
    const narrowed = await refresh(whole.response.refresh_token!, { resources: [REPORTS] });
    expect(payloadOf(narrowed.response.access_token).aud).toBe(REPORTS);
  });
  it('a resource outside the grant: invalid_target, the token not rotated', async () => {
    const { start, refresh, families } = setup({ audience: API });
    const err = await rejection(refresh(await start(), { resources: [REPORTS] }));
    expect(err).toBeInstanceOf(InvalidTarget);
    expect(err).toMatchObject({ error: 'invalid_target', description: 'resource was not part of the original grant' });
    expect(families.rotations).toEqual([]);
  });
  it('a resource the client no longer registers is dropped; the issuer always stays', async () => {
    const { start, refresh } = setup({ audience: [API, REPORTS, ISSUER] });
    const result = await refresh(await start(), { client: webClient({ resources: [REPORTS] }) });
    expect(payloadOf(result.response.access_token).aud).toEqual([REPORTS, ISSUER]);
  });
  it('none of the grant\'s resources still registered: invalid_grant, the token not rotated', async () => {
    const { start, refresh, families } = setup({ audience: [API, REPORTS] });
    const err = await rejection(refresh(await start(), { client: webClient({ resources: [] }) }));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ description: 'the resources of this grant are no longer registered for the client' });
    expect(families.rotations).toEqual([]);
  });
});

describe('the user and the keys', () => {
  it('the user disabled since: invalid_grant, the token not rotated', async () => {
    const { start, refresh, families } = setup({ userId: 'bob' });
    const err = await rejection(refresh(await start()));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the user of this grant is no longer active' });
    expect(families.rotations).toEqual([]);
  });
  it('the user deleted since: the same', async () => {
    const { start, refresh } = setup({ userId: 'carol' });
    expect(await rejection(refresh(await start()))).toMatchObject({ description: 'the user of this grant is no longer active' });
  });
  it('no active key for the client\'s ID token alg: temporarily_unavailable, the token not rotated', async () => {
    const { start, refresh, families } = setup();
    const ed = webClient({ id_token_signed_response_alg: 'EdDSA' });
    const first = await start(ed);
    const err = await rejection(refresh(first, { client: ed }));
    expect(err).toBeInstanceOf(TemporarilyUnavailable);
    expect(err).toMatchObject({ error: 'temporarily_unavailable', description: 'no EdDSA signing key is active for this client\'s ID tokens; retry later' });
    expect(families.rotations).toEqual([]);
  });
});
