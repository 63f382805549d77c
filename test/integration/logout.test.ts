import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { createClient, eventually, registryOf } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { codeFlow, REDIRECT, type TestClient } from '../support/refresh.js';

/** OpenID Connect RP-Initiated Logout 1.0 at /logout, over server.inject with a cookie jar. */
describe('RP-initiated logout', () => {
  let app: TestApp;
  const clock = new ManualClock();
  const SIGNED_OUT = 'https://app.example.com/signed-out';
  const OTHER_SIGNED_OUT = 'https://other.example.com/bye';
  let web: TestClient;
  let other: TestClient;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    const w = await createClient(app.context, {
      client_name: 'Invoices', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT, `${SIGNED_OUT}?from=idp`],
      grant_types: ['authorization_code'], scope: 'openid',
    });
    web = { id: w.client.clientId, secret: w.clientSecret! };
    const o = await createClient(app.context, { redirect_uris: [REDIRECT], post_logout_redirect_uris: [OTHER_SIGNED_OUT], grant_types: ['authorization_code'], scope: 'openid' });
    other = { id: o.client.clientId, secret: o.clientSecret! };
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  /** A browser signed in through the code flow of `client`, and the ID token it gave the client. */
  async function signedIn(client = web): Promise<{ b: Browser; idToken: string; sid: string }> {
    const b = new Browser(app);
    const tokens = await codeFlow(app, client, 'openid', 'alice', b);
    const sid = JSON.parse(Buffer.from(tokens.id_token!.split('.')[1]!, 'base64url').toString()).sid as string;
    return { b, idToken: tokens.id_token!, sid };
  }
  const isSignedIn = async (b: Browser) => (await b.request('GET', '/')).statusCode === 200;
  const logoutUrl = (params: Record<string, string>) => `/logout?${new URLSearchParams(params)}`;
  /** The fields the confirmation page's form posts, with the button pressed. */
  const answer = (html: string, decision: 'sign_out' | 'stay') => {
    const fields: Record<string, string> = { decision };
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = m[2]!.replaceAll('&amp;', '&');
    return fields;
  };
  const metric = async (outcome: string) => {
    const values = (await app.context.metrics.registry.getSingleMetric('latchkey_logouts_total')!.get()).values;
    return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  };

  it('asks first, then ends the session and sends the browser back to the app with its state', async () => {
    const { b, idToken, sid } = await signedIn();
    const before = await metric('signed_out');
    const page = await b.request('GET', logoutUrl({ id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT, state: 'a b&c' }));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<p>Invoices asks to sign you out.</p>');
    expect(page.body).toContain('Signed in as <strong>alice</strong>.');
    expect(page.headers['content-security-policy']).toContain("form-action 'self' https://app.example.com;");
    expect(await isSignedIn(b)).toBe(true); // a GET alone signs nobody out

    const fields = answer(page.body, 'sign_out');
    expect(fields).toEqual({ decision: 'sign_out', csrf: csrfOf(page.body), id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT, state: 'a b&c' });
    const out = await b.request('POST', '/logout', fields);
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe(`${SIGNED_OUT}?state=a+b%26c`);
    expect(b.cookies.has('latchkey_session')).toBe(false);
    expect(await isSignedIn(b)).toBe(false);
    expect(app.logs.lines.filter((l) => l.event === 'logout').pop()).toMatchObject({ event: 'logout', sid, client_id: web.id });
    expect(await metric('signed_out')).toBe(before + 1);
  });

  it('keeps the session when the person chooses to stay, and still returns to the app', async () => {
    const { b, idToken } = await signedIn();
    const page = await b.request('GET', logoutUrl({ id_token_hint: idToken, post_logout_redirect_uri: `${SIGNED_OUT}?from=idp`, state: 's1' }));
    const out = await b.request('POST', '/logout', answer(page.body, 'stay'));
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe(`${SIGNED_OUT}?from=idp&state=s1`);
    expect(await isSignedIn(b)).toBe(true);
  });

  it('with no session, goes straight back to the app; an expired ID token is still a hint', async () => {
    const { idToken } = await signedIn();
    clock.advance(2 * 3600); // past ID_TOKEN_TTL (1 h)
    const stranger = new Browser(app);
    const before = await metric('not_signed_in');
    const out = await stranger.request('GET', logoutUrl({ id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT }));
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe(SIGNED_OUT);
    expect(await metric('not_signed_in')).toBe(before + 1);
  });

  it('takes the request as a form POST too, and asks just the same', async () => {
    const { b, idToken } = await signedIn();
    const page = await b.request('POST', '/logout', { id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h1>Sign out?</h1>');
    expect(page.body).toContain('<p>Invoices asks to sign you out.</p>');
    expect(await isSignedIn(b)).toBe(true);
  });

  it('does not take a client_id without an id_token_hint as the app asking: not named, not audited', async () => {
    const { b, sid } = await signedIn();
    const page = await b.request('GET', logoutUrl({ client_id: web.id, state: 'x' }));
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('asks to sign you out');
    expect(page.headers['content-security-policy']).toContain("form-action 'self';");
    const out = await b.request('POST', '/logout', answer(page.body, 'sign_out'));
    expect(out.statusCode).toBe(200);
    expect(out.body).toContain('You are signed out.');
    const line = app.logs.lines.filter((l) => l.event === 'logout').pop()!;
    expect(line.sid).toBe(sid);
    expect(line).not.toHaveProperty('client_id');
  });

  it('refuses a bad request with an error page: no redirect, no sign-out', async () => {
    const { b, idToken } = await signedIn();
    const { idToken: otherIdToken } = await signedIn(other);
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'x', aud: web.id, sid: 'y' }).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'forged' })
      .setIssuer(app.context.config.issuer).setIssuedAt().setExpirationTime('1h').sign(privateKey);
    const cases: Array<[Record<string, string>, string]> = [
      [{ id_token_hint: 'not-a-jwt', post_logout_redirect_uri: SIGNED_OUT }, 'id_token_hint is not an ID token this server issued'],
      [{ id_token_hint: forged, post_logout_redirect_uri: SIGNED_OUT }, 'id_token_hint is not an ID token this server issued'],
      [{ client_id: web.id, post_logout_redirect_uri: SIGNED_OUT }, 'post_logout_redirect_uri requires an id_token_hint'],
      [{ id_token_hint: idToken, post_logout_redirect_uri: OTHER_SIGNED_OUT }, 'post_logout_redirect_uri is not registered for this client'],
      [{ id_token_hint: idToken, post_logout_redirect_uri: `${SIGNED_OUT}/` }, 'post_logout_redirect_uri is not registered for this client'],
      [{ id_token_hint: otherIdToken, post_logout_redirect_uri: SIGNED_OUT }, 'post_logout_redirect_uri is not registered for this client'],
      [{ id_token_hint: idToken, client_id: other.id }, 'client_id is not the client the id_token_hint was issued to'],
      [{ client_id: 'no-such-client' }, 'unknown client_id'],
    ];
    const before = await metric('invalid_request');
    for (const [params, reason] of cases) {
      const res = await b.request('GET', logoutUrl(params));
      expect(res.statusCode, reason).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.body).toContain(`The sign-out request is not valid: ${reason}.`);
    }
    const repeated = await b.request('GET', `/logout?state=a&state=b`);
    expect(repeated.statusCode).toBe(400);
    expect(repeated.body).toContain('the state parameter must not be repeated');
    expect(await metric('invalid_request')).toBe(before + cases.length + 1);
    expect(await isSignedIn(b)).toBe(true);

    // Validated again when the answer comes back: a form altered on its way is refused the same.
    const page = await b.request('GET', logoutUrl({ id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT }));
    const altered = await b.request('POST', '/logout', { ...answer(page.body, 'sign_out'), post_logout_redirect_uri: OTHER_SIGNED_OUT });
    expect(altered.statusCode).toBe(400);
    expect(altered.headers.location).toBeUndefined();
    expect(await isSignedIn(b)).toBe(true);
  });

  describe('a self-registered client: redirected to only from the session its hint was issued in (RFC 9700 §4.11.2)', () => {
    const PHISH_OUT = 'https://phish.example.net/bye';
    let selfReg: TestClient;
    let mallory: { b: Browser; idToken: string };
    beforeAll(async () => {
      const c = await registryOf(app.context).create({
        client_name: 'Totally Legit', redirect_uris: [REDIRECT], post_logout_redirect_uris: [PHISH_OUT], grant_types: ['authorization_code'], scope: 'openid',
      }, { source: 'registration' });
      selfReg = { id: c.client.clientId, secret: c.clientSecret! };
      // The attacker registered the client and got an ID token of it for their own account.
      await createUser(app.context, 'mallory');
      const b = new Browser(app);
      mallory = { b, idToken: (await codeFlow(app, selfReg, 'openid', 'mallory', b)).id_token! };
    });
    const bounce = () => logoutUrl({ id_token_hint: mallory.idToken, post_logout_redirect_uri: PHISH_OUT, state: 's' });

    it('a victim signed in here who signs out stays here, with a link to the client', async () => {
      const { b } = await signedIn();
      const page = await b.request('GET', bounce());
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-security-policy']).toContain("form-action 'self';");
      const out = await b.request('POST', '/logout', answer(page.body, 'sign_out'));
      expect(out.statusCode).toBe(200);
      expect(out.headers.location).toBeUndefined();
      expect(out.body).toContain('You are signed out.');
      expect(out.body).toContain('<strong>Totally Legit</strong> registered itself with localhost:8080');
      expect(out.body).toContain(`<a href="${PHISH_OUT}?state=s" rel="noreferrer">return to phish.example.net</a>`);
      // Staying signed in goes to the account page, not to the client.
      const { b: other } = await signedIn();
      const stay = await other.request('POST', '/logout', answer((await other.request('GET', bounce())).body, 'stay'));
      expect(stay.headers.location).toBe('/');
    });

    it('a browser with no session is not bounced either, expired hint or not', async () => {
      for (const advance of [0, 2 * 3600]) {
        clock.advance(advance);
        const res = await new Browser(app).request('GET', bounce());
        expect(res.statusCode).toBe(200);
        expect(res.headers.location).toBeUndefined();
        expect(res.body).toContain('return to phish.example.net');
      }
    });

    it('the client\'s own user, in the session the hint came from, is sent back (an expired hint too)', async () => {
      // Past the ID token's hour, the session kept alive by use.
      const b = new Browser(app);
      const idToken = (await codeFlow(app, selfReg, 'openid', 'mallory', b)).id_token!;
      for (let i = 0; i < 4; i++) { clock.advance(20 * 60); expect((await b.request('GET', '/')).statusCode).toBe(200); }
      mallory = { b, idToken };
      const page = await mallory.b.request('GET', bounce());
      expect(page.headers['content-security-policy']).toContain("form-action 'self' https://phish.example.net;");
      const out = await mallory.b.request('POST', '/logout', answer(page.body, 'sign_out'));
      expect(out.statusCode).toBe(303);
      expect(out.headers.location).toBe(`${PHISH_OUT}?state=s`);
    });
  });

  it('does not send the browser to a disabled client', async () => {
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], grant_types: ['authorization_code'], scope: 'openid' });
    const { idToken } = await signedIn({ id: c.client.clientId, secret: c.clientSecret! });
    const request = () => new Browser(app).request('GET', logoutUrl({ id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT }));
    expect((await request()).statusCode).toBe(303);
    await registryOf(app.context).setDisabled(c.client.clientId, true, { source: 'cli' });
    // On PostgreSQL the client cache hears of the change by NOTIFY, a moment later.
    await eventually(async () => (await request()).statusCode === 400);
    const res = await request();
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('the client of the id_token_hint is unknown or disabled');
  });

  it('a confirmation whose CSRF token does not match is refused and signs nobody out', async () => {
    const { b, idToken } = await signedIn();
    const page = await b.request('GET', logoutUrl({ id_token_hint: idToken }));
    const res = await b.request('POST', '/logout', { ...answer(page.body, 'sign_out'), csrf: 'x'.repeat(43) });
    expect(res.statusCode).toBe(403);
    expect(await isSignedIn(b)).toBe(true);
  });

  it('advertises /logout as the end_session_endpoint', async () => {
    const metadata = (await app.server.inject('/.well-known/openid-configuration')).json() as Record<string, unknown>;
    expect(metadata.end_session_endpoint).toBe(`${app.context.config.issuer}/logout`);
  });
});
