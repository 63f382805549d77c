import { createServer, type Server } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { createClient } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { freePort } from '../support/process.js';

/**
 * The authorization code flow as people meet it: Debian's Chromium driven by playwright-core
 * through the real sign-in and consent pages, a relying party built on oauth4webapi receiving
 * the callback on its own loopback port, everything over real HTTP.
 */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const options = { [oauth.allowInsecureRequests]: true } as const;

interface Callback { method: string; url: URL; body: URLSearchParams }

/** The relying party's redirect endpoint: records what the browser brought back. */
class RelyingParty {
  readonly callbacks: Callback[] = [];
  /** Logout tokens posted to its backchannel_logout_uri (Back-Channel Logout 1.0 §2.5). */
  readonly logoutTokens: string[] = [];
  private server!: Server;
  port = 0;
  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => { data += c.toString(); });
      req.on('end', () => {
        // Only the redirect endpoint counts (the browser also asks for /favicon.ico).
        if (req.url!.startsWith('/cb')) this.callbacks.push({ method: req.method!, url: new URL(req.url!, `http://127.0.0.1:${this.port}`), body: new URLSearchParams(data) });
        if (req.url === '/backchannel' && req.method === 'POST') {
          this.logoutTokens.push(new URLSearchParams(data).get('logout_token')!);
          return res.writeHead(200, { 'cache-control': 'no-store' }).end();
        }
        res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>RP</title><p>back at the app</p>');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
  }
  redirectUri(path = '/cb'): string { return `http://127.0.0.1:${this.port}${path}`; }
  last(): Callback { return this.callbacks[this.callbacks.length - 1]!; }
  async stop(): Promise<void> { await new Promise((resolve) => this.server.close(resolve)); }
}

interface Flow { verifier: string; state: string; nonce: string; redirectUri: string }

