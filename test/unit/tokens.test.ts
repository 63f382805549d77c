import { createHash } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { signJwt } from '../../src/platform/keys/jws.js';
import {
  ACCESS_TOKEN_TYP, issueAccessToken, issueIdToken, issueUserTokens, MAX_ACCESS_TOKEN_TTL, readIdTokenHint, revocationHorizon,
  verifyAccessToken, type AccessTokenDeps,
} from '../../src/oauth/tokens.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

function setup(algs: ConstructorParameters<typeof MemoryKeyRing>[0] = ['ES256']) {
  const keys = new MemoryKeyRing(algs);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const deps: AccessTokenDeps = { keys, clock, issuer: ISSUER };
  const request = { sub: 'alice', clientId: 'app', aud: API, scope: 'openid email', ttl: 300 };
  return { keys, clock, deps, request };
}

describe('access tokens as RFC 9068 JWTs', () => {
  it('header {alg, typ: at+jwt, kid} of the active key (§2.1)', () => {
    const { deps, request } = setup();
    const { token } = issueAccessToken(deps, request);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k-ES256' });
  });
  it('claims iss, sub, aud, exp, iat, jti, client_id, scope (§2.2), and nothing else', () => {
    const { deps, request } = setup();
    const issued = issueAccessToken(deps, request);
    expect(payloadOf(issued.token)).toEqual({
      iss: ISSUER, sub: 'alice', aud: API, exp: NOW + 300, iat: NOW, jti: issued.jti, client_id: 'app', scope: 'openid email',
    });
    expect(issued).toEqual({ token: issued.token, jti: expect.stringMatching(/^[0-9a-f-]{36}$/), iat: NOW, exp: NOW + 300, expiresIn: 300 });
    expect(issueAccessToken(deps, request).jti).not.toBe(issued.jti);
  });
  it('an array audience stays an array; an empty scope gives no scope claim', () => {
    const { deps, request } = setup();
    const claims = payloadOf(issueAccessToken(deps, { ...request, aud: [API, ISSUER], scope: '' }).token);
    expect(claims.aud).toEqual([API, ISSUER]);
    expect('scope' in claims).toBe(false);
  });
  it('extra claims add to the registered ones, never replace them', () => {
    const { deps, request } = setup();
    const issued = issueAccessToken(deps, { ...request, extraClaims: { gid: 'grant-1', iss: 'https://evil', sub: 'mallory', client_id: 'x', exp: 1e12, jti: 'mine' } });
    expect(payloadOf(issued.token)).toEqual({
      gid: 'grant-1', iss: ISSUER, sub: 'alice', aud: API, exp: NOW + 300, iat: NOW, jti: issued.jti, client_id: 'app', scope: 'openid email',
    });
  });
  it('verifies with a standard JOSE library as a resource server would (ES256 and EdDSA)', async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const { deps, keys, clock, request } = setup([alg]);
      const { token } = issueAccessToken(deps, request);
      const { payload, protectedHeader } = await jwtVerify(token, keys.publicKey(alg), { typ: 'at+jwt', issuer: ISSUER, audience: API, currentDate: clock.now() });
      expect(protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: `k-${alg}` });
      expect(payload.sub).toBe('alice');
    }
  });
});

