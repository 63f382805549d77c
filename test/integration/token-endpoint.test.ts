import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { codeFlow, REDIRECT, refresh } from '../support/refresh.js';

describe('token service discovery contributions (RFC 8414 §2)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp(); });
  afterAll(async () => { await app.close(); });

  it('advertises the endpoints, grant types and client authentication it implements', () => {
    expect(app.context.discovery.build().registration_endpoint).toBeUndefined();
    // Other capabilities add their own members (jwks_uri, …); these are this one's.
    expect(app.context.discovery.build()).toMatchObject({
      token_endpoint: 'http://localhost:8080/token',
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:device_code'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', 'workload_identity'],
      token_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      introspection_endpoint: 'http://localhost:8080/introspect',
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'workload_identity'],
      introspection_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      introspection_signing_alg_values_supported: ['ES256'],
      revocation_endpoint: 'http://localhost:8080/revoke',
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', 'workload_identity'],
      revocation_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA', 'RS256', 'PS256'],
    });
  });
});

describe('rate limits on /token (per IP, and per client once it has authenticated)', () => {
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

describe('the per-client limit counts authenticated requests only, and refuses before anything changes', () => {
  let app: TestApp;
  const clock = new ManualClock();
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, TOKEN_RATE_LIMIT_PER_CLIENT: '2', RATE_LIMIT_WINDOW: '1m', REFRESH_TOKEN_GRACE_PERIOD: '0' }, { clock });
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  it('lets nobody spend a client\'s allowance with wrong credentials in its name', async () => {
    const secret = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'victim')).clientSecret!;
    const token = (authorization: string, ip: string) => app.server.inject({
      method: 'POST', url: '/token', remoteAddress: ip, headers: { ...FORM_HEADERS, authorization }, payload: form({ grant_type: 'client_credentials' }),
    });
    for (let i = 0; i < 5; i++) expect((await token(basic('victim', `wrong-${i}`), `10.6.0.${i}`)).statusCode).toBe(401);
    expect((await token(basic('victim', secret), '10.6.1.1')).statusCode).toBe(200);
    expect((await token(basic('victim', secret), '10.6.1.2')).statusCode).toBe(200);
    const limited = await token(basic('victim', secret), '10.6.1.3');
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({ error: 'too_many_requests', error_description: 'too many requests; retry after the time in Retry-After' });
    expect(limited.headers['retry-after']).toBe('60');
    expect(limited.headers['cache-control']).toBe('no-store');
    expect(await app.context.metrics.registry.metrics()).toMatch(/latchkey_rate_limited_total\{endpoint="token",limit="client"\} 1\n/);
    clock.advance(60);
    expect((await token(basic('victim', secret), '10.6.1.3')).statusCode).toBe(200);
  });

  it('refuses a refresh over the limit without rotating its refresh token', async () => {
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' });
    const web = { id: c.client.clientId, secret: c.clientSecret! };
    const first = await codeFlow(app, web, 'openid offline_access'); // the client's request 1 of this window
    const second = await refresh(app, web, first.refresh_token!); // 2
    expect(second.statusCode).toBe(200);
    const current = (second.json() as { refresh_token: string }).refresh_token;
    const refused = await refresh(app, web, current); // 3: over the limit
    expect(refused.statusCode).toBe(429);
    clock.advance(60);
    // Had the refused request rotated it, presenting it again would be reuse (no grace period): invalid_grant.
    const again = await refresh(app, web, current);
    expect(again.statusCode).toBe(200);
    expect((again.json() as { refresh_token: string }).refresh_token).not.toBe(current);
  });
});
