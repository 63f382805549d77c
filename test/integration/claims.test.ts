import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, consentForm } from '../support/browser.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD, pkce, redirectParams } from '../support/oidc.js';

const REDIRECT = 'https://app.example.com/callback';
const IAT = 'initial-access-token-0123456789-abcdefghij';

describe('claims where relying parties expect them (OpenID Connect Core §5.5, §5.4)', () => {
  let app: TestApp;
  let userId: string;
  type Registered = { id: string; secret: string };
  let firstParty: Registered;
  let thirdParty: Registered;
  let profileInIdToken: Registered;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, INITIAL_ACCESS_TOKEN: IAT });
    const register = async (metadata: Record<string, unknown>): Promise<Registered> => {
      const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], ...metadata });
      return { id: c.client.clientId, secret: c.clientSecret! };
    };
    firstParty = await register({ scope: 'openid profile email offline_access', skip_consent: true });
    thirdParty = await register({ scope: 'openid profile email' });
    profileInIdToken = await register({ scope: 'openid profile email offline_access', skip_consent: true, id_token_scope_claims: true });
    userId = (await createUser(app.context, 'carol')).id;
  });
  afterAll(async () => { await app.close(); });

  const authParams = (client: Registered, challenge: string, extra: Record<string, string>) => ({
    client_id: client.id, response_type: 'code', redirect_uri: REDIRECT, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  });

  async function signedIn(): Promise<Browser> {
    const b = new Browser(app);
    expect((await b.signIn('carol', PASSWORD)).statusCode).toBe(303);
    return b;
  }

  async function redeem(client: Registered, code: string, verifier: string) {
    const res = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) },
      payload: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    expect(res.statusCode).toBe(200);
    return res.json() as { access_token: string; id_token: string; refresh_token?: string };
  }

  /** A code flow through /authorize for a client that skips consent. */
  async function tokens(client: Registered, extra: Record<string, string>) {
    const b = await signedIn();
    const p = pkce();
    const res = await b.request('GET', `/authorize?${new URLSearchParams(authParams(client, p.challenge, extra))}`);
    const { code } = redirectParams(res.headers.location);
    expect(code).toBeDefined();
    return redeem(client, code!, p.verifier);
  }

  const userInfo = async (accessToken: string) =>
    (await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${accessToken}` } })).json() as Record<string, unknown>;

  it('discovery says the claims parameter is supported', async () => {
    const metadata = (await app.server.inject('/.well-known/openid-configuration')).json() as Record<string, unknown>;
    expect(metadata.claims_parameter_supported).toBe(true);
    expect(metadata.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'name']));
  });

  it('claims={"id_token":{"email":null}} with scope openid email: email in the ID token, nothing else asked for', async () => {
    const { id_token: idToken } = await tokens(firstParty, { scope: 'openid email', claims: JSON.stringify({ id_token: { email: null } }) });
    const payload = decodeJwt(idToken);
    expect(payload).toMatchObject({ sub: userId, email: 'carol@example.com' });
    expect('email_verified' in payload).toBe(false);
    expect('name' in payload).toBe(false);
  });

  it('a claim whose scope was not granted is not released, even when essential', async () => {
    const { id_token: idToken } = await tokens(firstParty, { scope: 'openid profile', claims: JSON.stringify({ id_token: { email: { essential: true }, name: null } }) });
    const payload = decodeJwt(idToken);
    expect(payload.name).toBe('Carol Example');
    expect('email' in payload).toBe(false);
  });

  it('the userinfo member: its claims at UserInfo (the granted scope\'s), and not in the ID token', async () => {
    const { access_token: accessToken, id_token: idToken } = await tokens(firstParty, {
      scope: 'openid email', claims: JSON.stringify({ userinfo: { email: { essential: true }, email_verified: null } }),
    });
    expect(await userInfo(accessToken)).toEqual({ sub: userId, email: 'carol@example.com', email_verified: true });
    expect('email' in decodeJwt(idToken)).toBe(false);
  });

  it('the claims request survives the consent page (the pending interaction carries it)', async () => {
    const b = await signedIn();
    const p = pkce();
    const page = await b.request('GET', `/authorize?${new URLSearchParams(authParams(thirdParty, p.challenge, {
      scope: 'openid profile email', claims: JSON.stringify({ id_token: { email: null, locale: null } }),
    }))}`);
    expect(page.statusCode).toBe(200);
    const action = /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]!;
    const { code } = redirectParams((await b.request('POST', action, consentForm(page.body, 'allow'))).headers.location);
    const payload = decodeJwt((await redeem(thirdParty, code!, p.verifier)).id_token);
    expect(payload).toMatchObject({ email: 'carol@example.com', locale: 'en' });
    expect('name' in payload).toBe(false);
  });

  it('the claims request survives a pushed authorization request (RFC 9126)', async () => {
    const p = pkce();
    const pushed = await app.server.inject({
      method: 'POST', url: '/par', headers: { ...FORM_HEADERS, authorization: basic(firstParty.id, firstParty.secret) },
      payload: form({ ...authParams(firstParty, p.challenge, { scope: 'openid profile', claims: JSON.stringify({ id_token: { name: null } }) }) }),
    });
    expect(pushed.statusCode).toBe(201);
    const { request_uri: uri } = pushed.json() as { request_uri: string };
    const b = await signedIn();
    const { code } = redirectParams((await b.request('GET', `/authorize?client_id=${firstParty.id}&request_uri=${encodeURIComponent(uri)}`)).headers.location);
    expect(decodeJwt((await redeem(firstParty, code!, p.verifier)).id_token).name).toBe('Carol Example');
  });

  it('a malformed claims parameter: invalid_request, back to the client at /authorize and as JSON at /par', async () => {
    const b = await signedIn();
    const p = pkce();
    const res = await b.request('GET', `/authorize?${new URLSearchParams(authParams(firstParty, p.challenge, { scope: 'openid', claims: '{"id_token":["email"]}' }))}`);
    expect(redirectParams(res.headers.location)).toMatchObject({ error: 'invalid_request', error_description: 'claims.id_token must be a JSON object', state: 'st' });
    const pushed = await app.server.inject({
      method: 'POST', url: '/par', headers: { ...FORM_HEADERS, authorization: basic(firstParty.id, firstParty.secret) },
      payload: form({ ...authParams(firstParty, p.challenge, { scope: 'openid', claims: 'email' }) }),
    });
    expect(pushed.statusCode).toBe(400);
    expect(pushed.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('unknown claim names are ignored (§5.5)', async () => {
    const { id_token: idToken } = await tokens(firstParty, { scope: 'openid email', claims: JSON.stringify({ id_token: { email: null, shoe_size: null } }) });
    const payload = decodeJwt(idToken);
    expect(payload.email).toBe('carol@example.com');
    expect('shoe_size' in payload).toBe(false);
  });

  it('a client registered with id_token_scope_claims: the granted scopes\' claims in the ID token, after a refresh too', async () => {
    const { id_token: idToken, refresh_token: refreshToken } = await tokens(profileInIdToken, { scope: 'openid profile email offline_access' });
    const expected = { sub: userId, name: 'Carol Example', locale: 'en', email: 'carol@example.com', email_verified: true };
    expect(decodeJwt(idToken)).toMatchObject(expected);
    const refreshed = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(profileInIdToken.id, profileInIdToken.secret) },
      payload: form({ grant_type: 'refresh_token', refresh_token: refreshToken! }),
    });
    expect(refreshed.statusCode).toBe(200);
    expect(decodeJwt((refreshed.json() as { id_token: string }).id_token)).toMatchObject(expected);
    // Only what was granted: without the email scope, no email.
    const narrower = decodeJwt((await tokens(profileInIdToken, { scope: 'openid profile' })).id_token);
    expect(narrower.name).toBe('Carol Example');
    expect('email' in narrower).toBe(false);
  });

  it('without the option or a claims request, ID tokens carry no profile claims (they are at UserInfo)', async () => {
    const payload = decodeJwt((await tokens(firstParty, { scope: 'openid profile email' })).id_token);
    expect('name' in payload).toBe(false);
    expect('email' in payload).toBe(false);
  });

  it('a client may register id_token_scope_claims itself at /register (it releases nothing not consented to)', async () => {
    const res = await app.server.inject({
      method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ redirect_uris: [REDIRECT], scope: 'openid profile', id_token_scope_claims: true }),
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ id_token_scope_claims: true });
  });
});
