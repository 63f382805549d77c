import { CLAIMS_SUPPORTED } from '../../src/oauth/claims.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { DAY, ManualClock } from '../support/clock.js';
import { keyManagerOf, TEST_KEY_SECRET } from '../support/keys.js';
import { openTestStore } from '../support/store.js';

const ENV = { KEY_ENCRYPTION_SECRET: TEST_KEY_SECRET };

/** RFC 7517/7518/8037: the members a published JWK may have, per key type — nothing private. */
const PUBLIC_MEMBERS: Record<string, string[]> = {
  EC: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
  OKP: ['alg', 'crv', 'kid', 'kty', 'use', 'x'],
  RSA: ['alg', 'e', 'kid', 'kty', 'n', 'use'],
};

describe('JWKS and discovery endpoints', () => {
  const toClose: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const c of toClose.splice(0).reverse()) await c.close();
  });
  async function app(env: Record<string, string> = {}, options: Parameters<typeof createTestApp>[1] = {}): Promise<TestApp> {
    const a = await createTestApp({ ...ENV, ...env }, options);
    toClose.push(a);
    return a;
  }

  it('publishes every key at /jwks and /.well-known/jwks.json with public members only', async () => {
    const a = await app({ SIGNING_ALGS: 'ES256,EdDSA,RS256,PS256' });
    const res = await a.server.inject('/jwks');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect((await a.server.inject('/.well-known/jwks.json')).body).toBe(res.body);
    const { keys } = JSON.parse(res.body) as { keys: Array<Record<string, string>> };
    expect(keys).toHaveLength(8); // an active and a next key per algorithm
    for (const jwk of keys) {
      expect(Object.keys(jwk).sort()).toEqual(PUBLIC_MEMBERS[jwk.kty!]);
      expect(jwk.use).toBe('sig');
    }
    expect(keys.map((k) => `${k.alg}/${k.kty}/${k.crv ?? ''}`).sort()).toEqual([
      'ES256/EC/P-256', 'ES256/EC/P-256', 'EdDSA/OKP/Ed25519', 'EdDSA/OKP/Ed25519',
      'PS256/RSA/', 'PS256/RSA/', 'RS256/RSA/', 'RS256/RSA/',
    ]);
    const rsa = keys.find((k) => k.alg === 'RS256')!;
    expect(Buffer.from(rsa.n!, 'base64url').length * 8).toBe(2048);
  });

  it('is cacheable for JWKS_MAX_AGE with a strong ETag honoured by If-None-Match (304)', async () => {
    const clock = new ManualClock();
    const a = await app({ JWKS_MAX_AGE: '600' }, { clock });
    const res = await a.server.inject('/jwks');
    expect(res.headers['cache-control']).toBe('public, max-age=600');
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);

    const cached = await a.server.inject({ url: '/jwks', headers: { 'if-none-match': etag } });
    expect(cached.statusCode).toBe(304);
    expect(cached.body).toBe('');
    expect(cached.headers.etag).toBe(etag);
    expect(cached.headers['cache-control']).toBe('public, max-age=600');
    expect((await a.server.inject({ url: '/jwks', headers: { 'if-none-match': `"other", W/${etag}` } })).statusCode).toBe(304);
    expect((await a.server.inject({ url: '/jwks', headers: { 'if-none-match': '"other"' } })).statusCode).toBe(200);

    // A rotation publishes a new next key: a new body, a new validator; the old one no longer matches.
    clock.advance(2 * DAY);
    await keyManagerOf(a).rotate();
    const after = await a.server.inject({ url: '/jwks', headers: { 'if-none-match': etag } });
    expect(after.statusCode).toBe(200);
    expect(after.headers.etag).not.toBe(etag);
  });

  it('serves the same metadata at both well-known locations, with the issuer exactly as configured', async () => {
    const a = await app({ ISSUER: 'https://id.example.com/', SIGNING_ALGS: 'ES256,EdDSA' });
    const oidc = await a.server.inject('/.well-known/openid-configuration');
    const rfc8414 = await a.server.inject('/.well-known/oauth-authorization-server');
    expect(oidc.statusCode).toBe(200);
    expect(rfc8414.body).toBe(oidc.body);
    const assertionAlgs = ['ES256', 'EdDSA', 'RS256', 'PS256'];
    expect(oidc.json()).toEqual({
      issuer: 'https://id.example.com',
      jwks_uri: 'https://id.example.com/jwks',
      id_token_signing_alg_values_supported: ['ES256', 'EdDSA'],
      subject_types_supported: ['public'],
      authorization_endpoint: 'https://id.example.com/authorize',
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'form_post'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      pushed_authorization_request_endpoint: 'https://id.example.com/par',
      require_pushed_authorization_requests: false,
      userinfo_endpoint: 'https://id.example.com/userinfo',
      claims_supported: [...CLAIMS_SUPPORTED, 'acr', 'amr', 'auth_time'],
      claims_parameter_supported: true,
      acr_values_supported: ['urn:latchkey:acr:password', 'urn:latchkey:acr:mfa', 'urn:latchkey:acr:phishing-resistant'],
      scopes_supported: ['openid', 'profile', 'email', 'address', 'phone', 'offline_access'],
      token_endpoint: 'https://id.example.com/token',
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:device_code'],
      device_authorization_endpoint: 'https://id.example.com/device_authorization',
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', 'workload_identity'],
      token_endpoint_auth_signing_alg_values_supported: assertionAlgs,
      introspection_endpoint: 'https://id.example.com/introspect',
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'workload_identity'],
      introspection_endpoint_auth_signing_alg_values_supported: assertionAlgs,
      introspection_signing_alg_values_supported: ['ES256', 'EdDSA'],
      revocation_endpoint: 'https://id.example.com/revoke',
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', 'workload_identity'],
      revocation_endpoint_auth_signing_alg_values_supported: assertionAlgs,
      end_session_endpoint: 'https://id.example.com/logout',
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
    });
    expect(oidc.headers['cache-control']).toBe('public, max-age=3600');
    expect((await a.server.inject({ url: '/.well-known/openid-configuration', headers: { 'if-none-match': oidc.headers.etag as string } })).statusCode).toBe(304);
  });

  it('advertises an algorithm added later only once its key signs, after the publish-ahead period', async () => {
    const store = await openTestStore();
    toClose.push(store);
    const clock = new ManualClock();
    const first = await createTestApp(ENV, { store, clock });
    await first.close();

    // RS256 added in front: it becomes the default only once it signs; until then ES256 is.
    const a = await app({ SIGNING_ALGS: 'RS256,ES256' }, { store, clock });
    const metadata = async () => (await a.server.inject('/.well-known/openid-configuration')).json() as Record<string, unknown>;
    expect((await metadata()).id_token_signing_alg_values_supported).toEqual(['ES256']);
    expect(a.context.keys.defaultAlg).toBe('ES256');
    const jwks = JSON.parse((await a.server.inject('/jwks')).body) as { keys: Array<{ alg: string }> };
    expect(jwks.keys.filter((k) => k.alg === 'RS256')).toHaveLength(1); // published, not signing yet
    expect(() => a.context.keys.signingKey('RS256')).toThrow('no active signing key for RS256');
    expect((await a.server.inject('/readyz')).json()).toMatchObject({ status: 'ready' });

    clock.advance(DAY);
    await keyManagerOf(a).tick();
    expect((await metadata()).id_token_signing_alg_values_supported).toEqual(['RS256', 'ES256']);
    expect((await metadata()).introspection_signing_alg_values_supported).toEqual(['RS256', 'ES256']);
    expect(a.context.keys.defaultAlg).toBe('RS256');
    expect(a.context.keys.signingKey().alg).toBe('RS256');
  });
});
