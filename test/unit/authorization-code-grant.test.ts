import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  AUTHORIZATION_CODE, AuthorizationCodeReplayed, authorizationCodeGrant, PkceVerificationFailed, type AuthorizationCodeGrantDeps,
} from '../../src/capabilities/authorization-code/authorization-code-grant.js';
import type { AuthorizationCodeRecord, ExpectedRedemption, Redemption } from '../../src/capabilities/authorization-code/code-store.js';
import { s256Challenge } from '../../src/capabilities/authorization-code/pkce.js';
import type { Client } from '../../src/oauth/client.js';
import { InvalidGrant, InvalidRequest, InvalidTarget, TemporarilyUnavailable } from '../../src/oauth/errors.js';
import { SuccessorSealer } from '../../src/oauth/refresh-families/rotation.js';
import type { GrantResult } from '../../src/oauth/token-endpoint/grant.js';
import { atHash } from '../../src/oauth/tokens.js';
import { sha256 } from '../../src/platform/crypto.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing, person, secretSlot, testClient } from '../support/kernel.js';
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
 * matching client, redirect URI, challenge and holding every resource named in its audience is
 * redeemed; otherwise nothing changes and the row says why.
 */
class MemoryCodes {
  readonly rows = new Map<string, AuthorizationCodeRecord>();
  readonly redemptions: Array<{ codeHash: Buffer; expected: ExpectedRedemption }> = [];

  add(code: string, record: Partial<AuthorizationCodeRecord> = {}, now = new Date(NOW * 1000)): AuthorizationCodeRecord {
    const row = {
      grant_id: 'grant-1', client_id: 'web', user_id: 'alice', redirect_uri: REDIRECT, code_challenge: s256Challenge(VERIFIER),
      scope: 'openid offline_access', audience: API, nonce: 'n-1', sid: 'sid-1', auth_time: AUTH_TIME, amr: ['pwd'], acr: null, claims: null,
      created_at: now, expires_at: new Date(now.getTime() + 60_000), redeemed_at: null, ...record,
    };
    this.rows.set(sha256(code).toString('hex'), row);
    return row;
  }

  async redeem(codeHash: Buffer, expected: ExpectedRedemption, now: Date): Promise<Redemption> {
    this.redemptions.push({ codeHash, expected });
    const row = this.rows.get(codeHash.toString('hex'));
    if (!row) return { outcome: 'unknown' };
    const code = { ...row };
    if (row.redeemed_at !== null) return { outcome: 'replayed', code };
    if (row.expires_at.getTime() <= now.getTime()) return { outcome: 'expired', code };
    const audience = ([] as string[]).concat(row.audience as string | string[]);
    if (row.client_id !== expected.clientId || row.redirect_uri !== expected.redirectUri || row.code_challenge !== expected.codeChallenge ||
      !expected.resources.every((r) => audience.includes(r))) {
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
  const users = new Map([['alice', person('alice', false)], ['bob', person('bob', true)]]);
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
    expect(codes.redemptions).toEqual([{ codeHash: sha256(CODE), expected: { clientId: 'web', redirectUri: REDIRECT, codeChallenge: s256Challenge(VERIFIER), resources: [] } }]);
  });
});

