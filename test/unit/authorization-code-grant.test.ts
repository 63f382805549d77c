import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  AUTHORIZATION_CODE, authorizationCodeGrant, PkceVerificationFailed, type AuthorizationCodeGrantDeps,
} from '../../src/capabilities/authorization-code/authorization-code-grant.js';
import type { AuthorizationCodeRecord, Redemption } from '../../src/capabilities/authorization-code/code-store.js';
import { s256Challenge } from '../../src/capabilities/authorization-code/pkce.js';
import type { Client } from '../../src/oauth/client.js';
import { InvalidGrant, InvalidRequest, InvalidTarget, TemporarilyUnavailable } from '../../src/oauth/errors.js';
import { SuccessorSealer } from '../../src/oauth/refresh-families/rotation.js';
import { atHash } from '../../src/oauth/tokens.js';
import { sha256 } from '../../src/platform/crypto.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing, secretSlot, testClient } from '../support/kernel.js';
import { counterValue, MemoryRefreshFamilies, testRefreshMetrics } from '../support/refresh-families.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const REPORTS = 'https://reports.example.com';
const REDIRECT = 'https://app.example.com/cb';
const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;
const AUTH_TIME = new Date('2029-12-31T23:55:00Z');
const VERIFIER = 'v'.repeat(43);
const CODE = 'the-authorization-code';
const LIFETIMES = { idle: 1000, absolute: 9000, publicIdle: 100, publicAbsolute: 900 };

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

/**
 * Authorization codes in memory, as code-store.ts redeems them: a live, unredeemed code
 * matching client, redirect URI and challenge is redeemed; otherwise nothing changes and the
 * row says why.
 */
class MemoryCodes {
  readonly rows = new Map<string, AuthorizationCodeRecord & { code_challenge: string }>();
  readonly redemptions: Array<{ codeHash: Buffer; expected: { clientId: string; redirectUri: string; codeChallenge: string } }> = [];

  add(code: string, record: Partial<AuthorizationCodeRecord> = {}, now = new Date(NOW * 1000)): AuthorizationCodeRecord {
    const row = {
      grant_id: 'grant-1', client_id: 'web', user_id: 'alice', redirect_uri: REDIRECT, code_challenge: s256Challenge(VERIFIER),
      scope: 'openid offline_access', audience: API, nonce: 'n-1', sid: 'sid-1', auth_time: AUTH_TIME, amr: ['pwd'], acr: null,
      created_at: now, expires_at: new Date(now.getTime() + 60_000), redeemed_at: null, ...record,
    };
    this.rows.set(sha256(code).toString('hex'), row);
    return row;
  }

  async redeem(codeHash: Buffer, expected: { clientId: string; redirectUri: string; codeChallenge: string }, now: Date): Promise<Redemption> {
    this.redemptions.push({ codeHash, expected });
    const row = this.rows.get(codeHash.toString('hex'));
    if (!row) return { outcome: 'unknown' };
    const code = { ...row };
    if (row.redeemed_at !== null) return { outcome: 'replayed', code };
    if (row.expires_at.getTime() <= now.getTime()) return { outcome: 'expired', code };
    if (row.client_id !== expected.clientId || row.redirect_uri !== expected.redirectUri || row.code_challenge !== expected.codeChallenge) {
      return { outcome: 'mismatch', code };
    }
    row.redeemed_at = now;
    return { outcome: 'redeemed', code: { ...row } };
  }
}

function setup(options: { algs?: ConstructorParameters<typeof MemoryKeyRing>[0] } = {}) {
  const keys = new MemoryKeyRing(options.algs ?? ['ES256']);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const codes = new MemoryCodes();
  const families = new MemoryRefreshFamilies();
  const revoker = families.grantRevoker(clock);
  const users = new Map<string, { disabled: boolean }>([['alice', { disabled: false }], ['bob', { disabled: true }]]);
  const pkce = { failures: 0 };
  const refreshMetrics = testRefreshMetrics();
  const deps: AuthorizationCodeGrantDeps = {
    keys, clock, issuer: ISSUER, accessTokenTtl: 600, idTokenTtl: 300,
    codes,
    users: { findById: async (id) => users.get(id) },
    refreshTokens: { store: families, sealer: new SuccessorSealer('a-key-encryption-secret-of-32-characters!'), lifetimes: LIFETIMES, gracePeriod: 30 },
    revokeGrant: revoker.revokeGrant,
    pkceFailures: { inc: () => { pkce.failures++; } },
    refreshMetrics,
  };
  const grant = authorizationCodeGrant(deps);
  const web = testClient('web', {
    grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile offline_access', resources: [API, REPORTS],
  }, { secrets: [secretSlot('web-secret')] });
  const other = testClient('other', { scope: 'openid offline_access' }, { secrets: [secretSlot('other-secret')] });
  const redeem = (client: Client = web, params: Partial<Record<'code' | 'redirect_uri' | 'code_verifier', string>> = {}, resources: string[] = []) =>
    grant.handle({ client, params: { code: CODE, redirect_uri: REDIRECT, code_verifier: VERIFIER, ...params }, resources });
  const issued = () => counterValue(refreshMetrics.refreshTokens, { outcome: 'issued' });
  return { keys, clock, codes, families, revoker, users, pkce, refreshMetrics, deps, grant, web, other, redeem, issued };
}

