import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { Strategy, type VerifyFunction } from 'openid-client/passport';
import passport from 'passport';
import { chromium, type Browser as PwBrowser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { overHttp } from '../support/fault.js';
import { PASSWORD } from '../support/oidc.js';
import { freePort } from '../support/process.js';
import { REDIRECT, secretOf, SIGNED_OUT, signInAndConsent, startCompatServer, type CompatServer } from './support.js';

/**
 * The compatibility suite (#21): real, unmodified client libraries against one real
 * `latchkey start` process (its own data directory, or its own schema on DATABASE_URL).
 *
 * - The issuer is http on loopback, so openid-client runs with its documented
 *   `allowInsecureRequests` execute option (it refuses http otherwise).
 * - Sign-in and consent are driven over HTTP with the project's cookie-jar browser
 *   (test/support/browser.ts), except in the Chromium rows (playwright-core, /usr/bin/chromium): the
 *   openid-client RP and the oidc-client-ts SPA (a real app on another loopback origin: CORS).
 */
const execute = [client.allowInsecureRequests];
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const API = 'https://api.example.com';
/** Registration is on only with an initial access token (RFC 7591 §3). */
const INITIAL_ACCESS_TOKEN = 'compat-initial-access-token-0123456789abcdef';

let server: CompatServer;
let issuer: URL;
/** The oidc-client-ts SPA's port: its redirect URI is registered with it. */
let spaPort: number;
let spaBase: string;

beforeAll(async () => {
  spaPort = await freePort();
  spaBase = `http://127.0.0.1:${spaPort}`;
  server = await startCompatServer([
    {
      // openid-client's default for a client secret is client_secret_post.
      client_id: 'oc-web', token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT],
      scope: 'openid profile email offline_access', client_name: 'openid-client app',
    },
    {
      // The Chromium row's RP: a loopback redirect URI without a port (RFC 8252 §7.3).
      client_id: 'oc-chromium', token_endpoint_auth_method: 'client_secret_post', grant_types: ['authorization_code'],
      redirect_uris: ['http://127.0.0.1/cb'], scope: 'openid profile', client_name: 'Chromium app',
    },
    {
      // The server's default method (client_secret_basic), not openid-client's.
      client_id: 'oc-basic', grant_types: ['client_credentials'], scope: 'api:read',
    },
    {
      // A service calling an API (client_credentials) and the API itself introspecting.
      client_id: 'oc-service', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'],
      scope: 'api:read', resources: [API],
    },
    {
      client_id: 'oc-api', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'],
      scope: 'api:read', introspect_any_token: true,
    },
    {
      // The passport app: a loopback redirect URI without a port (RFC 8252 §7.3).
      client_id: 'oc-passport', token_endpoint_auth_method: 'client_secret_post', grant_types: ['authorization_code'],
      redirect_uris: ['http://127.0.0.1/auth/callback'], scope: 'openid profile', client_name: 'passport app',
    },
    {
      // The oidc-client-ts SPA: a public client whose redirect URI (with its port) is its origin for CORS.
      client_id: 'oc-spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [`${spaBase}/callback.html`], scope: 'openid profile offline_access', client_name: 'SPA',
    },
  ], { OUTBOUND_ALLOWED_HOSTS: '127.0.0.1', INITIAL_ACCESS_TOKEN });
  issuer = new URL(server.issuer);
});
afterAll(async () => { await server?.close(); });

const configFor = (clientId: string) => client.discovery(issuer, clientId, secretOf(clientId), undefined, { execute });

