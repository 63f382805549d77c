import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { KeyRing, SigningKey, VerificationKey } from '../../src/platform/keys/keyring.js';
import { issueAccessToken, verifyAccessToken, VerifiedAccessTokens } from '../../src/oauth/tokens.js';
import { ManualClock } from '../support/clock.js';

/** A key ring of one ES256 key whose trust the test switches off (as a revocation does). */
function ring() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // `signatureChecks` counts the reads of the public key: one per signature verification.
  const state = { trusted: true, signatureChecks: 0 };
  const keys = {
    defaultAlg: 'ES256',
    signingKey: (): SigningKey => ({ kid: 'k1', alg: 'ES256', privateKey }),
    verificationKey: (kid: string): VerificationKey | undefined => (state.trusted && kid === 'k1'
      ? { kid, alg: 'ES256', get publicKey() { state.signatureChecks += 1; return publicKey; } }
      : undefined),
  } as unknown as KeyRing;
  return { keys, state };
}

describe('verified access-token cache (a presented token\'s signature is checked once)', () => {
  const setup = (capacity = 10) => {
    const { keys, state } = ring();
    const clock = new ManualClock('2026-11-23T12:00:00Z');
    const verified = new VerifiedAccessTokens(capacity);
    const deps = { keys, clock, issuer: 'https://id.example.com', verified };
    const issue = (ttl = 600, sub = 'svc') => issueAccessToken(deps, { sub, clientId: 'svc', aud: 'https://api.example.com', scope: 'a', ttl }).token;
    return { deps, state, clock, verified, issue };
  };

  it('remembers a valid token and answers it again the same way without a second signature check', async () => {
    const { deps, state, verified, issue } = setup();
    const token = issue();
    const first = await verifyAccessToken(deps, token);
    expect(first).toMatchObject({ valid: true, claims: { sub: 'svc', client_id: 'svc', scope: 'a' } });
    expect(verified.size).toBe(1);
    expect(state.signatureChecks).toBe(1);
    expect(await verifyAccessToken(deps, token)).toEqual(first);
    expect(await verifyAccessToken(deps, token)).toEqual(first);
    expect(state.signatureChecks).toBe(1);
    // Without the cache, or with one of size 0 (VERIFIED_TOKEN_CACHE_SIZE=0), every presentation is checked.
    const uncached = { ...deps, verified: undefined };
    await verifyAccessToken(uncached, token);
    await verifyAccessToken(uncached, token);
    expect(state.signatureChecks).toBe(3);
    const off = { ...deps, verified: new VerifiedAccessTokens(0) };
    expect((await verifyAccessToken(off, token)).valid).toBe(true);
    expect((await verifyAccessToken(off, token)).valid).toBe(true);
    expect(state.signatureChecks).toBe(5);
    expect(off.verified.size).toBe(0);
  });

  it('ends a remembered token at once when its key is no longer trusted', async () => {
    const { deps, state, issue } = setup();
    const token = issue();
    expect((await verifyAccessToken(deps, token)).valid).toBe(true);
    state.trusted = false;
    expect(await verifyAccessToken(deps, token)).toEqual({ valid: false, reason: 'unknown_key' });
  });

  it('forgets a token at its exp, which then answers expired', async () => {
    const { deps, clock, verified, issue } = setup();
    const token = issue(60);
    expect((await verifyAccessToken(deps, token)).valid).toBe(true);
    clock.advance(60_000);
    expect(await verifyAccessToken(deps, token)).toEqual({ valid: false, reason: 'expired' });
    expect(verified.size).toBe(0);
    // Where an expired token is acceptable (allowExpired) it is verified afresh, and not remembered.
    expect(await verifyAccessToken(deps, token, { allowExpired: true })).toMatchObject({ valid: true, claims: { sub: 'svc' } });
    expect(verified.size).toBe(0);
  });

  it('does not take a token with another payload and a remembered signature for the remembered one', async () => {
    const { deps, issue } = setup();
    const token = issue();
    expect((await verifyAccessToken(deps, token)).valid).toBe(true);
    const [h, p, s] = token.split('.');
    const forged = JSON.parse(Buffer.from(p!, 'base64url').toString());
    forged.scope = 'admin';
    const tampered = `${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`;
    expect(await verifyAccessToken(deps, tampered)).toEqual({ valid: false, reason: 'invalid_signature' });
  });

  it('remembers only tokens that passed every check, at most `capacity` of them (oldest forgotten first)', async () => {
    const { deps, verified, issue } = setup(2);
    const wrongIssuer = { ...deps, issuer: 'https://other.example.com' };
    expect(await verifyAccessToken(wrongIssuer, issue())).toEqual({ valid: false, reason: 'invalid_claims' });
    expect(verified.size).toBe(0);
    const [a, b, c] = [issue(600, 'a'), issue(600, 'b'), issue(600, 'c')];
    for (const t of [a, b, c]) expect((await verifyAccessToken(deps, t)).valid).toBe(true);
    expect(verified.size).toBe(2);
    expect(verified.get(VerifiedAccessTokens.keyOf(a), 0)).toBeUndefined();
    expect(verified.get(VerifiedAccessTokens.keyOf(c), 0)).toMatchObject({ kid: 'k1', claims: { sub: 'c' } });
  });
});
