import { describe, expect, it } from 'vitest';
import { userInfo, userInfoAccessToken, type UserInfoDeps } from '../../src/capabilities/userinfo/userinfo.js';
import type { ClaimSource } from '../../src/oauth/claims.js';
import { InsufficientScope, InvalidRequest, InvalidToken } from '../../src/oauth/errors.js';
import { issueAccessToken } from '../../src/oauth/tokens.js';
import { ManualClock } from '../support/clock.js';
import { MemoryClients, MemoryKeyRing, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (err) { return err; }
  throw new Error('expected an error');
}
async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

describe('the bearer token of a UserInfo request (RFC 6750 §2)', () => {
  it('from the Authorization header (§2.1), the scheme in any case', () => {
    expect(userInfoAccessToken('Bearer abc.DEF-_~+/==', undefined)).toBe('abc.DEF-_~+/==');
    expect(userInfoAccessToken('bearer abc', undefined)).toBe('abc');
  });
  it('from the form body (§2.2)', () => {
    expect(userInfoAccessToken(undefined, 'abc')).toBe('abc');
  });
  it('an Authorization header that is not "Bearer <token>" is invalid_token', () => {
    for (const header of ['Basic abc', 'Bearer', 'Bearer ', 'Bearer a b', 'Bearer  abc', 'Bearer a,b', '']) {
      const err = thrown(() => userInfoAccessToken(header, undefined));
      expect(err, header).toBeInstanceOf(InvalidToken);
      expect(err, header).toMatchObject({ error: 'invalid_token', status: 401, description: 'the Authorization header must be "Bearer <token>"' });
    }
  });
  it('both ways at once, or a repeated form parameter, is invalid_request', () => {
    const both = thrown(() => userInfoAccessToken('Bearer abc', 'abc'));
    expect(both).toBeInstanceOf(InvalidRequest);
    expect(both).toMatchObject({ error: 'invalid_request', status: 400, description: 'send the access token one way only (RFC 6750 §2)' });
    expect(() => userInfoAccessToken(undefined, ['a', 'b'])).toThrow(expect.objectContaining({ error: 'invalid_request', description: 'access_token must not be repeated' }));
  });
  it('no token at all (or an empty one) is invalid_token', () => {
    for (const form of [undefined, '']) {
      expect(() => userInfoAccessToken(undefined, form)).toThrow(expect.objectContaining({ error: 'invalid_token', description: 'an access token is required' }));
    }
  });
});