describe('openid-client 6: discovery and the code flow', () => {
  let config: client.Configuration;
  let browser: Browser;
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  let refreshed: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
  let sub: string;
  let authorizationUrl: URL;

  it('discovery, with its default client authentication (client_secret_post)', async () => {
    config = await configFor('oc-web');
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(server.issuer);
    expect(meta.token_endpoint).toBe(`${server.issuer}/token`);
    expect(meta.jwks_uri).toBe(`${server.issuer}/jwks`);
    expect(meta.token_endpoint_auth_methods_supported).toContain('client_secret_post');
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.supportsPKCE()).toBe(true);
    for (const endpoint of ['end_session_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'userinfo_endpoint'] as const) {
      expect(meta[endpoint], endpoint).toMatch(new RegExp(`^${server.issuer}/`));
    }
  });

  it('discovery\'s default (client_secret_post) for a client registered with client_secret_basic: refused, and the answer says why', async () => {
    const basic = await configFor('oc-basic');
    const err = await client.clientCredentialsGrant(basic).then(() => undefined, (e: unknown) => e);
    // 401 with WWW-Authenticate: Basic (RFC 6749 §5.2), which openid-client surfaces as a challenge error.
    expect(err).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    const challenge = err as client.WWWAuthenticateChallengeError;
    expect(challenge.response.status).toBe(401);
    expect(challenge.cause[0]).toMatchObject({ scheme: 'basic' });
    const body = await challenge.response.json() as { error: string; error_description: string };
    expect(body.error).toBe('invalid_client');
    expect(body.error_description).toContain('send client_id and client_secret in the Authorization header (HTTP Basic), not in the form body');
  });

  it('dynamicClientRegistration (RFC 7591, with its initialAccessToken option) then the client\'s own client_credentials token', async () => {
    const registered = await client.dynamicClientRegistration(issuer, {
      redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'client_credentials'], token_endpoint_auth_method: 'client_secret_post',
      client_name: 'registered by openid-client',
    }, undefined, { execute, initialAccessToken: INITIAL_ACCESS_TOKEN });
    const metadata = registered.clientMetadata();
    expect(metadata.client_id).toEqual(expect.any(String));
    expect(metadata.client_secret).toEqual(expect.any(String));
    expect(metadata.token_endpoint_auth_method).toBe('client_secret_post');
    const tokens = await client.clientCredentialsGrant(registered);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ iss: server.issuer, client_id: metadata.client_id, sub: metadata.client_id });
  });

  it('dynamicClientRegistration without a scope (as OpenID Connect Dynamic Registration clients register): the OIDC scopes, so /authorize for openid profile goes on to sign-in', async () => {
    const registered = await client.dynamicClientRegistration(issuer, {
      redirect_uris: [REDIRECT], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_post',
    }, undefined, { execute, initialAccessToken: INITIAL_ACCESS_TOKEN });
    expect(registered.clientMetadata().scope).toBe('openid profile email address phone');
    const url = client.buildAuthorizationUrl(registered, {
      redirect_uri: REDIRECT, scope: 'openid profile', state: 's',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^\/login\?/);
  });

  it('authorization code + PKCE (S256, state, nonce): buildAuthorizationUrl, sign-in and consent, authorizationCodeGrant, the ID token', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid profile email offline_access', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      // OIDC Core §11: offline_access is granted with prompt=consent.
      prompt: 'consent',
    });
    expect(authorizationUrl.href.startsWith(`${server.issuer}/authorize?`)).toBe(true);
    browser = new Browser(overHttp(server.issuer));
    const callback = await signInAndConsent(server.issuer, authorizationUrl, browser);
    expect(callback.origin + callback.pathname).toBe(REDIRECT);
    expect(callback.searchParams.get('iss')).toBe(server.issuer);

    tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope!.split(' ').sort()).toEqual(['email', 'offline_access', 'openid', 'profile']);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const idClaims = tokens.claims()!;
    expect(idClaims).toMatchObject({ iss: server.issuer, aud: 'oc-web', nonce });
    sub = idClaims.sub;

    // The access token is an RFC 9068 JWT for this user and client.
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: server.issuer, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub, client_id: 'oc-web' });
  });

  it('a wrong PKCE verifier is refused (invalid_grant)', async () => {
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid', state,
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const callback = await signInAndConsent(server.issuer, url, browser);
    await expect(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state }))
      .rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('fetchUserInfo', async () => {
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, sub);
    expect(userinfo).toMatchObject({ sub, preferred_username: 'alice' });
  });

  it('refreshTokenGrant: rotation, and the spent token presented again within the grace period gets its one successor', async () => {
    refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(decodeJwt(refreshed.access_token).sub).toBe(sub);
    // REFRESH_TOKEN_GRACE_PERIOD (30 s by default): concurrent tabs and lost responses.
    const replay = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(replay.refresh_token).toBe(refreshed.refresh_token);
  });

  it('tokenIntrospection of its own access token', async () => {
    expect(await client.tokenIntrospection(config, refreshed.access_token))
      .toMatchObject({ active: true, sub, client_id: 'oc-web', iss: server.issuer, token_type: 'Bearer' });
  });

  it('tokenIntrospection of its own refresh token (token_type_hint=refresh_token, RFC 7662)', async () => {
    expect(await client.tokenIntrospection(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' }))
      .toMatchObject({ active: true, sub, client_id: 'oc-web', token_type: 'refresh_token' });
    // The token it replaced is no longer the live one.
    expect(await client.tokenIntrospection(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' })).toEqual({ active: false });
  });

  it('tokenRevocation: the revoked access token introspects inactive', async () => {
    await client.tokenRevocation(config, refreshed.access_token);
    expect(await client.tokenIntrospection(config, refreshed.access_token)).toEqual({ active: false });
    await client.tokenRevocation(config, refreshed.refresh_token!);
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('buildEndSessionUrl: RP-initiated logout ends the session and returns to the post-logout URI with the state', async () => {
    const logout = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT, state: 'bye' });
    expect(logout.href.startsWith(config.serverMetadata().end_session_endpoint!)).toBe(true);
    // The server asks the signed-in person to confirm (RP-Initiated Logout §2); confirm as they would.
    const page = await browser.request('GET', logout.pathname + logout.search);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('value="sign_out"');
    const unescape = (v: string) => v.replace(/&(amp|quot|#39|lt|gt);/g, (_, e: string) => ({ amp: '&', quot: '"', '#39': "'", lt: '<', gt: '>' })[e]!);
    const fields = Object.fromEntries([...page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [unescape(m[1]!), unescape(m[2]!)]));
    expect(fields).toMatchObject({ id_token_hint: tokens.id_token, post_logout_redirect_uri: SIGNED_OUT, state: 'bye' });
    const res = await browser.request('POST', '/logout', { ...fields, decision: 'sign_out' });
    expect(res.statusCode).toBe(303);
    const back = new URL(res.headers.location!);
    expect(back.origin + back.pathname).toBe(SIGNED_OUT);
    expect(back.searchParams.get('state')).toBe('bye');
    // Signed out: the same authorization request now asks for sign-in again.
    const again = await browser.request('GET', authorizationUrl.pathname + authorizationUrl.search);
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toMatch(/^\/login\?/);
  });

});

describe('openid-client 6: code + PKCE in Chromium', () => {
  let browser: PwBrowser;
  let rp: Server;
  let rpBase: string;
  const callbacks: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    rpBase = `http://127.0.0.1:${port}`;
    // The relying party's redirect endpoint: records what the browser brought back.
    rp = createServer((req, res) => {
      if (req.url!.startsWith('/cb')) callbacks.push(new URL(req.url!, rpBase).href);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>RP</title><p>back at the app</p>');
    });
    await new Promise<void>((resolve) => rp.listen(port, '127.0.0.1', resolve));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => rp?.close(resolve));
  });

  it('buildAuthorizationUrl → Chromium on the real sign-in and consent pages → the RP\'s loopback callback → authorizationCodeGrant', async () => {
    const config = await configFor('oc-chromium');
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${rpBase}/cb`, scope: 'openid profile', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      await page.goto(url.href);
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.getByLabel('Username or email').fill('alice');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL((u) => u.pathname !== '/login');
      expect(await page.title()).toMatch(/^Allow access\?/);
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((u) => u.href.startsWith(`${rpBase}/cb`));
      expect(await page.textContent('p')).toBe('back at the app');
    } finally {
      await context.close();
    }
    expect(callbacks).toHaveLength(1);
    const tokens = await client.authorizationCodeGrant(config, new URL(callbacks[0]!), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()).toMatchObject({ iss: server.issuer, aud: 'oc-chromium', nonce });
    expect(await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ preferred_username: 'alice' });
  });
});

describe('a resource server with jose (createRemoteJWKSet + jwtVerify)', () => {
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  let service: client.Configuration;
  let accessToken: string;

  beforeAll(async () => {
    service = await configFor('oc-service');
    jwks = createRemoteJWKSet(new URL(service.serverMetadata().jwks_uri!));
  });

  it('a client_credentials token from openid-client verifies: iss, aud, typ at+jwt, client_id, scope', async () => {
    const tokens = await client.clientCredentialsGrant(service, { scope: 'api:read' });
    accessToken = tokens.access_token;
    const { payload, protectedHeader } = await jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ iss: server.issuer, aud: API, sub: 'oc-service', client_id: 'oc-service', scope: 'api:read' });
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it('refused: another audience, past exp, a changed signature, an ID token presented as an access token', async () => {
    await expect(jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: 'https://other.example.com', typ: 'at+jwt' }))
      .rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
    const exp = decodeJwt(accessToken).exp!;
    await expect(jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt', currentDate: new Date((exp + 1) * 1000) }))
      .rejects.toBeInstanceOf(joseErrors.JWTExpired);
    const [h, p, s] = accessToken.split('.');
    const flipped = `${s!.startsWith('A') ? 'B' : 'A'}${s!.slice(1)}`;
    await expect(jwtVerify(`${h}.${p}.${flipped}`, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' }))
      .rejects.toBeInstanceOf(joseErrors.JWSSignatureVerificationFailed);
    await expect(jwtVerify(accessToken, jwks, { issuer: 'https://not-latchkey.example.com', audience: API, typ: 'at+jwt' }))
      .rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' });
  });

  it('an ID token is not an access token: typ JWT fails the at+jwt check', async () => {
    // Reuses the code flow's machinery for a fresh ID token.
    const config = await configFor('oc-web');
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const tokens = await client.authorizationCodeGrant(config, await signInAndConsent(server.issuer, url), { pkceCodeVerifier: verifier });
    await expect(jwtVerify(tokens.id_token!, jwks, { issuer: server.issuer, typ: 'at+jwt' }))
      .rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' });
  });

  it('revoked: the JWT still verifies offline (self-contained), introspection by the API says inactive', async () => {
    await client.tokenRevocation(service, accessToken);
    // What a JWKS-only resource server cannot see: the signature and claims are unchanged until exp.
    await expect(jwtVerify(accessToken, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' })).resolves.toBeDefined();
    const api = await configFor('oc-api');
    expect(await client.tokenIntrospection(api, accessToken)).toEqual({ active: false });
    const fresh = await client.clientCredentialsGrant(service, { scope: 'api:read' });
    expect(await client.tokenIntrospection(api, fresh.access_token)).toMatchObject({ active: true, client_id: 'oc-service', aud: API, scope: 'api:read' });
  });
});

describe('oidc-client-ts as a SPA on another loopback origin in Chromium', () => {
  // The app's static server (index.html, callback.html and oidc-client-ts's browser bundle) on
  // spaBase, the origin of its registered redirect URI; the same pages on otherBase, a loopback
  // port the client did not register, for what CORS must refuse.
  const BUNDLE = readFileSync(new URL('../../node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js', import.meta.url));
  let browser: PwBrowser;
  let apps: Server[] = [];
  let otherBase: string;

  const page = (script: string) => '<!doctype html><meta charset="utf-8"><title>SPA</title>'
    + '<script src="/oidc-client-ts.min.js"></script>'
    + `<script>const settings = ${JSON.stringify({ authority: server.issuer, client_id: 'oc-spa', redirect_uri: `${spaBase}/callback.html`, response_type: 'code', scope: 'openid profile offline_access', prompt: 'consent' })};\n${script}</script>`;
  const PAGES: Record<string, string> = {
    '/': '',
    '/index.html': 'new oidc.UserManager(settings).signinRedirect().catch((e) => { window.result = { error: String(e) }; });',
    // The redirect URI: the code for tokens (discovery and /token fetched from this origin), then
    // UserInfo with the access token (a preflighted request: it sends Authorization).
    '/callback.html': `(async () => {
      try {
        const manager = new oidc.UserManager(settings);
        const user = await manager.signinRedirectCallback();
        const res = await fetch(await manager.metadataService.getUserInfoEndpoint(), { headers: { Authorization: 'Bearer ' + user.access_token } });
        const userinfo = { status: res.status, body: await res.json() };
        // The refresh token grant, cross-origin too (signinSilent uses the refresh token when there is one).
        const refreshed = await manager.signinSilent();
        // revokeTokens: RFC 7009 from the app's origin; the revoked refresh token is then refused.
        await manager.revokeTokens(['access_token', 'refresh_token']);
        const again = await fetch(await manager.metadataService.getTokenEndpoint(), { method: 'POST',
          body: new URLSearchParams({ grant_type: 'refresh_token', client_id: settings.client_id, refresh_token: refreshed.refresh_token }) });
        const afterRevocation = { status: again.status, body: await again.json() };
        window.result = { profile: user.profile, access_token: user.access_token, id_token: user.id_token, token_type: user.token_type,
          scope: user.scope, url: location.href, userinfo, refresh_token: user.refresh_token,
          refreshed: { access_token: refreshed.access_token, refresh_token: refreshed.refresh_token, sub: refreshed.profile.sub }, afterRevocation };
      } catch (e) { window.result = { error: String(e) }; }
    })();`,
  };

  beforeAll(async () => {
    const otherPort = await freePort();
    otherBase = `http://127.0.0.1:${otherPort}`;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url!, 'http://x').pathname;
      if (path === '/oidc-client-ts.min.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(BUNDLE);
      const script = PAGES[path];
      if (script === undefined) return res.writeHead(404).end();
      return res.writeHead(200, { 'content-type': 'text/html' }).end(page(script));
    };
    for (const port of [spaPort, otherPort]) {
      const app = createServer(handler);
      await new Promise<void>((resolve) => app.listen(port, '127.0.0.1', resolve));
      apps.push(app);
    }
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all(apps.map((app) => new Promise((resolve) => app.close(resolve))));
    apps = [];
  });

  it('signinRedirect → the real sign-in and consent pages → signinRedirectCallback (discovery and /token cross-origin) → UserInfo, '
    + 'signinSilent (refresh) and revokeTokens cross-origin', async () => {
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      tab.setDefaultTimeout(10_000);
      await tab.goto(`${spaBase}/index.html`);
      await tab.waitForURL((u) => u.origin === server.issuer && u.pathname === '/login');
      await tab.getByLabel('Username or email').fill('alice');
      await tab.getByLabel('Password').fill(PASSWORD);
      await tab.getByRole('button', { name: 'Sign in', exact: true }).click();
      await tab.waitForURL((u) => u.pathname !== '/login');
      expect(await tab.title()).toMatch(/^Allow access\?/);
      await tab.getByRole('button', { name: 'Allow' }).click();
      await tab.waitForURL((u) => u.href.startsWith(`${spaBase}/callback.html`));
      const result = await (await tab.waitForFunction(() => (globalThis as { result?: unknown }).result)).jsonValue() as {
        error?: string; profile: Record<string, unknown>; access_token: string; id_token: string; token_type: string; scope: string; url: string;
        userinfo: { status: number; body: Record<string, unknown> }; refresh_token: string;
        refreshed: { access_token: string; refresh_token: string; sub: string }; afterRevocation: { status: number; body: Record<string, unknown> };
      };
      expect(result.error).toBeUndefined();
      // oidc-client-ts sent PKCE and got the code back with the issuer (RFC 9207).
      const callback = new URL(result.url);
      expect(callback.searchParams.get('iss')).toBe(server.issuer);
      expect(callback.searchParams.get('code')).toEqual(expect.any(String));

      const idClaims = decodeJwt(result.id_token);
      expect(idClaims).toMatchObject({ iss: server.issuer, aud: 'oc-spa' });
      expect(idClaims.sub).toEqual(expect.any(String));
      expect(result.profile).toMatchObject({ sub: idClaims.sub, iss: server.issuer, aud: 'oc-spa' });
      expect(result.token_type.toLowerCase()).toBe('bearer');
      expect(result.scope.split(' ').sort()).toEqual(['offline_access', 'openid', 'profile']);
      // The access token is an RFC 9068 JWT for alice and the SPA's client.
      expect(decodeProtectedHeader(result.access_token).typ).toBe('at+jwt');
      const { payload } = await jwtVerify(result.access_token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), { issuer: server.issuer, typ: 'at+jwt' });
      expect(payload).toMatchObject({ sub: idClaims.sub, client_id: 'oc-spa' });
      // UserInfo answered the SPA's origin.
      expect(result.userinfo).toEqual({ status: 200, body: expect.objectContaining({ sub: idClaims.sub, preferred_username: 'alice' }) });
      // signinSilent's refresh: a rotated refresh token and a new access token for the same user.
      expect(result.refresh_token).toEqual(expect.any(String));
      expect(result.refreshed.refresh_token).toEqual(expect.any(String));
      expect(result.refreshed.refresh_token).not.toBe(result.refresh_token);
      expect(result.refreshed.access_token).not.toBe(result.access_token);
      expect(result.refreshed.sub).toBe(idClaims.sub);
      expect(decodeJwt(result.refreshed.access_token)).toMatchObject({ sub: idClaims.sub, client_id: 'oc-spa' });
      expect(result.afterRevocation).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_grant' }) });
    } finally {
      await context.close();
    }
  });

  it('/token read from the registered origin (an invalid_grant the app can see); from an unregistered origin the browser blocks it', async () => {
    const form = { grant_type: 'authorization_code', client_id: 'oc-spa', code: 'not-a-code', redirect_uri: `${spaBase}/callback.html`, code_verifier: 'v'.repeat(43) };
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      const messages: string[] = [];
      tab.on('console', (message) => messages.push(message.text()));
      // A public client's token request: a CORS-safelisted form POST (no preflight), the answer read by the script.
      const post = ({ issuer, form }: { issuer: string; form: Record<string, string> }) =>
        fetch(`${issuer}/token`, { method: 'POST', body: new URLSearchParams(form) })
          .then(async (res) => ({ status: res.status, body: await res.json() as unknown }), (e: unknown) => ({ failed: String(e) }));
      await tab.goto(`${spaBase}/`);
      expect(await tab.evaluate(post, { issuer: server.issuer, form })).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_grant' }) });
      await tab.goto(`${otherBase}/`);
      expect(await tab.evaluate(post, { issuer: server.issuer, form })).toEqual({ failed: 'TypeError: Failed to fetch' });
      expect(messages.join('\n')).toContain(`from origin '${otherBase}' has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header`);
    } finally {
      await context.close();
    }
    // What the browser saw: the answer to the unregistered origin names no origin.
    const res = await fetch(`${server.issuer}/token`, {
      method: 'POST', headers: { origin: otherBase }, body: new URLSearchParams(form),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('passport 0.7 with openid-client/passport\'s Strategy', () => {
  let app: Server;
  let appBase: string;
  const signedIn: Array<{ sub: string; username: unknown }> = [];
  const sessions = new Map<string, Record<string, unknown>>();

  beforeAll(async () => {
    const config = await configFor('oc-passport');
    const port = await freePort();
    appBase = `http://127.0.0.1:${port}`;
    // The documented shape: the ID token's subject, the profile from UserInfo.
    const verify: VerifyFunction = async (tokens, done) => {
      const { sub } = tokens.claims()!;
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, sub);
      done(null, { sub, username: userinfo.preferred_username });
    };
    passport.use('latchkey', new Strategy({ config, scope: 'openid profile', callbackURL: `${appBase}/auth/callback` }, verify));
    // A minimal stand-in for express + express-session: req.session from a cookie, and the
    // request fields the strategy reads (protocol, host, originalUrl).
    app = createServer((req: IncomingMessage, res: ServerResponse) => {
      const sid = /(?:^|; )sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? crypto.randomUUID();
      if (!sessions.has(sid)) sessions.set(sid, {});
      res.setHeader('set-cookie', `sid=${sid}; Path=/; HttpOnly`);
      Object.assign(req, { session: sessions.get(sid), protocol: 'http', host: req.headers.host, originalUrl: req.url });
      const handler = passport.authenticate('latchkey', { session: false }, (err: unknown, user: { sub: string; username: unknown } | false, info: unknown) => {
        if (err || !user) return res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ err: String(err), info }));
        signedIn.push(user);
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(user));
      }) as (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
      if (req.url === '/auth/login' || req.url!.startsWith('/auth/callback')) {
        handler(req, res, (err) => res.writeHead(500).end(String(err)));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => app.listen(port, '127.0.0.1', resolve));
  });
  afterAll(async () => { await new Promise((resolve) => app?.close(resolve)); });

  it('sign-in through the strategy: redirect with PKCE, callback, tokens exchanged, verify called with alice', async () => {
    const start = await fetch(`${appBase}/auth/login`, { redirect: 'manual' });
    expect(start.status).toBe(302);
    const cookie = start.headers.get('set-cookie')!.split(';')[0]!;
    const authorizationUrl = new URL(start.headers.get('location')!);
    expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizationUrl.searchParams.get('redirect_uri')).toBe(`${appBase}/auth/callback`);
    const callback = await signInAndConsent(server.issuer, authorizationUrl);
    expect(callback.origin + callback.pathname).toBe(`${appBase}/auth/callback`);
    const done = await fetch(callback, { headers: { cookie }, redirect: 'manual' });
    expect(done.status).toBe(200);
    const user = await done.json() as { sub: string; username: string };
    expect(user.username).toBe('alice');
    expect(signedIn).toEqual([user]);
    // The state in the session is spent: the same callback again fails.
    const again = await fetch(callback, { headers: { cookie }, redirect: 'manual' });
    expect(again.status).toBe(401);
  });
});
