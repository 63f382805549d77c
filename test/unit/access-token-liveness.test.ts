import { describe, expect, it } from 'vitest';
import { liveAccessToken, namesUser, stillLive, type LivenessDeps } from '../../src/oauth/access-token-liveness.js';
import { issueAccessToken, type AccessTokenClaims } from '../../src/oauth/tokens.js';
import { ManualClock } from '../support/clock.js';
import { MemoryClients, MemoryKeyRing, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';

describe('a live access token (introspection RFC 7662 §2.2 and token exchange RFC 8693 §2.1 read the one rule)', () => {
  const clock = new ManualClock();
  const revoked = new Set<string>();
  const deps: LivenessDeps = {
    keys: new MemoryKeyRing(), clock, issuer: ISSUER,
    clients: new MemoryClients([testClient('app'), testClient('off', {}, { disabled: true })]),
    isRevoked: async ({ jti, gid }) => revoked.has(jti) || (gid !== undefined && revoked.has(gid)),
    userActive: async (sub) => sub === 'alice',
  };
  const claims = (extra: Partial<AccessTokenClaims> = {}): AccessTokenClaims => ({
    iss: ISSUER, sub: 'alice', aud: 'x', exp: 2_000_000_000, iat: 1, jti: 'j', client_id: 'app', ...extra,
  });

  it('a user\'s token is one naming its grant, or one exchanged for a user (sub_kind)', () => {
    expect(namesUser({ gid: 'g' })).toBe(true);
    expect(namesUser({ sub_kind: 'user' })).toBe(true);
    expect(namesUser({})).toBe(false);
  });

  it('is not revoked (jti or grant), its client enabled, its user (if any) active', async () => {
    expect(await stillLive(claims({ gid: 'g1' }), deps)).toBe(true);
    revoked.add('g1');
    expect(await stillLive(claims({ gid: 'g1' }), deps)).toBe(false);
    expect(await stillLive(claims({ client_id: 'off' }), deps)).toBe(false);
    expect(await stillLive(claims({ client_id: 'gone' }), deps)).toBe(false);
    expect(await stillLive(claims({ sub: 'bob', sub_kind: 'user' }), deps)).toBe(false);
    // A client's own token has no user to check.
    expect(await stillLive(claims({ sub: 'app' }), deps)).toBe(true);
  });

  it('verifies first: an unknown, malformed or expired token is not live, with its reason', async () => {
    const ok = issueAccessToken(deps, { sub: 'alice', clientId: 'app', aud: 'x', scope: '', ttl: 60, extraClaims: { sub_kind: 'user' } });
    expect(await liveAccessToken(ok.token, deps)).toMatchObject({ live: true, claims: { sub: 'alice', sub_kind: 'user' } });
    const odd = issueAccessToken(deps, { sub: 'alice', clientId: 'app', aud: 'x', scope: '', ttl: 60, extraClaims: { sub_kind: 'robot' } });
    expect(await liveAccessToken(odd.token, deps)).toEqual({ live: false, reason: 'invalid_claims' });
    const bob = issueAccessToken(deps, { sub: 'bob', clientId: 'app', aud: 'x', scope: '', ttl: 60, extraClaims: { gid: 'g2' } });
    expect(await liveAccessToken(bob.token, deps)).toEqual({ live: false, reason: 'not_live' });
    expect(await liveAccessToken('nonsense', deps)).toEqual({ live: false, reason: 'malformed' });
    clock.advance(61);
    expect(await liveAccessToken(ok.token, deps)).toEqual({ live: false, reason: 'expired' });
  });
});
