import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD, pkce, redirectParams } from '../support/oidc.js';

const REDIRECT = 'https://app.example.com/callback';

describe('pushed authorization requests (RFC 9126), first-party clients, and UserInfo', () => {
  let app: TestApp;
  const clock = new ManualClock();
  let parOnly: { id: string; secret: string };
  let firstParty: { id: string; secret: string };
  let service: { id: string; secret: string };
  let userId: string;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    const p = await createClient(app.context, {
      redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid email', require_pushed_authorization_requests: true,
    });
    parOnly = { id: p.client.clientId, secret: p.clientSecret! };
    const f = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid profile phone', skip_consent: true });
    firstParty = { id: f.client.clientId, secret: f.clientSecret! };
    // A resource server: it introspects other clients' tokens.
    const s = await createClient(app.context, { grant_types: ['client_credentials'], scope: 'openid', introspect_any_token: true });
    service = { id: s.client.clientId, secret: s.clientSecret! };
    userId = (await createUser(app.context, 'bob', { phone_number: '+15550100' })).id;
  });
  afterAll(async () => { await app.close(); });

  const push = (client: { id: string; secret: string }, params: Record<string, string>) => app.server.inject({
    method: 'POST', url: '/par', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) }, payload: form(params),
  });
  const authParams = (challenge: string) => ({
    response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email', state: 'xyz', code_challenge: challenge, code_challenge_method: 'S256',
  });

  async function signedIn(): Promise<Browser> {
    const b = new Browser(app);
    expect((await b.signIn('bob', PASSWORD)).statusCode).toBe(303);
    return b;
  }

  it('returns a single-use request_uri that /authorize takes in place of the parameters', async () => {
    const p = pkce();
    const res = await push(parOnly, authParams(p.challenge));
    expect(res.statusCode).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json() as { request_uri: string; expires_in: number };
    expect(body.expires_in).toBe(60);
    expect(body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/);

    const b = await signedIn();
    const url = `/authorize?client_id=${parOnly.id}&request_uri=${encodeURIComponent(body.request_uri)}`;
    const consent = await b.request('GET', url);
    expect(consent.statusCode).toBe(200);
    expect(consent.body).toContain('See your email address');
    // Used once: the same request_uri again is an error page.
    const again = await b.request('GET', url);
    expect(again.statusCode).toBe(400);
    expect(again.headers.location).toBeUndefined();
  });

  it('a request_uri expires after PAR_TTL and works only for the client that pushed it', async () => {
    const { request_uri: uri } = (await push(parOnly, authParams(pkce().challenge))).json() as { request_uri: string };
    const foreign = await app.server.inject({ method: 'GET', url: `/authorize?client_id=${firstParty.id}&request_uri=${encodeURIComponent(uri)}` });
    expect(foreign.statusCode).toBe(400);
    clock.advance(61);
    const late = await app.server.inject({ method: 'GET', url: `/authorize?client_id=${parOnly.id}&request_uri=${encodeURIComponent(uri)}` });
    expect(late.statusCode).toBe(400);
    expect(late.body).toContain('request_uri is unknown, expired, already used');
  });

  it('a client that must push its requests gets invalid_request for a plain one', async () => {
    const p = pkce();
    const q = new URLSearchParams({ client_id: parOnly.id, ...authParams(p.challenge) });
    const res = await app.server.inject({ method: 'GET', url: `/authorize?${q}` });
    expect(redirectParams(res.headers.location)).toMatchObject({ error: 'invalid_request', error_description: 'this client must use pushed authorization requests (RFC 9126 §5)', state: 'xyz' });
  });

  it('answers bad pushed requests with JSON errors, never a redirect', async () => {
    const p = pkce();
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ ...authParams(p.challenge), code_challenge_method: 'plain' }, 400, 'invalid_request'],
      [{ ...authParams(p.challenge), redirect_uri: 'https://evil.example/cb' }, 400, 'invalid_request'],
      [{ ...authParams(p.challenge), request_uri: 'urn:ietf:params:oauth:request_uri:x' }, 400, 'invalid_request'],
      [{ ...authParams(p.challenge), scope: 'openid admin' }, 400, 'invalid_scope'],
      [{ ...authParams(p.challenge), client_id: firstParty.id }, 400, 'invalid_request'],
    ];
    for (const [params, status, error] of cases) {
      const res = await push(parOnly, params);
      expect(res.statusCode, JSON.stringify(params)).toBe(status);
      expect(res.json()).toMatchObject({ error });
      expect(res.headers.location).toBeUndefined();
    }
    const unauthenticated = await app.server.inject({ method: 'POST', url: '/par', headers: FORM_HEADERS, payload: form({ client_id: parOnly.id, ...authParams(p.challenge) }) });
    expect(unauthenticated.statusCode).toBe(401);
    expect(unauthenticated.json()).toMatchObject({ error: 'invalid_client' });
    expect(await app.context.store.db.selectFrom('authorization_requests').select('id_hash').where('kind', '=', 'par').execute()).toHaveLength(2);
  });

  it('authenticates private_key_jwt with the issuer as the assertion audience, never the PAR endpoint URL (draft-ietf-oauth-rfc7523bis)', async () => {
    const { exportJWK, generateKeyPair, SignJWT } = await import('jose');
    const pair = await generateKeyPair('ES256');
    const jwtClient = await createClient(app.context, {
      redirect_uris: [REDIRECT], scope: 'openid email', token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] },
    });
    const id = jwtClient.client.clientId;
    const push = async (aud: string) => {
      const assertion = await new SignJWT({ jti: crypto.randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(id).setSubject(id).setAudience(aud).setIssuedAt(Math.floor(clock.now().getTime() / 1000))
        .setExpirationTime(Math.floor(clock.now().getTime() / 1000) + 60).sign(pair.privateKey);
      return app.server.inject({
        method: 'POST', url: '/par', headers: FORM_HEADERS,
        payload: form({ ...authParams(pkce().challenge), client_id: id, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      });
    };
    expect((await push('http://localhost:8080')).statusCode).toBe(201);
    // RFC 9126 §2 asked servers to accept the PAR endpoint URL too; rfc7523bis withdraws that.
    const refused = await push('http://localhost:8080/par');
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('skips the consent page for a first-party client marked skip_consent', async () => {
    const b = await signedIn();
    const p = pkce();
    const q = new URLSearchParams({ client_id: firstParty.id, ...authParams(p.challenge), scope: 'openid profile phone' });
    const res = await b.request('GET', `/authorize?${q}`);
    expect(res.statusCode).toBe(303);
    expect(redirectParams(res.headers.location).code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  describe('UserInfo (OpenID Connect Core §5.3)', () => {
    async function userToken(scope: string): Promise<string> {
      const b = await signedIn();
      const p = pkce();
      const q = new URLSearchParams({ client_id: firstParty.id, ...authParams(p.challenge), scope });
      const { code } = redirectParams((await b.request('GET', `/authorize?${q}`)).headers.location);
      const res = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(firstParty.id, firstParty.secret) },
        payload: form({ grant_type: 'authorization_code', code: code!, redirect_uri: REDIRECT, code_verifier: p.verifier }),
      });
      return (res.json() as { access_token: string }).access_token;
    }

    it('releases the claims of the granted scopes, by GET with a header or POST with a form', async () => {
      const token = await userToken('openid phone');
      const get = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
      expect(get.json()).toEqual({ sub: userId, phone_number: '+15550100', phone_number_verified: false });
      const post = await app.server.inject({ method: 'POST', url: '/userinfo', headers: FORM_HEADERS, payload: form({ access_token: token }) });
      expect(post.json()).toEqual(get.json());
    });

    it('without a token: 401 with a bare Bearer challenge', async () => {
      const res = await app.server.inject({ method: 'GET', url: '/userinfo' });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="http://localhost:8080"');
    });

    it('a token without openid is insufficient_scope (403)', async () => {
      const token = await userToken('phone');
      const res = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(403);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="http://localhost:8080", error="insufficient_scope"');
    });

    it('a client_credentials token, a garbled one, and a revoked one are invalid_token', async () => {
      const cc = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(service.id, service.secret) },
        payload: form({ grant_type: 'client_credentials', scope: 'openid' }),
      });
      const user = await userToken('openid');
      const revoke = await app.server.inject({
        method: 'POST', url: '/revoke', headers: { ...FORM_HEADERS, authorization: basic(firstParty.id, firstParty.secret) }, payload: form({ token: user }),
      });
      expect(revoke.statusCode).toBe(200);
      for (const token of [(cc.json() as { access_token: string }).access_token, 'not-a-jwt', user]) {
        const res = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
        expect(res.statusCode).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="http://localhost:8080", error="invalid_token"');
        expect(res.json()).toMatchObject({ error: 'invalid_token' });
      }
    });

    it('takes only a token whose audience includes the issuer: one for another resource server is invalid_token', async () => {
      const api = 'https://api.example.com';
      const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid email', skip_consent: true, resources: [api] });
      const client = { id: c.client.clientId, secret: c.clientSecret! };
      const tokenFor = async (resources: string[], narrowTo?: string) => {
        const b = await signedIn();
        const p = pkce();
        const q = new URLSearchParams({ client_id: client.id, ...authParams(p.challenge) });
        for (const r of resources) q.append('resource', r);
        const { code } = redirectParams((await b.request('GET', `/authorize?${q}`)).headers.location);
        const res = await app.server.inject({
          method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) },
          payload: form({ grant_type: 'authorization_code', code: code!, redirect_uri: REDIRECT, code_verifier: p.verifier, ...(narrowTo ? { resource: narrowTo } : {}) }),
        });
        expect(res.statusCode).toBe(200);
        return (res.json() as { access_token: string }).access_token;
      };
      const call = (token: string) => app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
      const issuer = 'http://localhost:8080';

      // No resource: the client's registered API is the audience, and UserInfo is not it.
      const apiOnly = await tokenFor([]);
      expect(decodeJwt(apiOnly).aud).toBe(api);
      const refused = await call(apiOnly);
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="http://localhost:8080", error="invalid_token"');
      expect(refused.json()).toEqual({ error: 'invalid_token', error_description: 'the access token was issued for another resource: its audience must include the issuer to be used at UserInfo' });
      // Still a live token for the API: introspection says so.
      const introspection = await app.server.inject({
        method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(service.id, service.secret) }, payload: form({ token: apiOnly }),
      });
      expect(introspection.json()).toMatchObject({ active: true, aud: api });

      // The issuer is always a resource a client may name (it is not registered for this one).
      const both = await tokenFor([api, issuer]);
      expect(decodeJwt(both).aud).toEqual([api, issuer]);
      expect((await call(both)).json()).toEqual({ sub: userId, email: 'bob@example.com', email_verified: true });
      const narrowed = await tokenFor([api, issuer], issuer);
      expect(decodeJwt(narrowed).aud).toBe(issuer);
      expect((await call(narrowed)).statusCode).toBe(200);
    });

    it('a token sent both in the header and the body is invalid_request', async () => {
      const token = await userToken('openid');
      const res = await app.server.inject({ method: 'POST', url: '/userinfo', headers: { ...FORM_HEADERS, authorization: `Bearer ${token}` }, payload: form({ access_token: token }) });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    });

    it('a disabled user\'s token stops working at UserInfo and introspection', async () => {
      const token = await userToken('openid');
      const { UserRepository } = await import('../../src/users/user-store.js');
      await new UserRepository(app.context.store.db).setDisabled(decodeJwt(token).sub!, true, clock.now());
      const res = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(401);
      const introspection = await app.server.inject({
        method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(service.id, service.secret) }, payload: form({ token }),
      });
      expect(introspection.json()).toEqual({ active: false });
      await new UserRepository(app.context.store.db).setDisabled(decodeJwt(token).sub!, false, clock.now());
      const again = await app.server.inject({
        method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(service.id, service.secret) }, payload: form({ token }),
      });
      expect(again.json()).toMatchObject({ active: true });
    });
  });
});
