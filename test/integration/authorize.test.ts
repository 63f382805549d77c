import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf, consentForm } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, eventually, form, FORM_HEADERS, registryOf } from '../support/clients.js';
import { authorizeQuery, createUser, FAST_ARGON2, PASSWORD, pkce, redirectParams } from '../support/oidc.js';

const ISSUER = 'http://localhost:8080';
const REDIRECT = 'https://app.example.com/callback';

describe('authorization code flow with PKCE', () => {
  let app: TestApp;
  const clock = new ManualClock();
  let web: { id: string; secret: string };
  let other: { id: string; secret: string };
  let aliceId: string;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    const created = await createClient(app.context, {
      client_name: 'Invoices', redirect_uris: [REDIRECT, 'http://127.0.0.1/native'],
      grant_types: ['authorization_code'], scope: 'openid profile email api:read', default_scope: 'openid',
    });
    web = { id: created.client.clientId, secret: created.clientSecret! };
    // Also the resource server introspecting web's tokens (RFC 7662 §4: marked by the operator).
    const o = await createClient(app.context, { redirect_uris: ['https://other.example.com/cb'], grant_types: ['authorization_code', 'client_credentials'], scope: 'openid', introspect_any_token: true });
    other = { id: o.client.clientId, secret: o.clientSecret! };
    aliceId = (await createUser(app.context, 'alice')).id;
  });
  afterAll(async () => { await app.close(); });

  const request = (extra: Record<string, string | undefined> = {}, p = pkce()) => ({
    pair: p,
    url: `/authorize?${authorizeQuery({
      response_type: 'code', client_id: web.id, redirect_uri: REDIRECT, scope: 'openid profile email',
      state: 'st-1', nonce: 'n-1', code_challenge: p.challenge, code_challenge_method: 'S256', ...extra,
    })}`,
  });

  /** Signs in through the login redirect and consents when asked; returns the final redirect's parameters. */
  async function authorize(b: Browser, extra: Record<string, string | undefined> = {}, p = pkce()) {
    let res = await b.request('GET', request(extra, p).url);
    if (res.statusCode === 303 && res.headers.location!.startsWith('/login?')) {
      const loginUrl = new URL(res.headers.location!, ISSUER);
      const page = await b.request('GET', loginUrl.pathname + loginUrl.search);
      res = await b.request('POST', '/login', { csrf: csrfOf(page.body), login: 'alice', password: PASSWORD, return_to: loginUrl.searchParams.get('return_to')! });
      expect(res.statusCode).toBe(303);
      res = await b.request('GET', res.headers.location!);
    }
    if (res.statusCode === 200 && res.body.includes('Allow access?')) {
      const action = /action="(\/interaction\/[^"]+)"/.exec(res.body)![1]!;
      res = await b.request('POST', action, consentForm(res.body, 'allow'));
    }
    return { res, params: res.headers.location ? redirectParams(res.headers.location) : {}, pair: p };
  }

  const redeem = (code: string, verifier: string, client = web, redirectUri = REDIRECT) => app.server.inject({
    method: 'POST', url: '/token',
    headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) },
    payload: form({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
  });

  const introspect = async (token: string) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(other.id, other.secret) }, payload: form({ token }),
  })).json() as { active: boolean };

  it('signs in, asks consent, returns a code with state and iss, and the code buys an access token and an ID token', async () => {
    const b = new Browser(app);
    const first = await b.request('GET', request().url);
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toMatch(/^\/login\?return_to=%2Finteraction%2F[A-Za-z0-9_-]{43}$/);

    const { res, params, pair } = await authorize(b);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location!.startsWith(`${REDIRECT}?`)).toBe(true);
    expect(Object.keys(params).sort()).toEqual(['code', 'iss', 'state']);
    expect(params.state).toBe('st-1');
    expect(params.iss).toBe(ISSUER);

    const token = await redeem(params.code!, pair.verifier);
    expect(token.statusCode).toBe(200);
    expect(token.headers['cache-control']).toBe('no-store');
    const body = token.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'scope', 'token_type']);
    expect(body.scope).toBe('openid profile email');
    const at = decodeJwt(body.access_token as string);
    expect(decodeProtectedHeader(body.access_token as string).typ).toBe('at+jwt');
    expect(at.sub).toBe(aliceId);
    expect(at.client_id).toBe(web.id);
    expect(at.gid).toMatch(/^[0-9a-f-]{36}$/);
    const id = decodeJwt(body.id_token as string);
    expect(decodeProtectedHeader(body.id_token as string).typ).toBe('JWT');
    expect(id).toMatchObject({ iss: ISSUER, sub: aliceId, aud: web.id, azp: web.id, nonce: 'n-1', amr: ['pwd'], auth_time: Math.floor(clock.now().getTime() / 1000) });
    // OpenID Connect Core §3.1.3.6: left half of SHA-256 of the access token.
    expect(id.at_hash).toBe(createHash('sha256').update(body.access_token as string).digest().subarray(0, 16).toString('base64url'));
    expect(id.exp! - id.iat!).toBe(3600);
    expect(id.sid).toMatch(/^[0-9a-f-]{36}$/);

    const info = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${body.access_token as string}` } });
    expect(info.statusCode).toBe(200);
    expect(info.json()).toEqual({ sub: aliceId, name: 'Alice Example', locale: 'en', updated_at: Math.floor(clock.now().getTime() / 1000), email: 'alice@example.com', email_verified: true });
  });

  it('remembers consent: the next request of the same scopes goes straight back with a code', async () => {
    const b = new Browser(app);
    await authorize(b);
    const again = await b.request('GET', request().url);
    expect(again.statusCode).toBe(303);
    expect(redirectParams(again.headers.location).code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // A scope not granted before asks again.
    const more = await b.request('GET', request({ scope: 'openid api:read' }).url);
    expect(more.statusCode).toBe(200);
    expect(more.body).toContain('Allow Invoices to access your account?');
    expect(more.body).toContain('<li>api:read</li>');
    expect(more.body).toContain('Allowing sends you on to <strong>app.example.com</strong>.');
    expect(more.body).not.toContain('registered itself');
  });

  it('answers a denied consent with access_denied and issues nothing', async () => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', request({ scope: 'openid api:read', prompt: 'consent' }).url);
    const action = /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]!;
    const res = await b.request('POST', action, consentForm(page.body, 'deny'));
    expect(res.statusCode).toBe(303);
    expect(redirectParams(res.headers.location)).toEqual({ error: 'access_denied', error_description: 'the user denied the request', state: 'st-1', iss: ISSUER });
    // The interaction is over: posting again shows an error page, never a second redirect.
    const replay = await b.request('POST', action, consentForm(page.body, 'allow'));
    expect(replay.statusCode).toBe(400);
    expect(replay.headers.location).toBeUndefined();
  });

  it('a consent decision counts only from the account the page was shown to', async () => {
    await createUser(app.context, 'bob');
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', request({ scope: 'openid api:read', prompt: 'consent' }).url);
    const action = /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]!;
    await b.signIn('bob', PASSWORD); // the browser changed hands
    // Signing in renewed the CSRF token: alice's page is refused outright.
    expect((await b.request('POST', action, consentForm(page.body, 'allow'))).statusCode).toBe(403);
    // And with a token of bob's session, the decision still counts only from alice.
    const res = await b.request('POST', action, { ...consentForm(page.body, 'allow'), csrf: b.cookies.get('latchkey_csrf')! });
    expect(res.statusCode).toBe(200); // bob is asked himself; nothing was granted or issued
    expect(res.headers.location).toBeUndefined();
    expect(res.body).toContain('Signed in as <strong>bob</strong>');
  });

  it('max_age holds until the code is issued: time spent on the consent page counts', async () => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', request({ scope: 'openid api:read', prompt: 'consent', max_age: '60' }).url);
    expect(page.statusCode).toBe(200);
    clock.advance(120);
    const action = /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]!;
    const res = await b.request('POST', action, consentForm(page.body, 'allow'));
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toMatch(/^\/login\?return_to=/);
  });

  it('refuses a consent form without its CSRF token', async () => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', request({ prompt: 'consent' }).url);
    const action = /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]!;
    const res = await b.request('POST', action, { csrf: 'x'.repeat(43), decision: 'allow' });
    expect(res.statusCode).toBe(403);
    expect(res.headers.location).toBeUndefined();
  });

  it('prompt=none: login_required without a session, consent_required without consent, a code with both', async () => {
    const b = new Browser(app);
    const none = await b.request('GET', request({ prompt: 'none' }).url);
    expect(redirectParams(none.headers.location)).toMatchObject({ error: 'login_required', state: 'st-1', iss: ISSUER });
    await b.signIn('alice', PASSWORD);
    const noConsent = await b.request('GET', request({ prompt: 'none', scope: 'openid api:read' }).url);
    expect(redirectParams(noConsent.headers.location)).toMatchObject({ error: 'consent_required' });
    await authorize(b); // grants openid profile email
    const ok = await b.request('GET', request({ prompt: 'none' }).url);
    expect(Object.keys(redirectParams(ok.headers.location)).sort()).toEqual(['code', 'iss', 'state']);
  });

  it('prompt=none with id_token_hint: a code for the hinted user, login_required for anyone else', async () => {
    await createUser(app.context, 'hinted-other');
    const b = new Browser(app);
    const { params, pair } = await authorize(b);
    const { id_token: hint } = (await redeem(params.code!, pair.verifier)).json() as { id_token: string };
    const same = await b.request('GET', request({ prompt: 'none', id_token_hint: hint }).url);
    expect(Object.keys(redirectParams(same.headers.location)).sort()).toEqual(['code', 'iss', 'state']);
    await b.signIn('hinted-other', PASSWORD);
    const other = await b.request('GET', request({ prompt: 'none', id_token_hint: hint }).url);
    expect(redirectParams(other.headers.location)).toMatchObject({ error: 'login_required' });
    const garbage = await b.request('GET', request({ prompt: 'none', id_token_hint: 'eyJhbGciOiJub25lIn0.e30.' }).url);
    expect(redirectParams(garbage.headers.location)).toMatchObject({ error: 'invalid_request', error_description: 'id_token_hint is not an ID token this server issued' });
  });

  it('prompt=login and an exceeded max_age ask for the password again, and auth_time says when it was given', async () => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    await authorize(b);
    clock.advance(120);
    const fresh = await b.request('GET', request({ max_age: '600' }).url);
    expect(fresh.statusCode).toBe(303);
    expect(fresh.headers.location!.startsWith(REDIRECT)).toBe(true);
    const stale = await b.request('GET', request({ max_age: '60' }).url);
    expect(stale.headers.location).toMatch(/^\/login\?/);
    const login = await b.request('GET', request({ prompt: 'login' }).url);
    expect(login.headers.location).toMatch(/^\/login\?/);
    // Signing in again satisfies it, even max_age=0.
    const { params, pair } = await authorize(b, { max_age: '0' });
    const body = (await redeem(params.code!, pair.verifier)).json() as { id_token: string };
    expect(decodeJwt(body.id_token).auth_time).toBe(Math.floor(clock.now().getTime() / 1000));
  });

  it('passes login_hint to the sign-in form', async () => {
    const b = new Browser(app);
    const res = await b.request('GET', request({ login_hint: 'alice@example.com' }).url);
    const login = await b.request('GET', res.headers.location!);
    expect(login.body).toContain('value="alice@example.com"');
  });

  it('form_post: an auto-submitting form to the redirect URI, allowed by its own CSP', async () => {
    const b = new Browser(app);
    await authorize(b);
    const res = await b.request('GET', request({ response_mode: 'form_post' }).url);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(`<form method="post" action="${REDIRECT}">`);
    expect(res.body).toContain('<input type="hidden" name="state" value="st-1">');
    expect(res.body).toContain(`<input type="hidden" name="iss" value="${ISSUER}">`);
    expect(res.body).toMatch(/<input type="hidden" name="code" value="[A-Za-z0-9_-]{43}">/);
    expect(res.headers['content-security-policy']).toContain('form-action https://app.example.com;');
    expect(res.headers['content-security-policy']).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+=*'/);
  });

  it('accepts any port on a registered http loopback redirect URI (RFC 8252 §7.3), and nothing else', async () => {
    const b = new Browser(app);
    await authorize(b);
    const ok = await b.request('GET', request({ redirect_uri: 'http://127.0.0.1:51234/native' }).url);
    expect(ok.headers.location!.startsWith('http://127.0.0.1:51234/native?code=')).toBe(true);
    for (const uri of ['http://127.0.0.1:51234/native/x', 'http://localhost:51234/native', 'https://app.example.com/callback/', 'https://app.example.com/callback?x=1']) {
      const res = await b.request('GET', request({ redirect_uri: uri }).url);
      expect(res.statusCode, uri).toBe(400);
      expect(res.headers.location, uri).toBeUndefined();
    }
  });

  describe('errors before the redirect URI is proven: an error page, never a redirect', () => {
    const cases: Array<[string, (p: string) => string]> = [
      ['no client_id', () => `/authorize?${authorizeQuery({ response_type: 'code', redirect_uri: REDIRECT })}`],
      ['an unknown client_id', () => `/authorize?${authorizeQuery({ response_type: 'code', client_id: 'nobody', redirect_uri: REDIRECT })}`],
      ['a repeated client_id', () => `/authorize?client_id=${web.id}&client_id=${web.id}&redirect_uri=${encodeURIComponent(REDIRECT)}`],
      ['no redirect_uri', () => `/authorize?${authorizeQuery({ response_type: 'code', client_id: web.id })}`],
      ['an unregistered redirect_uri', () => `/authorize?${authorizeQuery({ response_type: 'code', client_id: web.id, redirect_uri: 'https://evil.example/cb' })}`],
      ['a repeated redirect_uri', () => `/authorize?client_id=${web.id}&redirect_uri=${encodeURIComponent(REDIRECT)}&redirect_uri=${encodeURIComponent(REDIRECT)}`],
      ['a request_uri that was never pushed', () => `/authorize?client_id=${web.id}&request_uri=urn:ietf:params:oauth:request_uri:nothing`],
    ];
    for (const [name, url] of cases) {
      it(name, async () => {
        const res = await app.server.inject({ method: 'GET', url: url('') });
        expect(res.statusCode).toBe(400);
        expect(res.headers.location).toBeUndefined();
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      });
    }
  });

  describe('errors after it: back to the client (RFC 6749 §4.1.2.1) with state and iss', () => {
    const cases: Array<[string, Record<string, string | undefined>, string]> = [
      ['no response_type', { response_type: undefined }, 'invalid_request'],
      ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
      ['no code_challenge', { code_challenge: undefined }, 'invalid_request'],
      ['code_challenge_method=plain', { code_challenge_method: 'plain' }, 'invalid_request'],
      ['no code_challenge_method', { code_challenge_method: undefined }, 'invalid_request'],
      ['a malformed code_challenge', { code_challenge: 'short' }, 'invalid_request'],
      ['a scope the client may not have', { scope: 'openid admin' }, 'invalid_scope'],
      ['an unknown prompt value', { prompt: 'bogus' }, 'invalid_request'],
      ['prompt=none with another value', { prompt: 'none login' }, 'invalid_request'],
      ['a negative max_age', { max_age: '-1' }, 'invalid_request'],
      ['a request object', { request: 'eyJ.eyJ.sig' }, 'request_not_supported'],
      ['an unknown response_mode', { response_mode: 'fragment' }, 'invalid_request'],
      ['a resource the client may not use', { resource: 'https://elsewhere.example.com' }, 'invalid_target'],
      ['a NUL in the nonce (it could never be stored)', { nonce: 'n\u0000' }, 'invalid_request'],
    ];
    for (const [name, extra, error] of cases) {
      it(`${name} → ${error}`, async () => {
        const res = await app.server.inject({ method: 'GET', url: request(extra).url });
        expect(res.statusCode).toBe(303);
        const params = redirectParams(res.headers.location);
        expect(res.headers.location!.startsWith(`${REDIRECT}?`)).toBe(true);
        expect(params).toMatchObject({ error, state: 'st-1', iss: ISSUER });
        expect(params.code).toBeUndefined();
      });
    }

    it('a repeated parameter → invalid_request', async () => {
      const res = await app.server.inject({ method: 'GET', url: `${request().url}&scope=openid` });
      expect(redirectParams(res.headers.location)).toMatchObject({ error: 'invalid_request', state: 'st-1' });
    });

    it('a client not registered for the code flow → unauthorized_client', async () => {
      const cc = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['client_credentials'], response_types: [] });
      const res = await app.server.inject({ method: 'GET', url: request({ client_id: cc.client.clientId }).url });
      expect(redirectParams(res.headers.location)).toMatchObject({ error: 'unauthorized_client' });
    });
  });

  describe('a self-registered client: no automatic redirect before the user approved it (RFC 9700 §4.11.2)', () => {
    const PHISH = 'https://phish.example.net/cb';
    /** A client as Dynamic Client Registration creates it (source: registration). */
    const selfRegistered = async (extra: Record<string, unknown> = {}) => (await registryOf(app.context).create({
      client_name: 'Totally Legit', redirect_uris: [PHISH], token_endpoint_auth_method: 'none', scope: 'openid profile', ...extra,
    }, { source: 'registration' })).client.clientId;
    const url = (clientId: string, extra: Record<string, string> = {}) => request({ client_id: clientId, redirect_uri: PHISH, scope: 'openid', ...extra }).url;
    /** A new self-registered client, alice signed in, and its consent page. */
    const atConsent = async () => {
      const id = await selfRegistered();
      const b = new Browser(app);
      await b.signIn('alice', PASSWORD);
      const page = await b.request('GET', url(id));
      return { id, b, page, action: /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]! };
    };

    /** A request of a new self-registered client from a browser with no session: an error page here, no redirect. */
    const shownHere = async (extra: Record<string, string>) => {
      const res = await app.server.inject({ method: 'GET', url: url(await selfRegistered(), extra) });
      expect(res.statusCode).toBe(400);
      expect(res.headers.location).toBeUndefined();
      return res;
    };

    it('an error before anyone signed in is shown here, with the client and a link, not redirected', async () => {
      const res = await shownHere({ scope: 'openid admin' });
      expect(res.body).toContain('<h1>Request not completed</h1>');
      expect(res.body).toMatch(/<p class="error" role="alert">[^<]*\(invalid_scope\)<\/p>/);
      expect(res.body).toContain('<strong>Totally Legit</strong> registered itself with localhost:8080: its name and links are its own claims, not verified by localhost:8080.');
      expect(res.body).toContain('You were not sent back to phish.example.net automatically.');
      const href = /<a href="([^"]+)" rel="noreferrer">return to phish\.example\.net<\/a>/.exec(res.body)![1]!.replaceAll('&amp;', '&');
      expect(redirectParams(href)).toMatchObject({ error: 'invalid_scope', state: 'st-1', iss: ISSUER });
      expect(href.startsWith(`${PHISH}?`)).toBe(true);
    });

    it('form_post: a form the person may submit, never by script', async () => {
      const res = await shownHere({ response_mode: 'form_post', code_challenge_method: 'plain' });
      expect(res.body).toContain(`<form method="post" action="${PHISH}">`);
      expect(res.body).toContain('<input type="hidden" name="error" value="invalid_request">');
      expect(res.body).toContain('<button type="submit" class="secondary">Return to phish.example.net</button>');
      expect(res.body).not.toContain('<script');
      expect(res.headers['content-security-policy']).toContain('form-action https://phish.example.net;');
    });

    it('prompt=none without a session: login_required on this page (in an iframe it simply does not load)', async () => {
      expect((await shownHere({ prompt: 'none' })).body).toContain('(login_required)');
    });

    it('signed in but never approved: still shown here, and so is a Deny', async () => {
      const { id, b, page, action } = await atConsent();
      const silent = await b.request('GET', url(id, { prompt: 'none' }));
      expect(silent.statusCode).toBe(400);
      expect(silent.body).toContain('(consent_required)');
      expect(page.body).toContain('Allow access?');
      // Consent phishing: the page says who vouches for the client (nobody) and where Allow leads.
      expect(page.body).toContain('<strong>Totally Legit</strong> registered itself with localhost:8080: its name and links are its own claims, not verified by localhost:8080.');
      expect(page.body).toContain('Allowing sends you on to <strong>phish.example.net</strong>.');
      const denied = await b.request('POST', action, consentForm(page.body, 'deny'));
      expect(denied.statusCode).toBe(400);
      expect(denied.headers.location).toBeUndefined();
      expect(denied.body).toContain('the user denied the request (access_denied)');
    });

    it('shows its links only on the host this request returns to: a decoy redirect URI on another host vouches for nothing', async () => {
      const BANK = 'https://bank.example/cb';
      const id = await selfRegistered({ redirect_uris: [PHISH, BANK], policy_uri: 'https://bank.example/privacy', tos_uri: 'https://phish.example.net/terms' });
      const b = new Browser(app);
      await b.signIn('alice', PASSWORD);
      const viaPhish = await b.request('GET', url(id));
      expect(viaPhish.body).toContain('Allow access?');
      expect(viaPhish.body).not.toContain('https://bank.example/privacy');
      expect(viaPhish.body).toContain('https://phish.example.net/terms');
      const viaBank = await b.request('GET', request({ client_id: id, redirect_uri: BANK, scope: 'openid' }).url);
      expect(viaBank.body).toContain('https://bank.example/privacy');
      expect(viaBank.body).not.toContain('https://phish.example.net/terms');
    });

    it('once the user approved it, its errors go back to it like any client\'s', async () => {
      const { id, b, page, action } = await atConsent();
      const allowed = await b.request('POST', action, consentForm(page.body, 'allow'));
      expect(redirectParams(allowed.headers.location).code).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const bad = await b.request('GET', url(id, { scope: 'openid admin' }));
      expect(bad.statusCode).toBe(303);
      expect(redirectParams(bad.headers.location)).toMatchObject({ error: 'invalid_scope', state: 'st-1' });
      const more = await b.request('GET', url(id, { prompt: 'none', scope: 'openid profile' }));
      expect(redirectParams(more.headers.location)).toMatchObject({ error: 'consent_required' });
      // Another browser, nobody signed in: nobody approved anything there.
      expect((await app.server.inject({ method: 'GET', url: url(id, { scope: 'openid admin' }) })).statusCode).toBe(400);
    });

    it('an administrator vouches for one by making it first-party (skip_consent)', async () => {
      const id = await selfRegistered();
      const bad = () => app.server.inject({ method: 'GET', url: url(id, { scope: 'openid admin' }) });
      expect((await bad()).statusCode).toBe(400);
      await registryOf(app.context).update(id, { skip_consent: true }, { source: 'cli', merge: true });
      // On PostgreSQL the client cache hears of the change by NOTIFY, a moment later.
      await eventually(async () => (await bad()).statusCode === 303);
      const res = await bad();
      expect(redirectParams(res.headers.location)).toMatchObject({ error: 'invalid_scope' });
    });
  });

  it('POST /authorize with another content type is an error page', async () => {
    const res = await app.server.inject({ method: 'POST', url: '/authorize', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ client_id: web.id }) });
    expect(res.statusCode).toBe(400);
    expect(res.headers.location).toBeUndefined();
  });

  it('a pending request expires after INTERACTION_TTL, and an unknown one is an error page', async () => {
    const b = new Browser(app);
    const res = await b.request('GET', request().url);
    const interaction = new URL(res.headers.location!, ISSUER).searchParams.get('return_to')!;
    expect((await b.request('GET', interaction)).statusCode).toBe(303); // still pending: back to sign-in
    clock.advance(1801);
    const expired = await b.request('GET', interaction);
    expect(expired.statusCode).toBe(400);
    expect(expired.body).toContain('this sign-in request has expired or was already completed');
    expect((await b.request('GET', '/interaction/nope')).statusCode).toBe(400);
  });

  it('two tabs finishing one request: the first gets the code, the second an error page', async () => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', request({ prompt: 'consent' }).url);
    const action = /action="(\/interaction\/[^"]+)"/.exec(page.body)![1]!;
    const [one, two] = await Promise.all([
      b.request('POST', action, consentForm(page.body, 'allow')),
      b.request('POST', action, consentForm(page.body, 'allow')),
    ]);
    expect([one.statusCode, two.statusCode].sort()).toEqual([303, 400]);
  });

  it('POST /authorize takes the same parameters as a form', async () => {
    const b = new Browser(app);
    await authorize(b);
    const p = pkce();
    const res = await b.request('POST', '/authorize', {
      response_type: 'code', client_id: web.id, redirect_uri: REDIRECT, scope: 'openid', state: 's', code_challenge: p.challenge, code_challenge_method: 'S256',
    });
    expect(res.statusCode).toBe(303);
    expect(Object.keys(redirectParams(res.headers.location)).sort()).toEqual(['code', 'iss', 'state']);
  });

  describe('redeeming the code', () => {
    async function freshCode() {
      const b = new Browser(app);
      const { params, pair } = await authorize(b);
      return { code: params.code!, verifier: pair.verifier };
    }

    it('a wrong code_verifier is invalid_grant and leaves the code for its rightful redeemer', async () => {
      const { code, verifier } = await freshCode();
      const wrong = await redeem(code, pkce().verifier);
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json()).toEqual({ error: 'invalid_grant', error_description: 'code_verifier does not match the code_challenge (RFC 7636 §4.6)' });
      const metrics = await app.context.metrics.registry.getSingleMetricAsString('latchkey_pkce_failures_total');
      expect(metrics).toMatch(/latchkey_pkce_failures_total [1-9]/);
      expect((await redeem(code, verifier)).statusCode).toBe(200);
    });

    it('a missing code_verifier is invalid_request', async () => {
      const { code } = await freshCode();
      const res = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret) },
        payload: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }),
      });
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    });

    it('another redirect_uri, or another client, is invalid_grant', async () => {
      const { code, verifier } = await freshCode();
      expect((await redeem(code, verifier, web, 'http://127.0.0.1/native')).json()).toMatchObject({ error: 'invalid_grant', error_description: "redirect_uri differs from the authorization request's" });
      expect((await redeem(code, verifier, other)).json()).toMatchObject({ error: 'invalid_grant', error_description: 'the authorization code was issued to another client' });
    });

    it('a replayed code is invalid_grant and revokes the access token it gave (RFC 6749 §4.1.2)', async () => {
      const { code, verifier } = await freshCode();
      const first = (await redeem(code, verifier)).json() as { access_token: string };
      expect(await introspect(first.access_token)).toMatchObject({ active: true, sub: aliceId });
      const replay = await redeem(code, verifier);
      expect(replay.statusCode).toBe(400);
      expect(replay.json()).toMatchObject({ error: 'invalid_grant' });
      expect(await introspect(first.access_token)).toEqual({ active: false });
      const info = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${first.access_token}` } });
      expect(info.statusCode).toBe(401);
      const row = await app.context.store.db.selectFrom('revoked_grants').select(['reason', 'client_id']).where('grant_id', '=', decodeJwt(first.access_token).gid as string).executeTakeFirst();
      expect(row).toEqual({ reason: 'authorization_code_replayed', client_id: web.id });
    });

    it('an expired code is invalid_grant', async () => {
      const { code, verifier } = await freshCode();
      clock.advance(61);
      expect((await redeem(code, verifier)).json()).toMatchObject({ error: 'invalid_grant', error_description: 'the authorization code is invalid or expired' });
    });

    it('each other malformed redemption is answered, and none redeems the code', async () => {
      const { code, verifier } = await freshCode();
      const post = (params: Record<string, string>) => app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret) },
        payload: form({ grant_type: 'authorization_code', ...params }),
      });
      const cases: Array<[Record<string, string>, string, string]> = [
        [{ redirect_uri: REDIRECT, code_verifier: verifier }, 'invalid_request', 'code is required'],
        [{ code, code_verifier: verifier }, 'invalid_request', 'redirect_uri is required'],
        [{ code, redirect_uri: REDIRECT, code_verifier: 'short' }, 'invalid_grant', 'code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)'],
        [{ code: 'x'.repeat(300), redirect_uri: REDIRECT, code_verifier: verifier }, 'invalid_grant', 'the authorization code is invalid or expired'],
        [{ code: 'not-a-code', redirect_uri: REDIRECT, code_verifier: verifier }, 'invalid_grant', 'the authorization code is invalid or expired'],
        [{ code, redirect_uri: REDIRECT, code_verifier: verifier, resource: 'https://elsewhere.example' }, 'invalid_target', 'resource was not part of the authorization request'],
      ];
      for (const [params, error, description] of cases) {
        const res = await post(params);
        expect(res.statusCode, description).toBe(400);
        expect(res.json()).toEqual({ error, error_description: description });
      }
      const repeated = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret) },
        payload: `grant_type=authorization_code&code=${code}&code=${code}&redirect_uri=${encodeURIComponent(REDIRECT)}&code_verifier=${verifier}`,
      });
      expect(repeated.json()).toMatchObject({ error: 'invalid_request' });
      const unauthenticated = await app.server.inject({ method: 'POST', url: '/token', headers: FORM_HEADERS, payload: form({ grant_type: 'authorization_code', client_id: web.id, code, redirect_uri: REDIRECT, code_verifier: verifier }) });
      expect(unauthenticated.statusCode).toBe(401);
      // A resource outside the code's audience is part of the conditional UPDATE too: that
      // request left the code alone like every other one, and the correct request gets the tokens.
      expect((await redeem(code, verifier)).statusCode).toBe(200);
    });

    it('a client not registered for authorization_code is unauthorized_client', async () => {
      const cc = await createClient(app.context, { grant_types: ['client_credentials'] });
      const res = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(cc.client.clientId, cc.clientSecret!) },
        payload: form({ grant_type: 'authorization_code', code: 'x', redirect_uri: REDIRECT, code_verifier: pkce().verifier }),
      });
      expect(res.json()).toMatchObject({ error: 'unauthorized_client' });
    });

    it('a disabled user\'s code is invalid_grant', async () => {
      const { UserRepository } = await import('../../src/users/user-store.js');
      const users = new UserRepository(app.context.store.db);
      const { code, verifier } = await freshCode();
      await users.setDisabled(aliceId, true, clock.now());
      try {
        expect((await redeem(code, verifier)).json()).toEqual({ error: 'invalid_grant', error_description: 'the user of this authorization code is no longer active' });
      } finally {
        await users.setDisabled(aliceId, false, clock.now());
      }
    });

    it('a public client redeems with PKCE alone, and the resource narrows the audience', async () => {
      const pub = await createClient(app.context, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', scope: 'openid', resources: ['https://api.example.com', 'https://files.example.com'] });
      const b = new Browser(app);
      await b.signIn('alice', PASSWORD);
      const p = pkce();
      const url = `/authorize?${authorizeQuery({ response_type: 'code', client_id: pub.client.clientId, redirect_uri: REDIRECT, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' })}&resource=${encodeURIComponent('https://api.example.com')}&resource=${encodeURIComponent('https://files.example.com')}`;
      let res = await b.request('GET', url);
      const action = /action="(\/interaction\/[^"]+)"/.exec(res.body)![1]!;
      res = await b.request('POST', action, consentForm(res.body, 'allow'));
      const { code } = redirectParams(res.headers.location);
      const token = await app.server.inject({
        method: 'POST', url: '/token', headers: FORM_HEADERS,
        payload: form({ grant_type: 'authorization_code', client_id: pub.client.clientId, code: code!, redirect_uri: REDIRECT, code_verifier: p.verifier, resource: 'https://files.example.com' }),
      });
      expect(token.statusCode).toBe(200);
      expect(decodeJwt((token.json() as { access_token: string }).access_token).aud).toBe('https://files.example.com');
    });

    it('stores only the hash of the code', async () => {
      const { code } = await freshCode();
      const rows = await app.context.store.db.selectFrom('authorization_codes').selectAll().execute();
      expect(JSON.stringify(rows)).not.toContain(code);
    });
  });

  it('signs ID tokens with the client\'s id_token_signed_response_alg, and says temporarily_unavailable while that key is not active', async () => {
    const two = await createTestApp({ ...FAST_ARGON2, SIGNING_ALGS: 'ES256,EdDSA' });
    try {
      const created = await createClient(two.context, { redirect_uris: [REDIRECT], scope: 'openid', skip_consent: true, id_token_signed_response_alg: 'EdDSA' });
      const rs = await createClient(two.context, { redirect_uris: [REDIRECT], scope: 'openid', skip_consent: true, id_token_signed_response_alg: 'RS256' });
      await createUser(two.context, 'alice');
      const b = new Browser(two);
      await b.signIn('alice', PASSWORD);
      const p = pkce();
      const q = (clientId: string) => `/authorize?${authorizeQuery({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' })}`;
      const unavailable = await b.request('GET', q(rs.client.clientId));
      expect(redirectParams(unavailable.headers.location)).toMatchObject({ error: 'temporarily_unavailable' });
      const { code } = redirectParams((await b.request('GET', q(created.client.clientId))).headers.location);
      const res = await two.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(created.client.clientId, created.clientSecret!) },
        payload: form({ grant_type: 'authorization_code', code: code!, redirect_uri: REDIRECT, code_verifier: p.verifier }),
      });
      const body = res.json() as { id_token: string; access_token: string };
      expect(decodeProtectedHeader(body.id_token).alg).toBe('EdDSA');
      expect(decodeJwt(body.id_token).at_hash).toBe(createHash('sha512').update(body.access_token).digest().subarray(0, 32).toString('base64url'));
    } finally {
      await two.close();
    }
  });
});