describe('verifying an access token (RFC 9068 §4)', () => {
  it('valid: the claims as issued', async () => {
    const { deps, request } = setup();
    const issued = issueAccessToken(deps, { ...request, extraClaims: { gid: 'g' } });
    expect(await verifyAccessToken(deps, issued.token)).toEqual({
      valid: true,
      claims: { gid: 'g', iss: ISSUER, sub: 'alice', aud: API, exp: NOW + 300, iat: NOW, jti: issued.jti, client_id: 'app', scope: 'openid email' },
    });
  });
  it('expired at exp exactly (RFC 7519 §4.1.4); allowExpired still reads it', async () => {
    const { deps, clock, request } = setup();
    const { token } = issueAccessToken(deps, request);
    clock.advance(299);
    expect((await verifyAccessToken(deps, token)).valid).toBe(true);
    clock.advance(1);
    expect(await verifyAccessToken(deps, token)).toEqual({ valid: false, reason: 'expired' });
    expect(await verifyAccessToken(deps, token, { allowExpired: true })).toMatchObject({ valid: true, claims: { sub: 'alice', exp: NOW + 300 } });
  });
  it('another issuer\'s token is invalid_claims', async () => {
    const { deps, request } = setup();
    const { token } = issueAccessToken({ ...deps, issuer: 'https://other.example.com' }, request);
    expect(await verifyAccessToken(deps, token)).toEqual({ valid: false, reason: 'invalid_claims' });
  });
  it('a kid the key ring does not know, or no longer trusts, is unknown_key', async () => {
    const { deps, keys, request } = setup();
    const { token } = issueAccessToken(deps, request);
    const foreign = issueAccessToken({ ...deps, keys: new MemoryKeyRing(['EdDSA']) }, request).token;
    expect(await verifyAccessToken(deps, foreign)).toEqual({ valid: false, reason: 'unknown_key' });
    keys.revoke('k-ES256');
    expect(await verifyAccessToken(deps, token)).toEqual({ valid: false, reason: 'unknown_key' });
  });
  it('a token of another type (an ID token, typ JWT) is malformed; application/at+jwt is the same type', async () => {
    const { deps, keys, request } = setup();
    const idToken = issueIdToken(deps, { accessToken: 'x', sub: 'alice', clientId: 'app', authTime: new Date(), amr: [], sid: 's', ttl: 300 });
    expect(await verifyAccessToken(deps, idToken)).toEqual({ valid: false, reason: 'malformed' });
    const claims = payloadOf(issueAccessToken(deps, request).token);
    expect(await verifyAccessToken(deps, signJwt(keys.signingKey(), claims, 'application/AT+JWT'))).toMatchObject({ valid: true });
    expect(await verifyAccessToken(deps, signJwt(keys.signingKey(), claims, 'jwt'))).toEqual({ valid: false, reason: 'malformed' });
  });
  it('a changed payload or signature is invalid_signature; a header naming another alg too', async () => {
    const { deps, keys, request } = setup(['ES256', 'EdDSA']);
    const { token } = issueAccessToken(deps, request);
    const [h, p, s] = token.split('.') as [string, string, string];
    const widened = Buffer.from(JSON.stringify({ ...payloadOf(token), scope: 'admin' })).toString('base64url');
    expect(await verifyAccessToken(deps, `${h}.${widened}.${s}`)).toEqual({ valid: false, reason: 'invalid_signature' });
    expect(await verifyAccessToken(deps, `${h}.${p}.${s.slice(0, -4)}AAAA`)).toEqual({ valid: false, reason: 'invalid_signature' });
    // Signed with the EdDSA key but naming the ES256 key's kid.
    const lying = signJwt({ ...keys.signingKey('EdDSA'), kid: 'k-ES256' }, payloadOf(token), ACCESS_TOKEN_TYP);
    expect(await verifyAccessToken(deps, lying)).toEqual({ valid: false, reason: 'invalid_signature' });
  });
  it('anything but a compact JWS is malformed, as is one longer than 8192 characters', async () => {
    const { deps, keys, request } = setup();
    for (const t of ['', 'abc', 'a.b', 'a.b.c.d', 'a.b.c', 'e30.e30.', `${'a'.repeat(8190)}.b.c`]) {
      expect(await verifyAccessToken(deps, t), t.slice(0, 20)).toEqual({ valid: false, reason: 'malformed' });
    }
    const big = signJwt(keys.signingKey(), { ...payloadOf(issueAccessToken(deps, request).token), pad: 'x'.repeat(8192) }, ACCESS_TOKEN_TYP);
    expect(await verifyAccessToken(deps, big)).toEqual({ valid: false, reason: 'malformed' });
  });
  it('signed by this server but missing or mistyping a required claim: invalid_claims', async () => {
    const { deps, keys, request } = setup();
    const good = payloadOf(issueAccessToken(deps, request).token);
    const sign = (claims: Record<string, unknown>) => signJwt(keys.signingKey(), claims, ACCESS_TOKEN_TYP);
    expect((await verifyAccessToken(deps, sign(good))).valid).toBe(true);
    const { client_id: _c, ...noClientId } = good;
    const { jti: _j, ...noJti } = good;
    const bad: Array<[string, Record<string, unknown>]> = [
      ['no client_id', noClientId],
      ['no jti', noJti],
      ['empty aud', { ...good, aud: [] }],
      ['numeric aud', { ...good, aud: [API, 7] }],
      ['numeric sub', { ...good, sub: 1 }],
      ['fractional exp', { ...good, exp: NOW + 300.5 }],
      ['non-string scope', { ...good, scope: ['openid'] }],
      ['non-string gid', { ...good, gid: 1 }],
      ['nbf in the future', { ...good, nbf: NOW + 1 }],
      ['non-numeric nbf', { ...good, nbf: 'now' }],
    ];
    for (const [what, claims] of bad) expect(await verifyAccessToken(deps, sign(claims)), what).toEqual({ valid: false, reason: 'invalid_claims' });
    expect((await verifyAccessToken(deps, sign({ ...good, nbf: NOW }))).valid).toBe(true);
  });
});