describe('redeeming the code (RFC 6749 §4.1.3, RFC 7636 §4.6)', () => {
  it('redeemed: an RFC 9068 access token for the user carrying the grant id, and the response', async () => {
    const { redeem, codes, web } = setup();
    codes.add(CODE, { scope: 'profile' });
    const result = await redeem(web);
    expect(payloadOf(result.response.access_token)).toEqual({
      gid: 'grant-1', auth_time: AUTH_TIME.getTime() / 1000, iss: ISSUER, sub: 'alice', aud: API, exp: NOW + 600, iat: NOW, jti: result.issued.jti, client_id: 'web', scope: 'profile',
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
  it('the claims request\'s id_token member (Core §5.5): the claims it names, of granted scopes only', async () => {
    const { redeem, codes, keys, clock } = setup();
    codes.add(CODE, { scope: 'openid profile', claims: { id_token: { name: null, email: { essential: true } }, userinfo: { locale: null } } });
    const { payload } = await jwtVerify((await redeem()).response.id_token!, keys.publicKey(), { currentDate: clock.now() });
    expect(payload.name).toBe('Alice');
    // email was asked for, but the email scope was not granted.
    expect('email' in payload).toBe(false);
    expect('email_verified' in payload).toBe(false);
  });
  it('a client registered with id_token_scope_claims: every claim of the granted scopes, the registered claims unchanged', async () => {
    const { redeem, codes, keys, clock } = setup();
    codes.add(CODE, { client_id: 'rp', scope: 'openid profile' });
    const rp = testClient('rp', { scope: 'openid profile email', id_token_scope_claims: true });
    const { payload } = await jwtVerify((await redeem(rp)).response.id_token!, keys.publicKey(), { currentDate: clock.now() });
    expect(payload).toMatchObject({ sub: 'alice', aud: 'rp', name: 'Alice', updated_at: Date.parse('2029-06-01T00:00:00Z') / 1000 });
    expect('email' in payload).toBe(false);
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
      // Not rotated yet; this kernel test's request has no address.
      created_ip: null, last_rotated_at: null, last_rotated_ip: null,
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
  it('the grant revoked while the code was being redeemed: 200 all the same, the family born revoked, its revocation counted and audited here', async () => {
    const { redeem, codes, families, issued, refreshMetrics } = setup();
    codes.add(CODE, { scope: 'offline_access' });
    families.revokedGrants.add('grant-1');
    const result = await redeem();
    expect(result.response.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['revoked']);
    expect(await issued()).toBe(1);
    expect(await counterValue(refreshMetrics.familiesRevoked, { reason: 'authorization_code_replayed' })).toBe(1);
    expect(result.audit).toEqual([{
      event: 'family.revoked',
      fields: { client_id: 'web', sub: 'alice', grant_id: 'grant-1', reason: 'authorization_code_replayed', revoked_by: 'code_replay_detection' },
    }]);
  });
});

describe('audience narrowing is checked before the code is consumed (RFC 8707 §2.2)', () => {
  it('a resource outside the grant: invalid_target and the code left unredeemed, so the corrected request gets the tokens', async () => {
    const { redeem, codes, revoker } = setup();
    codes.add(CODE, { audience: API, scope: 'profile' });
    const err = await rejection(redeem(undefined, {}, [REPORTS]));
    expect(err).toBeInstanceOf(InvalidTarget);
    expect(err).toMatchObject({ error: 'invalid_target', description: 'resource was not part of the authorization request' });
    expect(codes.redemptions.map((r) => r.expected.resources)).toEqual([[REPORTS]]);
    expect([...codes.rows.values()][0]!.redeemed_at).toBeNull();
    expect(payloadOf((await redeem(undefined, {}, [API])).response.access_token).aud).toBe(API);
    expect(revoker.calls).toEqual([]);
  });
  it('a wrong verifier and a wrong resource: the PKCE failure (the audience is told only to whom the code belongs)', async () => {
    const { redeem, codes, pkce } = setup();
    codes.add(CODE, { audience: API });
    expect(await rejection(redeem(undefined, { code_verifier: 'w'.repeat(43) }, [REPORTS]))).toBeInstanceOf(PkceVerificationFailed);
    expect(pkce.failures).toBe(1);
  });
  it('a redeemed code presented with a wrong resource is still a replay: the grant revoked', async () => {
    const { redeem, codes, revoker } = setup();
    codes.add(CODE, { audience: API });
    await redeem();
    expect(await rejection(redeem(undefined, {}, [REPORTS]))).toBeInstanceOf(AuthorizationCodeReplayed);
    expect(revoker.calls).toHaveLength(1);
  });
});

/**
 * Steps of concurrent requests run in a given order: each waits until every step before it in
 * `order` has run (or was skipped), so every interleaving of two requests can be replayed.
 */
class Interleaving {
  private readonly done = new Set<string>();
  private readonly waiting: Array<{ step: string; go: () => void }> = [];
  constructor(private readonly order: readonly string[]) {}

  private ready(step: string): boolean {
    return this.order.slice(0, this.order.indexOf(step)).every((s) => this.done.has(s));
  }

  /** Marks a step run (or skipped), and lets the steps it held back go. */
  finish(step: string): void {
    this.done.add(step);
    for (const w of [...this.waiting]) {
      if (this.ready(w.step)) { this.waiting.splice(this.waiting.indexOf(w), 1); w.go(); }
    }
  }

  async run<T>(step: string, fn: () => Promise<T>): Promise<T> {
    if (!this.ready(step)) await new Promise<void>((go) => this.waiting.push({ step, go }));
    try { return await fn(); } finally { this.finish(step); }
  }
}

describe('one code redeemed and replayed at once: every interleaving (RFC 6749 §4.1.2)', () => {
  // The winner W redeemed the code; then it starts its family in one statement — which sees the
  // revoked grants as they were when it began (W2s) and writes the family when it commits
  // (W2c) — and W3 revokes the family if its grant is revoked. The replay R: R1 adds the grant
  // to the revoked set, R2 revokes the family. In every order the winner answers 200, its
  // family ends revoked, and whoever revoked it records it, once.
  const orders: Array<[string, 'born revoked' | 'winner' | 'replay']> = [
    ['R1 R2 W2s W2c W3', 'born revoked'],
    ['R1 W2s R2 W2c W3', 'born revoked'],
    ['R1 W2s W2c R2 W3', 'born revoked'],
    ['R1 W2s W2c W3 R2', 'born revoked'],
    // W2 began before R1 committed, R2 before W2 committed: neither saw the other; only W3 can.
    ['W2s R1 R2 W2c W3', 'winner'],
    ['W2s R1 W2c R2 W3', 'replay'],
    ['W2s R1 W2c W3 R2', 'winner'],
    ['W2s W2c R1 R2 W3', 'replay'],
    ['W2s W2c R1 W3 R2', 'winner'],
    ['W2s W2c W3 R1 R2', 'replay'],
  ];
  for (const [order, revokedBy] of orders) {
    it(`${order}: the winner 200, the replay invalid_grant, the family revoked once (${revokedBy === 'replay' ? 'by the replay' : revokedBy === 'winner' ? 'by the winner' : 'born revoked'})`, async () => {
      const { redeem, codes, families, deps, clock } = setup();
      codes.add(CODE, { scope: 'openid offline_access' });
      const schedule = new Interleaving(order.split(' '));
      const revokeIfGrantRevoked = families.revokeIfGrantRevoked.bind(families);
      let bornRevoked = false;
      families.startFamily = async (f, tokenHash, expiresAt, now) => {
        const grantRevoked = await schedule.run('W2s', async () => families.revokedGrants.has(f.id));
        return schedule.run('W2c', async () => {
          const born = families.insertFamily(f, tokenHash, expiresAt, now, grantRevoked);
          bornRevoked = born.revoked;
          return born;
        });
      };
      families.revokeIfGrantRevoked = (...args) => schedule.run('W3', () => revokeIfGrantRevoked(...args));
      let replayRevokedFamily = false;
      deps.revokeGrant = async (grantId, _clientId, reason) => {
        await schedule.run('R1', async () => { families.revokedGrants.add(grantId); });
        // R2 does not see a family whose statement has not committed yet.
        replayRevokedFamily = await schedule.run('R2', () => families.revokeFamily(grantId, reason, clock.now())) !== undefined;
      };
      const redeemed = new Promise<void>((resolve) => {
        const inner = codes.redeem.bind(codes);
        codes.redeem = async (...args) => { const r = await inner(...args); resolve(); return r; };
      });

      // The winner's W3 does not run when its family was born revoked: the steps after it go on.
      const winner = redeem().finally(() => { for (const step of ['W2s', 'W2c', 'W3']) schedule.finish(step); });
      // The replay can only find the code redeemed once the winner's UPDATE has committed.
      const replay = redeemed.then(() => rejection(redeem()));
      const [won, refused] = await Promise.all([winner, replay]) as [GrantResult, Error];

      expect(won.response.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(refused).toBeInstanceOf(AuthorizationCodeReplayed);
      expect(families.revokedGrants.has('grant-1')).toBe(true);
      expect(families.families.get('grant-1')!.revoked_at).not.toBeNull();
      expect(families.familyTokens('grant-1').map((t) => t.state)).toEqual(['revoked']);
      const winnerRecorded = (won.audit ?? []).filter((e) => e.event === 'family.revoked').length;
      expect({ bornRevoked, byWinner: winnerRecorded === 1 && !bornRevoked, byReplay: replayRevokedFamily }).toEqual({
        bornRevoked: revokedBy === 'born revoked', byWinner: revokedBy === 'winner', byReplay: revokedBy === 'replay',
      });
      expect(winnerRecorded + (replayRevokedFamily ? 1 : 0)).toBe(1);
    });
  }

  it('without a refresh token: the winner 200, its access tokens dead by their gid', async () => {
    const { redeem, codes, families } = setup();
    codes.add(CODE, { scope: 'openid' });
    const [won, refused] = await Promise.all([redeem(), rejection(redeem())]);
    expect(payloadOf(won.response.access_token).gid).toBe('grant-1');
    expect(refused).toBeInstanceOf(AuthorizationCodeReplayed);
    expect(families.revokedGrants.has('grant-1')).toBe(true);
    expect(families.families.size).toBe(0);
  });

  it('N at once: exactly one 200, N-1 replays, each its own audit event with the presenting client and the grant, never the code', async () => {
    const { redeem, codes, revoker } = setup();
    codes.add(CODE, { scope: 'openid offline_access' });
    const settled = await Promise.allSettled(Array.from({ length: 20 }, () => redeem()));
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as AuthorizationCodeReplayed] : []));
    expect(refused).toHaveLength(19);
    for (const err of refused) {
      expect(err).toBeInstanceOf(AuthorizationCodeReplayed);
      expect(err.auditEvent).toEqual({ event: 'authorization_code.replayed', fields: { client_id: 'web', sub: 'alice', grant_id: 'grant-1' } });
      expect(JSON.stringify(err.auditEvent)).not.toContain(CODE);
    }
    expect(revoker.calls).toHaveLength(19);
  });

  it('replayed by another client: audited with that client and the client the code was issued to', async () => {
    const { redeem, codes, other } = setup();
    codes.add(CODE);
    await redeem();
    const err = await rejection(redeem(other));
    expect((err as unknown as AuthorizationCodeReplayed).auditEvent).toEqual({
      event: 'authorization_code.replayed', fields: { client_id: 'other', sub: 'alice', grant_id: 'grant-1', issued_to: 'web' },
    });
  });
});