describe('the authorization_code declaration (RFC 6749 §4.1, §2.1)', () => {
  it('grant type authorization_code, public clients too, reading code, redirect_uri and code_verifier', () => {
    const { grant } = setup();
    expect(grant.grantType).toBe('authorization_code');
    expect(grant.publicClients).toBe(true);
    expect(grant.parameters).toEqual(['code', 'redirect_uri', 'code_verifier']);
  });
  it('a client registering for it without a redirect URI is a metadata problem', () => {
    const { web } = setup();
    expect(AUTHORIZATION_CODE.clientMetadataProblems!({ ...web.metadata, redirect_uris: [] })).toEqual(['authorization_code requires at least one redirect_uri']);
    expect(AUTHORIZATION_CODE.clientMetadataProblems!(web.metadata)).toEqual([]);
  });
});

describe('the token request\'s parameters (RFC 6749 §4.1.3, RFC 7636 §4.5)', () => {
  for (const [param, description] of [
    ['code', 'code is required'],
    ['redirect_uri', 'redirect_uri is required'],
    ['code_verifier', 'code_verifier is required (PKCE, RFC 7636 §4.5)'],
  ] as const) {
    it(`no ${param}: invalid_request, nothing redeemed, not counted as a PKCE failure`, async () => {
      const { grant, web, codes, pkce } = setup();
      codes.add(CODE);
      const params: Partial<Record<string, string>> = { code: CODE, redirect_uri: REDIRECT, code_verifier: VERIFIER };
      delete params[param];
      const err = await rejection(grant.handle({ client: web, params, resources: [] }));
      expect(err).toBeInstanceOf(InvalidRequest);
      expect(err).toMatchObject({ error: 'invalid_request', status: 400, description });
      expect(codes.redemptions).toEqual([]);
      expect(pkce.failures).toBe(0);
    });
  }
  it('a code_verifier that is not 43 to 128 unreserved characters: a PKCE failure (invalid_grant), counted, the code left as it was', async () => {
    const { redeem, codes, pkce } = setup();
    codes.add(CODE);
    for (const verifier of ['v'.repeat(42), 'v'.repeat(129), `${'v'.repeat(42)}+`, `${'v'.repeat(42)} `]) {
      const err = await rejection(redeem(undefined, { code_verifier: verifier }));
      expect(err).toBeInstanceOf(PkceVerificationFailed);
      expect(err, verifier).toMatchObject({ error: 'invalid_grant', status: 400, description: 'code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)' });
    }
    expect(pkce.failures).toBe(4);
    expect(codes.redemptions).toEqual([]);
    expect((await redeem()).response.access_token).toBeDefined();
  });
  it('the longest verifier, with every unreserved character, is accepted', async () => {
    const { redeem, codes } = setup();
    const verifier = `${'A-._~'.repeat(25)}az0`;
    expect(verifier).toHaveLength(128);
    codes.add(CODE, { code_challenge: s256Challenge(verifier) });
    expect((await redeem(undefined, { code_verifier: verifier })).issued.sub).toBe('alice');
  });
  it('a code longer than 256 characters: invalid_grant without a lookup', async () => {
    const { redeem, codes } = setup();
    const err = await rejection(redeem(undefined, { code: 'c'.repeat(257) }));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the authorization code is invalid or expired' });
    expect(codes.redemptions).toEqual([]);
  });
  it('the code is looked up by its SHA-256, with the client, redirect URI and S256 challenge the request proves', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE);
    await redeem();
    expect(codes.redemptions).toEqual([{ codeHash: sha256(CODE), expected: { clientId: 'web', redirectUri: REDIRECT, codeChallenge: s256Challenge(VERIFIER) } }]);
  });
});