describe('ID tokens (OpenID Connect Core §2, §3.1.3.6)', () => {
  const at = 'the-access-token';
  const base = { accessToken: at, sub: 'alice', clientId: 'app', authTime: new Date('2029-12-31T23:30:00.900Z'), amr: ['pwd'], sid: 'sid-1', ttl: 600 };
  const leftHalf = (hash: 'sha256' | 'sha512') => {
    const d = createHash(hash).update(at).digest();
    return d.subarray(0, d.length / 2).toString('base64url');
  };

  it('header typ JWT; claims iss, sub, aud, azp, exp, iat, auth_time, nonce, acr, amr, sid, at_hash', () => {
    const { deps } = setup();
    const token = issueIdToken(deps, { ...base, nonce: 'n-0S6', acr: 'urn:acr:1' });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k-ES256' });
    expect(payloadOf(token)).toEqual({
      iss: ISSUER, sub: 'alice', aud: 'app', azp: 'app', exp: NOW + 600, iat: NOW,
      auth_time: Date.parse('2029-12-31T23:30:00Z') / 1000, nonce: 'n-0S6', acr: 'urn:acr:1', amr: ['pwd'], sid: 'sid-1',
      at_hash: leftHalf('sha256'),
    });
  });
  it('no nonce, acr or amr claim when the request had none', () => {
    const { deps } = setup();
    for (const nonce of [undefined, null, '']) {
      const claims = payloadOf(issueIdToken(deps, { ...base, nonce, acr: null, amr: [] }));
      expect(Object.keys(claims).sort()).toEqual(['at_hash', 'aud', 'auth_time', 'azp', 'exp', 'iat', 'iss', 'sid', 'sub']);
    }
  });
  it('is signed with the client\'s alg when it names one; at_hash uses that alg\'s hash (SHA-512 for EdDSA)', async () => {
    const { deps, keys, clock } = setup(['ES256', 'EdDSA']);
    const token = issueIdToken(deps, { ...base, alg: 'EdDSA' });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: 'k-EdDSA' });
    const { payload } = await jwtVerify(token, keys.publicKey('EdDSA'), { issuer: ISSUER, audience: 'app', currentDate: clock.now() });
    expect(payload.at_hash).toBe(leftHalf('sha512'));
  });
});

describe('the tokens of a user\'s grant', () => {
  const grant = {
    grantId: 'grant-1', sub: 'alice', client: { clientId: 'app' }, aud: API, scope: 'openid email', authTime: new Date(NOW * 1000 - 60_000),
    nonce: 'n', amr: ['pwd'], acr: null, sid: 'sid-1',
  };
  it('an access token carrying the grant id, and an ID token whose at_hash is that token\'s', async () => {
    const { deps } = setup();
    const { accessToken, idToken } = await issueUserTokens({ ...deps, accessTokenTtl: 300, idTokenTtl: 600 }, grant);
    expect(payloadOf(accessToken.token)).toMatchObject({ gid: 'grant-1', sub: 'alice', client_id: 'app', aud: API, scope: 'openid email', exp: NOW + 300 });
    const d = createHash('sha256').update(accessToken.token).digest();
    expect(payloadOf(idToken!)).toMatchObject({ aud: 'app', nonce: 'n', sid: 'sid-1', exp: NOW + 600, at_hash: d.subarray(0, 16).toString('base64url') });
  });
  it('no ID token without openid; the client\'s access_token_ttl before the default', async () => {
    const { deps } = setup();
    const result = await issueUserTokens({ ...deps, accessTokenTtl: 300, idTokenTtl: 600 }, { ...grant, scope: 'email', client: { clientId: 'app', accessTokenTtl: 60 } });
    expect(Object.keys(result)).toEqual(['accessToken']);
    expect(result.accessToken.expiresIn).toBe(60);
  });
});

describe('id_token_hint (RP-Initiated Logout 1.0 §2)', () => {
  it('is the sub, audience and sid of an ID token this server signed, expired or not', () => {
    const { deps, clock } = setup();
    const token = issueIdToken(deps, { accessToken: 'x', sub: 'alice', clientId: 'app', authTime: new Date(), amr: [], sid: 's', ttl: 60 });
    clock.advance(3600);
    expect(readIdTokenHint(deps, token)).toEqual({ sub: 'alice', aud: ['app'], sid: 's' });
  });
  it('is undefined for an access token, another issuer\'s token, or a key no longer trusted', () => {
    const { deps, keys } = setup();
    const idToken = (issuer: string) => issueIdToken({ ...deps, issuer }, { accessToken: 'x', sub: 'alice', clientId: 'app', authTime: new Date(), amr: [], sid: 's', ttl: 60 });
    expect(readIdTokenHint(deps, issueAccessToken(deps, { sub: 'alice', clientId: 'app', aud: API, scope: '', ttl: 60 }).token)).toBeUndefined();
    expect(readIdTokenHint(deps, idToken('https://other.example.com'))).toBeUndefined();
    const ours = idToken(ISSUER);
    keys.revoke('k-ES256');
    expect(readIdTokenHint(deps, ours)).toBeUndefined();
  });
  it('keeps only the string members of an array audience', () => {
    const { deps, keys } = setup();
    const token = signJwt(keys.signingKey(), { iss: ISSUER, sub: 'alice', aud: ['a', 1, 'b'] }, 'JWT');
    expect(readIdTokenHint(deps, token)).toEqual({ sub: 'alice', aud: ['a', 'b'] });
  });
});

describe('the revocation horizon', () => {
  it('is now plus the longest access token lifetime (a day)', () => {
    expect(MAX_ACCESS_TOKEN_TTL).toBe(86400);
    expect(revocationHorizon(new Date('2030-01-01T00:00:00Z'))).toEqual(new Date('2030-01-02T00:00:00Z'));
  });
});
