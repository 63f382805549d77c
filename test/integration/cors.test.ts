import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD, pkce, redirectParams } from '../support/oidc.js';

/**
 * CORS as RFC 9700 §2.6 allows it (README "Browser apps (SPA) and CORS"): discovery and JWKS to
 * any origin; token, revocation, introspection, UserInfo and registration to the origins of the
 * request's client; never /authorize, /login or a page; never credentials.
 */
const SPA = 'https://spa.example.com';
const SPA_REDIRECT = `${SPA}/callback`;
const OTHER = 'https://other.example.net';
const EVIL = 'https://evil.example.org';
const IAT = 'initial-access-token-for-cors-tests-0123456789';

const CORS_HEADERS = [
  'access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers',
  'access-control-allow-credentials', 'access-control-expose-headers', 'access-control-max-age',
];
function corsHeadersOf(res: LightMyRequestResponse): string[] {
  return CORS_HEADERS.filter((h) => res.headers[h] !== undefined);
}
const varies = (res: LightMyRequestResponse) => String(res.headers.vary ?? '').split(',').map((v) => v.trim().toLowerCase());

describe('CORS (RFC 9700 §2.6, Fetch standard CORS protocol)', () => {
  let app: TestApp;
  let spa: string; // a public client with PKCE whose redirect URI is on SPA
  let service: { id: string; secret: string }; // a confidential client allowed OTHER explicitly

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, INITIAL_ACCESS_TOKEN: IAT });
    spa = (await createClient(app.context, {
      redirect_uris: [SPA_REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid email offline_access', skip_consent: true,
    })).client.clientId;
    const s = await createClient(app.context, { grant_types: ['client_credentials'], scope: 'api', allowed_origins: [OTHER] });
    service = { id: s.client.clientId, secret: s.clientSecret! };
    await createUser(app.context, 'carol');
  });
  afterAll(async () => { await app.close(); });

  const preflight = (url: string, origin: string, method: string, headers?: string) => app.server.inject({
    method: 'OPTIONS', url,
    headers: { origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) },
  });
  const post = (url: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
    app.server.inject({ method: 'POST', url, headers: { ...FORM_HEADERS, ...headers }, payload: form(params) });

  /** A code flow of the SPA client, its token request sent from `origin`. */
  async function spaTokens(origin = SPA): Promise<{ res: LightMyRequestResponse; access: string; refresh: string }> {
    const b = new Browser(app);
    expect((await b.signIn('carol', PASSWORD)).statusCode).toBe(303);
    const p = pkce();
    const q = new URLSearchParams({
      client_id: spa, response_type: 'code', redirect_uri: SPA_REDIRECT, scope: 'openid email offline_access', state: 's',
      code_challenge: p.challenge, code_challenge_method: 'S256',
    });
    const { code } = redirectParams((await b.request('GET', `/authorize?${q}`)).headers.location);
    const res = await post('/token', { grant_type: 'authorization_code', code: code!, redirect_uri: SPA_REDIRECT, code_verifier: p.verifier, client_id: spa }, { origin });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { access_token: string; refresh_token: string };
    return { res, access: body.access_token, refresh: body.refresh_token };
  }

  describe('discovery and JWKS: any origin, no credentials', () => {
    for (const url of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks', '/.well-known/jwks.json']) {
      it(`${url}: Access-Control-Allow-Origin * for any Origin, nothing without one`, async () => {
        const res = await app.server.inject({ url, headers: { origin: EVIL } });
        expect(res.statusCode).toBe(200);
        expect(res.headers['access-control-allow-origin']).toBe('*');
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
        expect(varies(res)).toContain('origin');
        const plain = await app.server.inject({ url });
        expect(plain.statusCode).toBe(200);
        expect(corsHeadersOf(plain)).toEqual([]);
        expect(varies(plain)).not.toContain('origin');

        const pre = await preflight(url, EVIL, 'GET');
        expect(pre.statusCode).toBe(204);
        expect(pre.headers['access-control-allow-origin']).toBe('*');
        expect(pre.headers['access-control-allow-methods']).toBe('GET');
        expect(pre.headers['access-control-allow-credentials']).toBeUndefined();
        // A method the document is not served with: a plain refusal the browser blocks.
        const refused = await preflight(url, EVIL, 'POST');
        expect(refused.statusCode).toBe(403);
        expect(corsHeadersOf(refused)).toEqual([]);
      });
    }
  });

  describe('/token: preflight for any origin, the answer readable only from the client\'s origins', () => {
    it('answers a preflight with exactly POST and Authorization; refuses other methods and headers without CORS headers', async () => {
      for (const origin of [SPA, EVIL]) {
        const res = await preflight('/token', origin, 'POST', 'authorization');
        expect(res.statusCode).toBe(204);
        expect(res.headers['access-control-allow-origin']).toBe(origin);
        expect(res.headers['access-control-allow-methods']).toBe('POST');
        expect(res.headers['access-control-allow-headers']).toBe('authorization');
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
        expect(varies(res)).toContain('origin');
      }
      for (const [method, headers] of [['PUT', undefined], ['GET', undefined], ['POST', 'authorization, x-custom'], ['POST', 'cookie']] as const) {
        const res = await preflight('/token', SPA, method, headers);
        expect(res.statusCode, `${method} ${headers}`).toBe(403);
        expect(corsHeadersOf(res)).toEqual([]);
      }
      expect(corsHeadersOf(await preflight('/token', 'null', 'POST'))).toEqual([]);
    });

    it('a public client\'s code exchange and refresh from its redirect URI\'s origin are readable there', async () => {
      const { res, refresh } = await spaTokens();
      expect(res.headers['access-control-allow-origin']).toBe(SPA);
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      expect(varies(res)).toContain('origin');
      const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: refresh, client_id: spa }, { origin: SPA });
      expect(refreshed.statusCode).toBe(200);
      expect(refreshed.headers['access-control-allow-origin']).toBe(SPA);
    });

    it('an error for the client is readable from its origin (the app can react), from no other', async () => {
      const bad = { grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: SPA_REDIRECT, code_verifier: 'x'.repeat(43), client_id: spa };
      const mine = await post('/token', bad, { origin: SPA });
      expect(mine.statusCode).toBe(400);
      expect(mine.headers['access-control-allow-origin']).toBe(SPA);
      const theirs = await post('/token', bad, { origin: EVIL });
      expect(theirs.statusCode).toBe(400);
      expect(corsHeadersOf(theirs)).toEqual([]);
      expect(varies(theirs)).toContain('origin');
    });

    it('another origin gets no CORS header on a successful exchange either', async () => {
      const { res } = await spaTokens(EVIL);
      expect(corsHeadersOf(res)).toEqual([]);
      expect(varies(res)).toContain('origin');
    });

    it('a confidential client with Basic credentials is readable from its allowed_origins only', async () => {
      const params = { grant_type: 'client_credentials', scope: 'api' };
      const auth = { authorization: basic(service.id, service.secret) };
      const allowed = await post('/token', params, { ...auth, origin: OTHER });
      expect(allowed.statusCode).toBe(200);
      expect(allowed.headers['access-control-allow-origin']).toBe(OTHER);
      expect(allowed.headers['access-control-expose-headers']).toBe('WWW-Authenticate, Retry-After');
      expect(corsHeadersOf(await post('/token', params, { ...auth, origin: SPA }))).toEqual([]);
    });

    it('a loopback redirect URI registered without a port allows its host on any port (RFC 8252 §7.3, as at /authorize); one with a port, that port only', async () => {
      const anyPort = (await createClient(app.context, { redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' })).client.clientId;
      const fixed = (await createClient(app.context, { redirect_uris: ['http://[::1]:8080/callback'], token_endpoint_auth_method: 'none' })).client.clientId;
      const exchange = (clientId: string, origin: string) => post('/token', {
        grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: 'http://127.0.0.1/callback', code_verifier: 'x'.repeat(43), client_id: clientId,
      }, { origin });
      expect((await exchange(anyPort, 'http://127.0.0.1:5173')).headers['access-control-allow-origin']).toBe('http://127.0.0.1:5173');
      expect((await exchange(anyPort, 'http://127.0.0.1')).headers['access-control-allow-origin']).toBe('http://127.0.0.1');
      expect(corsHeadersOf(await exchange(anyPort, 'http://[::1]:5173'))).toEqual([]);
      expect(corsHeadersOf(await exchange(anyPort, 'https://127.0.0.1:5173'))).toEqual([]);
      expect((await exchange(fixed, 'http://[::1]:8080')).headers['access-control-allow-origin']).toBe('http://[::1]:8080');
      expect(corsHeadersOf(await exchange(fixed, 'http://[::1]:5173'))).toEqual([]);
    });

    it('a request without Origin (a server-side client) has no CORS header and no Vary: Origin', async () => {
      const res = await post('/token', { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(service.id, service.secret) });
      expect(res.statusCode).toBe(200);
      expect(corsHeadersOf(res)).toEqual([]);
      expect(varies(res)).not.toContain('origin');
      // …while the same request from an allowed origin is readable there (the check above is not vacuous).
      const cross = await post('/token', { grant_type: 'client_credentials', scope: 'api' }, { authorization: basic(service.id, service.secret), origin: OTHER });
      expect(cross.headers['access-control-allow-origin']).toBe(OTHER);
    });
  });

  describe('/revoke and /introspect', () => {
    it('/revoke: preflight POST + Authorization; the answer readable from the client\'s origin only', async () => {
      const pre = await preflight('/revoke', SPA, 'POST', 'authorization');
      expect(pre.statusCode).toBe(204);
      expect(pre.headers['access-control-allow-methods']).toBe('POST');
      const { refresh } = await spaTokens();
      const other = await post('/revoke', { token: 'unknown-token', client_id: spa }, { origin: EVIL });
      expect(other.statusCode).toBe(200);
      expect(corsHeadersOf(other)).toEqual([]);
      const res = await post('/revoke', { token: refresh, token_type_hint: 'refresh_token', client_id: spa }, { origin: SPA });
      expect(res.statusCode).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(SPA);
    });

    it('/introspect: preflight POST + Authorization; the answer readable from the client\'s allowed origin only; Vary keeps Accept', async () => {
      const pre = await preflight('/introspect', OTHER, 'POST', 'authorization');
      expect(pre.statusCode).toBe(204);
      expect(pre.headers['access-control-allow-headers']).toBe('authorization');
      const auth = { authorization: basic(service.id, service.secret) };
      const res = await post('/introspect', { token: 'not-a-token' }, { ...auth, origin: OTHER });
      expect(res.statusCode).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(OTHER);
      expect(varies(res)).toEqual(['accept', 'origin']);
      expect(corsHeadersOf(await post('/introspect', { token: 'not-a-token' }, { ...auth, origin: EVIL }))).toEqual([]);
      expect(corsHeadersOf(await post('/introspect', { token: 'not-a-token' }, auth))).toEqual([]);
    });
  });

  describe('/userinfo (OpenID Connect Core §5.3: SHOULD support CORS)', () => {
    it('preflight GET/POST + Authorization; readable from the origin of the token\'s client, errors included, from no other', async () => {
      const pre = await preflight('/userinfo', SPA, 'GET', 'authorization');
      expect(pre.statusCode).toBe(204);
      expect(pre.headers['access-control-allow-methods']).toBe('GET, POST');
      expect(pre.headers['access-control-allow-headers']).toBe('authorization');
      const { access } = await spaTokens();
      const mine = await app.server.inject({ url: '/userinfo', headers: { authorization: `Bearer ${access}`, origin: SPA } });
      expect(mine.statusCode).toBe(200);
      expect(mine.headers['access-control-allow-origin']).toBe(SPA);
      const theirs = await app.server.inject({ url: '/userinfo', headers: { authorization: `Bearer ${access}`, origin: EVIL } });
      expect(theirs.statusCode).toBe(200);
      expect(corsHeadersOf(theirs)).toEqual([]);
      // A tampered token: invalid_token, its challenge readable by the app of the client it names.
      const [h, p] = access.split('.');
      const tampered = await app.server.inject({ url: '/userinfo', headers: { authorization: `Bearer ${h}.${p}.AAAA`, origin: SPA } });
      expect(tampered.statusCode).toBe(401);
      expect(tampered.headers['access-control-allow-origin']).toBe(SPA);
      expect(tampered.headers['access-control-expose-headers']).toContain('WWW-Authenticate');
    });
  });

  describe('/register (RFC 7591, RFC 7592)', () => {
    it('preflight POST with Authorization and Content-Type; the registration readable from the origins it declares', async () => {
      const pre = await preflight('/register', SPA, 'POST', 'authorization,content-type');
      expect(pre.statusCode).toBe(204);
      expect(pre.headers['access-control-allow-headers']).toBe('authorization, content-type');
      const register = (origin: string) => app.server.inject({
        method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, origin },
        payload: { redirect_uris: [SPA_REDIRECT], token_endpoint_auth_method: 'none', allowed_origins: [OTHER] },
      });
      const res = await register(SPA);
      expect(res.statusCode).toBe(201);
      expect(res.headers['access-control-allow-origin']).toBe(SPA);
      const created = res.json() as { client_id: string; registration_access_token: string; allowed_origins: string[] };
      expect(created.allowed_origins).toEqual([OTHER]);
      expect(corsHeadersOf(await register(EVIL))).toEqual([]);

      const conf = await preflight(`/register/${created.client_id}`, OTHER, 'PUT', 'authorization, content-type');
      expect(conf.statusCode).toBe(204);
      expect(conf.headers['access-control-allow-methods']).toBe('GET, PUT, DELETE');
      const read = (origin: string) => app.server.inject({
        url: `/register/${created.client_id}`, headers: { authorization: `Bearer ${created.registration_access_token}`, origin },
      });
      expect((await read(OTHER)).headers['access-control-allow-origin']).toBe(OTHER);
      expect(corsHeadersOf(await read(EVIL))).toEqual([]);
    });

    it('refuses allowed_origins that are not origins (a path, http off loopback, a wildcard)', async () => {
      for (const origin of ['https://spa.example.com/', 'https://spa.example.com/app', 'http://spa.example.com', 'https://*.example.com', 'HTTPS://SPA.EXAMPLE.COM', 'https://spa.example.com:443', 'null']) {
        const res = await app.server.inject({
          method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}` },
          payload: { redirect_uris: [SPA_REDIRECT], allowed_origins: [origin] },
        });
        expect(res.statusCode, origin).toBe(400);
        expect(res.json(), origin).toMatchObject({ error: 'invalid_client_metadata' });
      }
      const loopback = await app.server.inject({
        method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}` },
        payload: { redirect_uris: [SPA_REDIRECT], allowed_origins: ['http://127.0.0.1:5173', 'https://app.example.com:8443'] },
      });
      expect(loopback.statusCode).toBe(201);
    });
  });

  describe('never on /authorize, /login or a page (RFC 9700 §2.6)', () => {
    it('no CORS headers on /authorize, /login, /logout or / from an origin that discovery answers, and their preflights are not answered', async () => {
      expect((await app.server.inject({ url: '/.well-known/openid-configuration', headers: { origin: SPA } })).headers['access-control-allow-origin']).toBe('*');
      const q = new URLSearchParams({ client_id: spa, response_type: 'code', redirect_uri: SPA_REDIRECT, scope: 'openid', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
      for (const url of [`/authorize?${q}`, '/login', '/logout', '/']) {
        const res = await app.server.inject({ url, headers: { origin: SPA } });
        expect(corsHeadersOf(res), url).toEqual([]);
        const pre = await preflight(url, SPA, 'GET');
        expect(corsHeadersOf(pre), url).toEqual([]);
      }
      const login = await app.server.inject({ method: 'POST', url: '/login', headers: { ...FORM_HEADERS, origin: SPA }, payload: form({ login: 'carol', password: PASSWORD }) });
      expect(corsHeadersOf(login)).toEqual([]);
    });
  });
});
