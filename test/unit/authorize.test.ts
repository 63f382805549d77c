import { describe, expect, it } from 'vitest';
import { authorizationResponse, initialInteraction, nextStep, redirectUriMatches, validateAuthorizationRequest, type AuthorizationError, type AuthorizationRequest } from '../../src/capabilities/authorization-code/authorization-request.js';
import { pkceExempt } from '../../src/oauth/client-metadata.js';
import { testClient } from '../support/kernel.js';
import { assertIdTokenSignable, atHash } from '../../src/oauth/tokens.js';
import type { KeyRing } from '../../src/platform/keys/keyring.js';
import { s256Challenge } from '../../src/capabilities/authorization-code/pkce.js';

describe('redirect URI matching (RFC 6749 §3.1.2.3, RFC 8252 §7.3)', () => {
  it('is exact string comparison', () => {
    expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com/cb')).toBe(true);
    for (const c of ['https://app.example.com/cb/', 'https://APP.example.com/cb', 'https://app.example.com/cb?x=1', 'https://app.example.com:443/cb', 'https://app.example.com/CB']) {
      expect(redirectUriMatches(c, 'https://app.example.com/cb'), c).toBe(false);
    }
  });
  it('ignores only the port of an http loopback redirect URI', () => {
    expect(redirectUriMatches('http://127.0.0.1:5000/cb', 'http://127.0.0.1/cb')).toBe(true);
    expect(redirectUriMatches('http://[::1]:5000/cb', 'http://[::1]/cb')).toBe(true);
    // Registered with a port: that port only.
    expect(redirectUriMatches('http://[::1]:5000/cb', 'http://[::1]:6000/cb')).toBe(false);
    expect(redirectUriMatches('http://[::1]:6000/cb', 'http://[::1]:6000/cb')).toBe(true);
    // Not a port at all: never a match (it could not even be redirected to).
    expect(redirectUriMatches('http://127.0.0.1:99999/cb', 'http://127.0.0.1/cb')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.1:5000/cb?a=1', 'http://127.0.0.1/cb?a=1')).toBe(true);
    expect(redirectUriMatches('http://127.0.0.1:5000/cb2', 'http://127.0.0.1/cb')).toBe(false);
    expect(redirectUriMatches('http://localhost:5000/cb', 'http://127.0.0.1/cb')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.1.evil.com/cb', 'http://127.0.0.1/cb')).toBe(false);
    expect(redirectUriMatches('https://127.0.0.1:5000/cb', 'https://127.0.0.1/cb')).toBe(false);
  });
});

describe('authorization responses', () => {
  it('adds the parameters to the redirect URI\'s own query, with state and iss', () => {
    const r = authorizationResponse({ redirectUri: 'https://app.example.com/cb?tenant=a', responseMode: 'query', state: 's&1' }, 'https://id.example.com', { code: 'c' });
    expect(r).toEqual({ mode: 'query', location: 'https://app.example.com/cb?tenant=a&code=c&state=s%261&iss=https%3A%2F%2Fid.example.com' });
  });
  it('form_post carries the same fields to the redirect URI', () => {
    expect(authorizationResponse({ redirectUri: 'https://app.example.com/cb', responseMode: 'form_post' }, 'https://id', { code: 'c' }))
      .toEqual({ mode: 'form_post', action: 'https://app.example.com/cb', fields: { code: 'c', iss: 'https://id' } });
  });
});

describe('the next step of an authorization request', () => {
  const now = new Date('2030-01-01T00:10:00Z');
  const request = (extra: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({
    clientId: 'c', redirectUri: 'https://a/cb', responseMode: 'query', scope: 'openid email', codeChallenge: 'x'.repeat(43), prompt: [], audience: 'https://id', ...extra,
  });
  const session = { userId: 'u', authTime: new Date('2030-01-01T00:00:00Z') };
  const granted = { skip: false, granted: new Set(['openid', 'email']) };

  it('issues when signed in with consent on record', () => {
    const r = request();
    expect(nextStep(r, initialInteraction(r, session, now), session, granted, now)).toEqual({ step: 'issue' });
  });
  it('asks consent for a scope not granted, unless the client skips consent', () => {
    const r = request({ scope: 'openid email phone' });
    expect(nextStep(r, initialInteraction(r, session, now), session, granted, now)).toEqual({ step: 'consent' });
    expect(nextStep(r, initialInteraction(r, session, now), session, { ...granted, skip: true }, now)).toEqual({ step: 'issue' });
  });
  it('max_age exceeded asks for a sign-in newer than the request; a newer one satisfies it', () => {
    const r = request({ maxAge: 300 });
    const state = initialInteraction(r, session, now);
    expect(state.loginAfter).toEqual(now);
    expect(nextStep(r, state, session, granted, now)).toEqual({ step: 'login', loginAfter: now });
    const fresh = { userId: 'u', authTime: new Date(now.getTime() + 5000) };
    expect(nextStep(r, state, fresh, granted, new Date(now.getTime() + 6000))).toEqual({ step: 'issue' });
  });
  it('max_age not exceeded needs no sign-in', () => {
    const r = request({ maxAge: 601 });
    expect(initialInteraction(r, session, now).loginAfter).toBeUndefined();
  });
  it('prompt=none never shows a page', () => {
    const r = request({ prompt: ['none'] });
    expect(() => nextStep(r, initialInteraction(r, undefined, now), undefined, granted, now)).toThrow('the user is not signed in');
    const more = request({ prompt: ['none'], scope: 'openid phone' });
    expect(() => nextStep(more, initialInteraction(more, session, now), session, granted, now)).toThrow('the user has not granted these scopes to this client');
  });
});

describe('hashes', () => {
  it('S256 of the RFC 7636 Appendix B verifier', () => {
    expect(s256Challenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });
  it('at_hash of the OpenID Connect Core example access token', () => {
    // OpenID Connect Core, Appendix A.3 / A.4 token and at_hash (RS256 → SHA-256).
    expect(atHash('jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y', 'RS256')).toBe('77QmUPtjPfzWtF2AnpK9RQ');
  });
});

describe('ID token signability, checked before any state changes', () => {
  const keys = { defaultAlg: 'ES256', algorithms: () => ['ES256'] } as unknown as KeyRing;
  it('passes for the default algorithm and for an active one', () => {
    expect(() => assertIdTokenSignable(keys, undefined)).not.toThrow();
    expect(() => assertIdTokenSignable(keys, 'ES256')).not.toThrow();
  });
  it('is temporarily_unavailable (503) for an algorithm without an active key', () => {
    expect(() => assertIdTokenSignable(keys, 'RS256')).toThrow(expect.objectContaining({ error: 'temporarily_unavailable', status: 503 }));
  });
});

describe('PKCE exemption (RFC 9700 §2.1.1): a confidential client with require_pkce false, on an OpenID Connect request with a nonce', () => {
  const options = { issuer: 'https://as.example.com', pushed: false, signingAlgs: ['ES256'], idTokenHintSubject: () => undefined };
  const base = { response_type: 'code', redirect_uri: 'https://app.example.com/cb', state: 's' };
  const exempt = testClient('rp', { scope: 'openid profile', require_pkce: false });
  const strict = testClient('strict', { scope: 'openid profile' });
  const outcome = (client: typeof exempt, params: Record<string, string>) => {
    try {
      return validateAuthorizationRequest({ ...base, client_id: client.clientId, ...params }, client, options);
    } catch (err) {
      return (err as AuthorizationError).oauth.description;
    }
  };

  it('lets the exempted client leave code_challenge out with scope openid and a nonce; the request has no challenge', () => {
    const request = outcome(exempt, { scope: 'openid', nonce: 'n' });
    expect(request).toMatchObject({ clientId: 'rp', scope: 'openid', nonce: 'n' });
    expect(request).not.toHaveProperty('codeChallenge');
  });

  it('requires PKCE without the nonce, without openid, and of every client not exempted', () => {
    expect(outcome(exempt, { scope: 'openid' })).toBe('code_challenge is required (PKCE, RFC 7636)');
    expect(outcome(exempt, { scope: 'profile', nonce: 'n' })).toBe('code_challenge is required (PKCE, RFC 7636)');
    expect(outcome(strict, { scope: 'openid', nonce: 'n' })).toBe('code_challenge is required (PKCE, RFC 7636)');
  });

  it('holds the exempted client to a challenge it sends', () => {
    expect(outcome(exempt, { scope: 'openid', nonce: 'n', code_challenge: 'short', code_challenge_method: 'S256' })).toMatch(/^code_challenge must be/);
    expect(outcome(exempt, { scope: 'openid', nonce: 'n', code_challenge: s256Challenge('v'.repeat(43)) })).toBe('code_challenge_method must be S256 (plain is not allowed)');
  });

  it('is for confidential clients only: a public client cannot be exempted', () => {
    expect(() => testClient('spa', { token_endpoint_auth_method: 'none', require_pkce: false })).toThrow(/only a confidential client/);
    expect(pkceExempt(exempt.metadata)).toBe(true);
    expect(pkceExempt(strict.metadata)).toBe(false);
  });
});