describe('UserInfo (OpenID Connect Core §5.3)', () => {
  const alice: ClaimSource & { disabled: boolean } = {
    id: 'u-alice', email: 'alice@example.com', email_verified: true, phone_number: null, phone_number_verified: false,
    profile: { name: 'Alice Example', locale: 'en' }, address: null, updated_at: new Date('2029-06-01T00:00:00Z'), disabled: false,
  };

  function setup() {
    const clock = new ManualClock('2030-01-01T00:00:00Z');
    const keys = new MemoryKeyRing();
    const clients = new MemoryClients([testClient('app'), testClient('off', {}, { disabled: true })]);
    const users = new Map<string, ClaimSource & { disabled: boolean }>([[alice.id, alice], ['u-bob', { ...alice, id: 'u-bob', disabled: true }]]);
    const revoked = new Set<string>();
    const checked: unknown[] = [];
    const deps: UserInfoDeps = {
      keys, clock, issuer: ISSUER, clients,
      users: { async findById(id) { return users.get(id); } },
      async isRevoked(claims) { checked.push(claims); return revoked.has(claims.jti) || (claims.gid !== undefined && revoked.has(claims.gid)); },
    };
    const token = (over: { sub?: string; clientId?: string; aud?: string | string[]; scope?: string; gid?: string | null; ttl?: number } = {}) => issueAccessToken(deps, {
      sub: over.sub ?? alice.id, clientId: over.clientId ?? 'app', aud: over.aud ?? ISSUER, scope: over.scope ?? 'openid email', ttl: over.ttl ?? 300,
      ...(over.gid === null ? {} : { extraClaims: { gid: over.gid ?? 'grant-1' } }),
    });
    const invalid = (debug: string) => ({ error: 'invalid_token', status: 401, description: 'the access token is invalid or expired', debug });
    return { clock, deps, revoked, checked, token, invalid };
  }

  it('answers sub and the claims the token\'s scopes release (§5.4)', async () => {
    const { deps, token } = setup();
    expect(await userInfo(token().token, deps)).toEqual({ sub: 'u-alice', email: 'alice@example.com', email_verified: true });
    expect(await userInfo(token({ scope: 'openid profile' }).token, deps)).toEqual({ sub: 'u-alice', name: 'Alice Example', locale: 'en', updated_at: Date.parse('2029-06-01T00:00:00Z') / 1000 });
    expect(await userInfo(token({ scope: 'openid' }).token, deps)).toEqual({ sub: 'u-alice' });
  });
  it('accepts a token whose audiences include the issuer (RFC 9068 §4)', async () => {
    const { deps, token } = setup();
    expect(await userInfo(token({ aud: [API, ISSUER] }).token, deps)).toEqual({ sub: 'u-alice', email: 'alice@example.com', email_verified: true });
  });
  it('checks revocation with the token\'s claims, and refuses a revoked token', async () => {
    const { deps, token, revoked, checked, invalid } = setup();
    const issued = token();
    await userInfo(issued.token, deps);
    expect(checked).toEqual([expect.objectContaining({ jti: issued.jti, client_id: 'app', gid: 'grant-1' })]);
    revoked.add('grant-1');
    const err = await rejection(userInfo(issued.token, deps));
    expect(err).toBeInstanceOf(InvalidToken);
    expect(err).toMatchObject(invalid('revoked'));
  });
  it('an invalid or expired token is invalid_token, the reason in debug only', async () => {
    const { deps, token, clock, invalid } = setup();
    const issued = token({ ttl: 60 });
    clock.advance(60);
    expect(await rejection(userInfo(issued.token, deps))).toMatchObject(invalid('expired'));
    expect(await rejection(userInfo('garbage', deps))).toMatchObject(invalid('malformed'));
  });
  it('a token not issued for a user (client_credentials: no gid) is invalid_token', async () => {
    const { deps, token } = setup();
    expect(await rejection(userInfo(token({ gid: null, sub: 'app' }).token, deps))).toMatchObject({ error: 'invalid_token', description: 'the access token was not issued for a user' });
  });
  it('a token for another resource only is invalid_token', async () => {
    const { deps, token } = setup();
    for (const aud of [API, [API, 'https://other.example.com']]) {
      expect(await rejection(userInfo(token({ aud }).token, deps))).toMatchObject({
        error: 'invalid_token', debug: 'audience',
        description: 'the access token was issued for another resource: its audience must include the issuer to be used at UserInfo',
      });
    }
  });
  it('a token of a client gone or disabled is invalid_token', async () => {
    const { deps, token, invalid } = setup();
    expect(await rejection(userInfo(token({ clientId: 'off' }).token, deps))).toMatchObject(invalid('client gone, disabled, or the token predates its cutoff'));
    expect(await rejection(userInfo(token({ clientId: 'gone' }).token, deps))).toMatchObject(invalid('client gone, disabled, or the token predates its cutoff'));
  });
  it('a token without openid is insufficient_scope (403)', async () => {
    const { deps, token } = setup();
    for (const scope of ['email', '']) {
      const err = await rejection(userInfo(token({ scope }).token, deps));
      expect(err).toBeInstanceOf(InsufficientScope);
      expect(err).toMatchObject({ error: 'insufficient_scope', status: 403, description: 'the access token lacks the openid scope' });
    }
  });
  it('a token of a user gone or disabled is invalid_token', async () => {
    const { deps, token, invalid } = setup();
    expect(await rejection(userInfo(token({ sub: 'u-bob' }).token, deps))).toMatchObject(invalid('user gone or disabled'));
    expect(await rejection(userInfo(token({ sub: 'u-nobody' }).token, deps))).toMatchObject(invalid('user gone or disabled'));
  });
});
