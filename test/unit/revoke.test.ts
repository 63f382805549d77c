import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { revoke, type RevocationDeps } from '../../src/capabilities/revocation/revoke.js';
import { ClientAuthenticationFailed } from '../../src/oauth/client-auth/authenticate.js';
import { InvalidRequest } from '../../src/oauth/errors.js';
import type { StoredRefreshToken } from '../../src/oauth/refresh-families/store.js';
import { issueAccessToken } from '../../src/oauth/tokens.js';
import { sha256 } from '../../src/platform/crypto.js';
import { ManualClock } from '../support/clock.js';
import { localClientKeys, MemoryClients, MemoryJtiStore, MemoryKeyRing, secretSlot, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const NOW_MS = Date.parse('2030-01-01T00:00:00Z');
const basicOf = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

function storedRefreshToken(familyId: string, clientId: string, revokedAt: Date | null = null): StoredRefreshToken {
  const t = new Date(NOW_MS);
  return {
    familyId, generation: 1, state: 'active', expiresAt: new Date(NOW_MS + 3_600_000), rotatedAt: null, successor: null, successorState: null,
    family: {
      id: familyId, client_id: clientId, user_id: 'u1', scope: 'openid offline_access', audience: ISSUER, sid: 's', auth_time: t, amr: ['pwd'], acr: null,
      created_at: t, absolute_expires_at: new Date(NOW_MS + 86_400_000), idle_expires_at: new Date(NOW_MS + 3_600_000),
      revoked_at: revokedAt, revoked_reason: revokedAt ? 'revoked_by_client' : null,
      created_ip: null, last_rotated_at: null, last_rotated_ip: null,
    },
  };
}

function setup() {
  const clock = new ManualClock(new Date(NOW_MS));
  const keys = new MemoryKeyRing();
  const clients = new MemoryClients([
    testClient('web', {}, { secrets: [secretSlot('web-secret')] }),
    testClient('other', {}, { secrets: [secretSlot('other-secret')] }),
    testClient('spa', { token_endpoint_auth_method: 'none' }),
  ]);
  const refreshTokens = new Map<string, StoredRefreshToken>();
  const denylisted: Array<[string, string, Date]> = [];
  const revokedGrants: Array<[string, string, string, Date]> = [];
  const lookups: Buffer[] = [];
  const deps: RevocationDeps = {
    clients, assertionJtis: new MemoryJtiStore(), clientKeys: localClientKeys(), clock, assertionAudience: { issuer: ISSUER },
    keys, issuer: ISSUER,
    async denylistAccessToken(jti, clientId, expiresAt) { denylisted.push([jti, clientId, expiresAt]); },
    async findRefreshToken(hash) { lookups.push(hash); return refreshTokens.get(hash.toString('hex')); },
    async revokeGrant(grantId, clientId, reason, expiresAt) { revokedGrants.push([grantId, clientId, reason, expiresAt]); },
  };
  const accessToken = (clientId: string, ttl = 300) => issueAccessToken(deps, { sub: 'alice', clientId, aud: ISSUER, scope: 'openid', ttl });
  const refreshToken = (clientId: string, familyId = 'family-1', revokedAt: Date | null = null) => {
    const token = randomBytes(32).toString('base64url');
    refreshTokens.set(sha256(token).toString('hex'), storedRefreshToken(familyId, clientId, revokedAt));
    return token;
  };
  const asWeb = (body: Record<string, string | string[]>) => revoke({ authorization: basicOf('web', 'web-secret'), body }, deps);
  return { clock, clients, deps, denylisted, revokedGrants, lookups, accessToken, refreshToken, asWeb };
}

describe('revoking an access token (RFC 7009 §2.1)', () => {
  it('denylists the jti of the caller\'s token until its exp', async () => {
    const { asWeb, accessToken, denylisted, clients } = setup();
    const issued = accessToken('web');
    expect(await asWeb({ token: issued.token })).toEqual({
      caller: { client: clients.byId.get('web'), method: 'client_secret_basic' },
      outcome: { revoked: true, kind: 'access_token', jti: issued.jti },
    });
    expect(denylisted).toEqual([[issued.jti, 'web', new Date(issued.exp * 1000)]]);
  });
  it('refuses another client\'s token, which stays valid', async () => {
    const { asWeb, accessToken, denylisted } = setup();
    const err = await rejection(asWeb({ token: accessToken('other').token, token_type_hint: 'access_token' }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ error: 'invalid_request', description: 'the token was not issued to this client (RFC 7009 §2.1)' });
    expect(denylisted).toEqual([]);
  });
  it('an expired token of the caller\'s: nothing to do', async () => {
    const { asWeb, accessToken, denylisted, clock } = setup();
    const issued = accessToken('web', 60);
    clock.advance(60);
    expect((await asWeb({ token: issued.token })).outcome).toEqual({ revoked: false, kind: 'access_token', reason: 'already expired' });
    expect(denylisted).toEqual([]);
  });
});

describe('revoking a refresh token (RFC 7009 §2.1)', () => {
  it('revokes its whole grant (family and access tokens) until the revocation horizon', async () => {
    const { asWeb, refreshToken, revokedGrants, lookups } = setup();
    const token = refreshToken('web', 'family-7');
    expect((await asWeb({ token, token_type_hint: 'refresh_token' })).outcome).toEqual({ revoked: true, kind: 'refresh_token', familyId: 'family-7' });
    expect(revokedGrants).toEqual([['family-7', 'web', 'revoked_by_client', new Date(NOW_MS + 86_400_000)]]);
    expect(lookups).toEqual([sha256(token)]);
  });
  it('refuses another client\'s refresh token, leaving it as it is', async () => {
    const { asWeb, refreshToken, revokedGrants } = setup();
    expect(await rejection(asWeb({ token: refreshToken('other') }))).toMatchObject({
      error: 'invalid_request', description: 'the token was not issued to this client (RFC 7009 §2.1)',
    });
    expect(revokedGrants).toEqual([]);
  });
  it('a family already revoked: nothing to do', async () => {
    const { asWeb, refreshToken, revokedGrants } = setup();
    const token = refreshToken('web', 'family-1', new Date(NOW_MS - 1000));
    expect((await asWeb({ token })).outcome).toEqual({ revoked: false, kind: 'refresh_token', reason: 'already revoked' });
    expect(revokedGrants).toEqual([]);
  });
  it('a public client revokes its own refresh token by naming itself', async () => {
    const { deps, refreshToken, revokedGrants } = setup();
    const token = refreshToken('spa', 'family-spa');
    const { caller, outcome } = await revoke({ body: { client_id: 'spa', token } }, deps);
    expect(caller.method).toBe('none');
    expect(outcome).toEqual({ revoked: true, kind: 'refresh_token', familyId: 'family-spa' });
    expect(revokedGrants.map((g) => g[0])).toEqual(['family-spa']);
  });
});

describe('tokens the server does not recognise (RFC 7009 §2.2)', () => {
  it('are not an error: 200 with nothing revoked, and no refresh-token lookup for what cannot be one', async () => {
    const { asWeb, lookups, denylisted, revokedGrants } = setup();
    const unknown = { revoked: false, kind: 'unknown', reason: 'not a token this server recognises' };
    expect((await asWeb({ token: 'not-a-token' })).outcome).toEqual(unknown);
    expect(lookups).toEqual([]);
    expect((await asWeb({ token: randomBytes(32).toString('base64url') })).outcome).toEqual(unknown);
    expect(lookups).toHaveLength(1);
    expect((await asWeb({ token: 'not-a-token', token_type_hint: 'access_token' })).outcome).toEqual(unknown);
    expect((await asWeb({ token: 'not-a-token', token_type_hint: 'something_else' })).outcome).toEqual(unknown);
    expect(denylisted).toEqual([]);
    expect(revokedGrants).toEqual([]);
  });
  it('with the refresh_token hint, the outcome is counted as a refresh token', async () => {
    const { asWeb } = setup();
    expect((await asWeb({ token: 'not-a-token', token_type_hint: 'refresh_token' })).outcome)
      .toEqual({ revoked: false, kind: 'refresh_token', reason: 'not a token this server recognises' });
  });
  it('the hint never stops the other kind being tried (§2.1: the server may ignore it)', async () => {
    const { asWeb, accessToken, refreshToken } = setup();
    expect((await asWeb({ token: accessToken('web').token, token_type_hint: 'refresh_token' })).outcome).toMatchObject({ revoked: true, kind: 'access_token' });
    expect((await asWeb({ token: refreshToken('web'), token_type_hint: 'access_token' })).outcome).toMatchObject({ revoked: true, kind: 'refresh_token' });
  });
});

describe('the revocation request', () => {
  it('authenticates the client first: a failure is invalid_client, whatever the token', async () => {
    const { deps, accessToken, denylisted } = setup();
    const err = await rejection(revoke({ authorization: basicOf('web', 'wrong'), body: { token: accessToken('web').token } }, deps));
    expect(err).toBeInstanceOf(ClientAuthenticationFailed);
    expect(err).toMatchObject({ error: 'invalid_client', debug: 'wrong or expired client secret' });
    expect(await rejection(revoke({ body: {} }, deps))).toMatchObject({ error: 'invalid_client', debug: 'no client authentication' });
    expect(denylisted).toEqual([]);
  });
  it('token is required, once', async () => {
    const { asWeb } = setup();
    expect(await rejection(asWeb({}))).toMatchObject({ error: 'invalid_request', description: 'token is required (RFC 7009 §2.1)' });
    expect(await rejection(asWeb({ token: '' }))).toMatchObject({ error: 'invalid_request', description: 'token is required (RFC 7009 §2.1)' });
    expect(await rejection(asWeb({ token: ['a', 'b'] }))).toMatchObject({ error: 'invalid_request', description: 'the token parameter must not be repeated (RFC 6749 §3.1)' });
  });
});
