import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';

describe('token service discovery contributions (RFC 8414 §2)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp(); });
  afterAll(async () => { await app.close(); });

  it('advertises the endpoints, grant types and client authentication it implements', () => {
    expect(app.context.discovery.build().registration_endpoint).toBeUndefined();
    // Other capabilities add their own members (jwks_uri, …); these are this one's.
    expect(app.context.discovery.build()).toMatchObject({
      token_endpoint: 'http://localhost:8080/token',
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      token_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      introspection_endpoint: 'http://localhost:8080/introspect',
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      introspection_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      revocation_endpoint: 'http://localhost:8080/revoke',
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      revocation_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256', 'PS256'],
    });
  });
});

describe('rate limits on /token', () => {
  let app: TestApp;
  let secretA: string;
  let secretB: string;
  beforeAll(async () => {
    app = await createTestApp({ TOKEN_RATE_LIMIT_PER_CLIENT: '3', TOKEN_RATE_LIMIT_PER_IP: '5', RATE_LIMIT_WINDOW: '1h' });
    secretA = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'a')).clientSecret!;
    secretB = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'b')).clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  const token = (authorization: string, ip = '10.0.0.1') => app.server.inject({
    method: 'POST', url: '/token', remoteAddress: ip, headers: { ...FORM_HEADERS, authorization }, payload: form({ grant_type: 'client_credentials' }),
  });

  it('limits one client, then one IP, with 429 and Retry-After', async () => {
    for (let i = 0; i < 3; i++) expect((await token(basic('a', secretA))).statusCode).toBe(200);
    const limited = await token(basic('a', secretA));
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error).toBe('too_many_requests');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(3600);
    // Another client from the same IP passes until the IP's own limit (5 requests in all).
    expect((await token(basic('b', secretB))).statusCode).toBe(200);
    expect((await token(basic('b', secretB))).statusCode).toBe(429);
    expect((await token(basic('b', secretB), '10.0.0.2')).statusCode).toBe(200);
    expect(await app.context.metrics.registry.metrics()).toMatch(/latchkey_rate_limited_total\{endpoint="token",limit="client"\} 1\nlatchkey_rate_limited_total\{endpoint="token",limit="ip"\} 1\n/);
  });
});