describe('sign-in, consent and the code flow in a real browser with oauth4webapi', () => {
  let app: TestApp;
  let browser: Browser;
  let as: oauth.AuthorizationServer;
  const rp = new RelyingParty();
  const clients: Record<'web' | 'second' | 'par', { client: oauth.Client; auth: oauth.ClientAuth }> = {} as never;
  let userId: string;

  beforeAll(async () => {
    await rp.start();
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    // The relying party's back-channel logout endpoint is on 127.0.0.1: allowed for the outbound guard.
    app = await createTestApp({ ...FAST_ARGON2, ISSUER: issuer, OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' });
    await app.server.listen({ port, host: '127.0.0.1' });
    as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { ...options, algorithm: 'oidc' }));
    // Registered without a port: RFC 8252 §7.3 lets the RP's loopback listener pick any.
    const base = { redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['authorization_code'], scope: 'openid profile email' };
    for (const [name, extra] of [['web', { client_name: 'Web App', post_logout_redirect_uris: [rp.redirectUri('/signed-out')], backchannel_logout_uri: rp.redirectUri('/backchannel') }], ['second', { client_name: 'Second App' }], ['par', { client_name: 'PAR App', require_pushed_authorization_requests: true }]] as const) {
      const created = await createClient(app.context, { ...base, ...extra });
      clients[name] = { client: { client_id: created.client.clientId }, auth: oauth.ClientSecretBasic(created.clientSecret!) };
    }
    userId = (await createUser(app.context, 'alice')).id;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await rp.stop();
  });

  /** Sends the browser to /authorize with a fresh PKCE pair, state and nonce. */
  async function start(page: Page, name: keyof typeof clients, extra: Record<string, string> = {}, omit: string[] = []): Promise<Flow> {
    const flow: Flow = { verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce(), redirectUri: rp.redirectUri() };
    const url = new URL(as.authorization_endpoint!);
    const params: Record<string, string> = {
      client_id: clients[name].client.client_id, redirect_uri: flow.redirectUri, response_type: 'code', scope: 'openid profile email',
      state: flow.state, nonce: flow.nonce, code_challenge: await oauth.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256', ...extra,
    };
    for (const [k, v] of Object.entries(params)) if (!omit.includes(k)) url.searchParams.set(k, v);
    await page.goto(url.href);
    return flow;
  }

  const atRp = (page: Page) => page.url().startsWith(rp.redirectUri());
  const atLogin = (page: Page) => new URL(page.url()).pathname === '/login';
  const atConsent = async (page: Page) => !atRp(page) && (await page.title()).startsWith('Allow access?');

  async function signIn(page: Page): Promise<void> {
    expect(atLogin(page)).toBe(true);
    await page.getByLabel('Username or email').fill('alice');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((u) => u.pathname !== '/login');
  }

  async function consent(page: Page, decision: 'Allow' | 'Deny'): Promise<void> {
    expect(await atConsent(page)).toBe(true);
    await page.getByRole('button', { name: decision }).click();
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
  }

  /** The RP's side: validate the callback (state, iss), redeem the code, validate the ID token. */
  async function finish(name: keyof typeof clients, flow: Flow, callback: URL | URLSearchParams = new URL(rp.last().url)) {
    const { client, auth } = clients[name];
    const params = oauth.validateAuthResponse(as, client, callback, flow.state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, flow.redirectUri, flow.verifier, options);
    return oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: flow.nonce, requireIdToken: true });
  }

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    return { context, page };
  }

  it('login → consent → code → tokens → userinfo', async () => {
    const { context, page } = await newPage();
    const flow = await start(page, 'web');
    await signIn(page);
    expect(await page.getByRole('heading').textContent()).toBe('Allow Web App to access your account?');
    expect(await page.locator('li').allTextContents()).toEqual(['Know who you are (your account identifier)', 'See your name, username, picture and locale', 'See your email address']);
    await consent(page, 'Allow');
    const tokens = await finish('web', flow);
    expect(tokens.scope).toBe('openid profile email');
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    expect(claims.sub).toBe(userId);
    expect(claims.nonce).toBe(flow.nonce);
    const info = await oauth.processUserInfoResponse(as, clients.web.client, claims.sub, await oauth.userInfoRequest(as, clients.web.client, tokens.access_token, options));
    expect(info).toMatchObject({ sub: userId, name: 'Alice Example', email: 'alice@example.com', email_verified: true });

    // Consent remembered: the same request comes straight back, no page in between.
    const visited: string[] = [];
    page.on('framenavigated', (f) => visited.push(new URL(f.url()).pathname));
    const again = await start(page, 'web');
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    expect(visited.filter((p) => p === '/login' || p.startsWith('/interaction/'))).toEqual([]);
    expect((await finish('web', again)).access_token).toBeTruthy();

    // SSO: a second app signs in without the password; only its own consent is asked.
    const second = await start(page, 'second');
    expect(atLogin(page)).toBe(false);
    await consent(page, 'Allow');
    expect(oauth.getValidatedIdTokenClaims(await finish('second', second))!.sid).toBe(claims.sid);
    await context.close();
  });

  it('prompt=none: login_required without a session, a code with one', async () => {
    const { context, page } = await newPage();
    const flow = await start(page, 'web', { prompt: 'none' });
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    expect(() => oauth.validateAuthResponse(as, clients.web.client, new URL(rp.last().url), flow.state)).toThrow(expect.objectContaining({ error: 'login_required' }));

    const first = await start(page, 'web');
    await signIn(page);
    if (!atRp(page)) await consent(page, 'Allow');
    await finish('web', first);
    const silent = await start(page, 'web', { prompt: 'none' });
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    expect((await finish('web', silent)).access_token).toBeTruthy();

    // max_age=0 forces a fresh login despite the session.
    const fresh = await start(page, 'web', { max_age: '0' });
    expect(atLogin(page)).toBe(true);
    await signIn(page);
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    const tokens = await finish('web', fresh);
    expect(oauth.getValidatedIdTokenClaims(tokens)!.auth_time).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 30);
    await context.close();
  });

  it('RP-initiated logout: the app sends the browser to end_session_endpoint and gets it back signed out', async () => {
    const { context, page } = await newPage();
    const flow = await start(page, 'web');
    await signIn(page);
    if (!atRp(page)) await consent(page, 'Allow');
    const tokens = await finish('web', flow);
    const state = oauth.generateRandomState();
    const url = new URL(as.end_session_endpoint!);
    url.searchParams.set('id_token_hint', tokens.id_token!);
    url.searchParams.set('post_logout_redirect_uri', rp.redirectUri('/signed-out'));
    url.searchParams.set('state', state);
    await page.goto(url.href);
    expect(await page.getByRole('heading').textContent()).toBe('Sign out?');
    expect(await page.getByText('Web App asks to sign you out.').count()).toBe(1);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri('/signed-out')));
    expect(new URL(page.url()).searchParams.get('state')).toBe(state);

    // Back-channel: the app was told of the session's end, by a logout token it can verify.
    await app.services.sessionEnd.idle();
    const idClaims = oauth.getValidatedIdTokenClaims(tokens)!;
    const told = await Promise.all(rp.logoutTokens.map((t) => jwtVerify(t, createRemoteJWKSet(new URL(as.jwks_uri!)), {
      issuer: as.issuer, audience: clients.web.client.client_id, typ: 'logout+jwt', requiredClaims: ['iat', 'exp', 'jti', 'sid', 'events'],
    })));
    expect(told.filter(({ payload }) => payload.sid === idClaims.sid).map(({ payload }) => [payload.sub, payload.events])).toEqual([
      [idClaims.sub, { 'http://schemas.openid.net/event/backchannel-logout': {} }],
    ]);

    // The SSO session is gone: a silent request now needs a login.
    const silent = await start(page, 'web', { prompt: 'none' });
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    expect(() => oauth.validateAuthResponse(as, clients.web.client, new URL(rp.last().url), silent.state)).toThrow(expect.objectContaining({ error: 'login_required' }));
    await context.close();
  });

  it('consent denied → access_denied at the app', async () => {
    const { context, page } = await newPage();
    const flow = await start(page, 'second', { scope: 'openid email', prompt: 'consent' });
    await signIn(page);
    await consent(page, 'Deny');
    expect(() => oauth.validateAuthResponse(as, clients.second.client, new URL(rp.last().url), flow.state)).toThrow(expect.objectContaining({ error: 'access_denied' }));
    await context.close();
  });

  it('PKCE: missing or plain is refused at /authorize, a wrong verifier at /token', async () => {
    const { context, page } = await newPage();
    const missing = await start(page, 'web', {}, ['code_challenge', 'code_challenge_method']);
    expect(() => oauth.validateAuthResponse(as, clients.web.client, new URL(rp.last().url), missing.state)).toThrow(expect.objectContaining({ error: 'invalid_request' }));
    const plain = await start(page, 'web', { code_challenge_method: 'plain', code_challenge: 'x'.repeat(43) });
    expect(() => oauth.validateAuthResponse(as, clients.web.client, new URL(rp.last().url), plain.state)).toThrow(expect.objectContaining({ error: 'invalid_request' }));

    const flow = await start(page, 'web');
    await signIn(page);
    if (!atRp(page)) await consent(page, 'Allow');
    await expect(finish('web', { ...flow, verifier: oauth.generateRandomCodeVerifier() })).rejects.toMatchObject({ error: 'invalid_grant' });
    await context.close();
  });

  it('an unregistered or altered redirect_uri is never redirected to', async () => {
    const { context, page } = await newPage();
    const before = rp.callbacks.length;
    for (const uri of ['https://evil.example/cb', rp.redirectUri('/cb/../evil'), rp.redirectUri('/cbx')]) {
      await start(page, 'web', { redirect_uri: uri });
      expect(new URL(page.url()).pathname).toBe('/authorize');
      expect(await page.getByRole('heading').textContent()).toBe('Request not valid');
    }
    expect(rp.callbacks.length).toBe(before);
    await context.close();
  });

  it('a replayed code is refused and revokes the tokens it gave', async () => {
    const { context, page } = await newPage();
    const flow = await start(page, 'web');
    await signIn(page);
    if (!atRp(page)) await consent(page, 'Allow');
    const callback = new URL(rp.last().url);
    const tokens = await finish('web', flow, callback);
    await expect(finish('web', flow, callback)).rejects.toMatchObject({ error: 'invalid_grant' });
    const { client, auth } = clients.web;
    const introspection = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, tokens.access_token, options));
    expect(introspection.active).toBe(false);
    await context.close();
  });

  it('form_post: the browser posts the response to the app', async () => {
    const { context, page } = await newPage();
    const flow = await start(page, 'web', { response_mode: 'form_post' });
    await signIn(page);
    if (await atConsent(page)) await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    const cb = rp.last();
    expect(cb.method).toBe('POST');
    expect([...cb.body.keys()].sort()).toEqual(['code', 'iss', 'state']);
    expect((await finish('web', flow, cb.body)).access_token).toBeTruthy();
    await context.close();
  });

  it('PAR: required by the client, and used', async () => {
    const { context, page } = await newPage();
    const refused = await start(page, 'par');
    expect(() => oauth.validateAuthResponse(as, clients.par.client, new URL(rp.last().url), refused.state)).toThrow(expect.objectContaining({ error: 'invalid_request' }));

    const flow: Flow = { verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(), nonce: oauth.generateRandomNonce(), redirectUri: rp.redirectUri() };
    const { client, auth } = clients.par;
    const pushed = await oauth.processPushedAuthorizationResponse(as, client, await oauth.pushedAuthorizationRequest(as, client, auth, {
      redirect_uri: flow.redirectUri, response_type: 'code', scope: 'openid email', state: flow.state, nonce: flow.nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256',
    }, options));
    expect(pushed.expires_in).toBe(60);
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set('client_id', client.client_id);
    url.searchParams.set('request_uri', pushed.request_uri);
    await page.goto(url.href);
    await signIn(page);
    await consent(page, 'Allow');
    expect((await finish('par', flow)).scope).toBe('openid email');
    await context.close();
  });
});