describe('redeeming the code (RFC 6749 §4.1.3, RFC 7636 §4.6)', () => {
  it('redeemed: an RFC 9068 access token for the user carrying the grant id, and the response', async () => {
    const { redeem, codes, web } = setup();
    codes.add(CODE, { scope: 'profile' });
    const result = await redeem(web);
    expect(payloadOf(result.response.access_token)).toEqual({
      gid: 'grant-1', iss: ISSUER, sub: 'alice', aud: API, exp: NOW + 600, iat: NOW, jti: result.issued.jti, client_id: 'web', scope: 'profile',
    });
    expect(result).toEqual({
      response: { access_token: result.response.access_token, token_type: 'Bearer', expires_in: 600, scope: 'profile' },
      issued: { sub: 'alice', scope: 'profile', jti: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
  });
  it('the client\'s access_token_ttl overrides the default', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { client_id: 'short', scope: 'profile' });
    const short = testClient('short', { access_token_ttl: 60 });
    const result = await redeem(short);
    expect(result.response.expires_in).toBe(60);
    expect(payloadOf(result.response.access_token)).toMatchObject({ exp: NOW + 60, client_id: 'short' });
  });
  it('an unknown code: invalid_grant', async () => {
    const { redeem, revoker } = setup();
    const err = await rejection(redeem());
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the authorization code is invalid or expired' });
    expect(revoker.calls).toEqual([]);
  });
  it('an expired code: invalid_grant, revoking nothing', async () => {
    const { redeem, codes, clock, revoker } = setup();
    codes.add(CODE);
    clock.advance(60);
    const err = await rejection(redeem());
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ description: 'the authorization code is invalid or expired' });
    expect(revoker.calls).toEqual([]);
  });
  it('a code issued to another client: invalid_grant, not a PKCE failure, and the code still the rightful client\'s', async () => {
    const { redeem, codes, other, pkce } = setup();
    codes.add(CODE);
    const err = await rejection(redeem(other, { code_verifier: 'w'.repeat(43) }));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).not.toBeInstanceOf(PkceVerificationFailed);
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the authorization code was issued to another client' });
    expect(pkce.failures).toBe(0);
    expect((await redeem()).issued.sub).toBe('alice');
  });
  it('another redirect_uri: invalid_grant, not a PKCE failure, the code left as it was', async () => {
    const { redeem, codes, pkce } = setup();
    codes.add(CODE);
    const err = await rejection(redeem(undefined, { redirect_uri: `${REDIRECT}/` }));
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).not.toBeInstanceOf(PkceVerificationFailed);
    expect(err).toMatchObject({ description: 'redirect_uri differs from the authorization request\'s' });
    expect(pkce.failures).toBe(0);
    expect((await redeem()).issued.sub).toBe('alice');
  });
  it('a code_verifier not matching the S256 challenge: PkceVerificationFailed, counted once, the code left as it was', async () => {
    const { redeem, codes, pkce } = setup();
    codes.add(CODE);
    const err = await rejection(redeem(undefined, { code_verifier: 'w'.repeat(43) }));
    expect(err).toBeInstanceOf(PkceVerificationFailed);
    expect(err).toMatchObject({ error: 'invalid_grant', status: 400, description: 'code_verifier does not match the code_challenge (RFC 7636 §4.6)' });
    expect(pkce.failures).toBe(1);
    // `plain` is no method here: the challenge itself as the verifier does not match either.
    codes.add('plain-code', { code_challenge: 'p'.repeat(43) });
    expect(await rejection(redeem(undefined, { code: 'plain-code', code_verifier: 'p'.repeat(43) }))).toBeInstanceOf(PkceVerificationFailed);
    expect(pkce.failures).toBe(2);
    expect((await redeem()).issued.sub).toBe('alice');
    expect(pkce.failures).toBe(2);
  });
});

describe('a code presented twice (RFC 6749 §4.1.2, RFC 9700 §4.5)', () => {
  it('invalid_grant, and the grant revoked: its id, the code\'s client, the reason, until no token of it can live', async () => {
    const { redeem, codes, revoker, clock } = setup();
    codes.add(CODE, { grant_id: 'grant-7' });
    await redeem();
    clock.advance(5);
    const err = await rejection(redeem());
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({
      error: 'invalid_grant', description: 'the authorization code was already used; the tokens issued from it are revoked', debug: 'grant grant-7 revoked',
    });
    expect(revoker.calls).toEqual([['grant-7', 'web', 'authorization_code_replayed', new Date((NOW + 5 + 86400) * 1000)]]);
  });
  it('presented again by another client: the grant revoked in the name of the client it was issued to', async () => {
    const { redeem, codes, revoker, other } = setup();
    codes.add(CODE);
    await redeem();
    const err = await rejection(redeem(other));
    expect(err).toMatchObject({ description: 'the authorization code was already used; the tokens issued from it are revoked' });
    expect(revoker.calls).toEqual([['grant-1', 'web', 'authorization_code_replayed', new Date((NOW + 86400) * 1000)]]);
  });
  it('the refresh family born from the code is revoked with it', async () => {
    const { redeem, codes, families } = setup();
    codes.add(CODE, { scope: 'openid offline_access' });
    const first = await redeem();
    expect(first.response.refresh_token).toBeDefined();
    await rejection(redeem());
    expect(families.families.get('grant-1')!.revoked_at).toEqual(new Date(NOW * 1000));
    expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['revoked']);
  });
  it('replayed even with a wrong verifier (the replay is the code\'s, not the request\'s), and not counted as a PKCE failure', async () => {
    const { redeem, codes, revoker, pkce } = setup();
    codes.add(CODE);
    await redeem();
    const err = await rejection(redeem(undefined, { code_verifier: 'w'.repeat(43) }));
    expect(err).not.toBeInstanceOf(PkceVerificationFailed);
    expect(err).toMatchObject({ description: 'the authorization code was already used; the tokens issued from it are revoked' });
    expect(revoker.calls).toHaveLength(1);
    expect(pkce.failures).toBe(0);
  });
});

describe('the user of the code', () => {
  it('disabled since the code was issued: invalid_grant, no tokens', async () => {
    const { redeem, codes, families } = setup();
    codes.add(CODE, { user_id: 'bob' });
    const err = await rejection(redeem());
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the user of this authorization code is no longer active' });
    expect(families.families.size).toBe(0);
  });
  it('deleted since: the same', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { user_id: 'carol' });
    expect(await rejection(redeem())).toMatchObject({ description: 'the user of this authorization code is no longer active' });
  });
});

describe('audience (RFC 8707 §2.2)', () => {
  it('no resource: the audience of the authorization request, one or several', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { audience: [API, REPORTS], scope: 'profile' });
    expect(payloadOf((await redeem()).response.access_token).aud).toEqual([API, REPORTS]);
  });
  it('narrowed to some of it', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { audience: [API, REPORTS], scope: 'profile' });
    expect(payloadOf((await redeem(undefined, {}, [REPORTS])).response.access_token).aud).toBe(REPORTS);
  });
  it('a resource outside it: invalid_target, even one the client registered', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { audience: API, scope: 'profile' });
    const err = await rejection(redeem(undefined, {}, [API, REPORTS]));
    expect(err).toBeInstanceOf(InvalidTarget);
    expect(err).toMatchObject({ error: 'invalid_target', status: 400, description: 'resource was not part of the authorization request' });
  });
});

describe('the ID token (OpenID Connect Core §3.1.3.3, §3.1.3.6)', () => {
  it('with openid: an ID token for the client, with the sign-in\'s auth_time, nonce, amr, sid and at_hash', async () => {
    const { redeem, codes, keys, clock } = setup();
    codes.add(CODE, { scope: 'openid profile', acr: 'urn:example:loa:2' });
    const result = await redeem();
    const idToken = result.response.id_token!;
    const { payload, protectedHeader } = await jwtVerify(idToken, keys.publicKey(), { typ: 'JWT', issuer: ISSUER, audience: 'web', currentDate: clock.now() });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k-ES256' });
    expect(payload).toEqual({
      iss: ISSUER, sub: 'alice', aud: 'web', azp: 'web', exp: NOW + 300, iat: NOW, auth_time: AUTH_TIME.getTime() / 1000,
      nonce: 'n-1', acr: 'urn:example:loa:2', amr: ['pwd'], sid: 'sid-1', at_hash: atHash(result.response.access_token, 'ES256'),
    });
  });
  it('without openid: none', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { scope: 'profile offline_access' });
    const result = await redeem();
    expect('id_token' in result.response).toBe(false);
  });
  it('signed with the client\'s registered alg', async () => {
    const { redeem, codes, keys } = setup({ algs: ['ES256', 'EdDSA'] });
    codes.add(CODE, { client_id: 'ed', scope: 'openid' });
    const result = await redeem(testClient('ed', { id_token_signed_response_alg: 'EdDSA' }));
    const { protectedHeader } = await jwtVerify(result.response.id_token!, keys.publicKey('EdDSA'), { currentDate: new Date(NOW * 1000) });
    expect(protectedHeader.alg).toBe('EdDSA');
  });
  it('no active key for the client\'s alg: temporarily_unavailable before the code is redeemed', async () => {
    const { redeem, codes } = setup();
    codes.add(CODE, { client_id: 'ed', scope: 'openid' });
    const ed = testClient('ed', { id_token_signed_response_alg: 'EdDSA' });
    const err = await rejection(redeem(ed));
    expect(err).toBeInstanceOf(TemporarilyUnavailable);
    expect(err).toMatchObject({ error: 'temporarily_unavailable', status: 503, description: 'no EdDSA signing key is active for this client\'s ID tokens; retry later' });
    expect(codes.redemptions).toEqual([]);
  });
});

describe('the refresh token (OpenID Connect Core §11, RFC 6749 §1.5)', () => {
  it('offline_access granted to a client registered for refresh_token: a new family, the grant\'s id, counted as issued', async () => {
    const { redeem, codes, families, issued } = setup();
    codes.add(CODE, { scope: 'openid offline_access', audience: [API, REPORTS], acr: 'urn:example:loa:2' });
    const result = await redeem();
    const token = result.response.refresh_token!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(families.families.get('grant-1')).toEqual({
      id: 'grant-1', client_id: 'web', user_id: 'alice', scope: 'openid offline_access', audience: [API, REPORTS], sid: 'sid-1',
      auth_time: AUTH_TIME, amr: ['pwd'], acr: 'urn:example:loa:2', created_at: new Date(NOW * 1000),
      absolute_expires_at: new Date((NOW + 9000) * 1000), idle_expires_at: new Date((NOW + 1000) * 1000), revoked_at: null, revoked_reason: null,
    });
    expect(families.familyTokens('grant-1')).toEqual([expect.objectContaining({
      tokenHash: sha256(token), generation: 1, state: 'active', expiresAt: new Date((NOW + 1000) * 1000),
    })]);
    expect(await issued()).toBe(1);
  });
  it('a public client\'s family gets the public lifetimes', async () => {
    const { redeem, codes, families } = setup();
    codes.add(CODE, { client_id: 'spa', scope: 'offline_access' });
    const spa = testClient('spa', { token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    expect((await redeem(spa)).response.refresh_token).toBeDefined();
    expect(families.families.get('grant-1')).toMatchObject({ absolute_expires_at: new Date((NOW + 900) * 1000), idle_expires_at: new Date((NOW + 100) * 1000) });
  });
  it('offline_access granted, but the client not registered for refresh_token: none, nothing stored or counted', async () => {
    const { redeem, codes, families, issued, other } = setup();
    codes.add(CODE, { client_id: 'other', scope: 'openid offline_access' });
    const result = await redeem(other);
    expect('refresh_token' in result.response).toBe(false);
    expect(result.response.scope).toBe('openid offline_access');
    expect(families.families.size).toBe(0);
    expect(await issued()).toBe(0);
  });
  it('registered for refresh_token, but offline_access not granted: none', async () => {
    const { redeem, codes, families, issued } = setup();
    codes.add(CODE, { scope: 'openid profile' });
    const result = await redeem();
    expect('refresh_token' in result.response).toBe(false);
    expect(result.response.id_token).toBeDefined();
    expect(families.families.size).toBe(0);
    expect(await issued()).toBe(0);
  });
  it('the grant revoked while the code was being redeemed: invalid_grant, the family born revoked, nothing counted', async () => {
    const { redeem, codes, families, issued } = setup();
    codes.add(CODE, { scope: 'offline_access' });
    families.revokedGrants.add('grant-1');
    const err = await rejection(redeem());
    expect(err).toBeInstanceOf(InvalidGrant);
    expect(err).toMatchObject({ description: 'the authorization code was used twice; the tokens issued from it are revoked' });
    expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['revoked']);
    expect(await issued()).toBe(0);
  });
});
