import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf, consentForm } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { authorizeQuery, createUser, FAST_ARGON2, PASSWORD, pkce, redirectParams } from '../support/oidc.js';

const REDIRECT = 'https://app.example.com/cb';

/**
 * Secrets never reach the logs: a whole sign-in, consent, code, token, refresh, userinfo,
 * introspection and revocation flow — with every request logged (ACCESS_LOG=all, LOG_LEVEL=debug), and the
 * failures that log their reasons — leaves none of the passwords, secrets, codes, verifiers,
 * tokens or cookies it handled anywhere in the captured output.
 */
describe('redaction of secrets in logs, proven on a whole flow', () => {
  let app: TestApp;
  const secrets: string[] = [];
  const clock = new ManualClock();
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, ACCESS_LOG: 'all', LOG_LEVEL: 'debug' }, { clock });
  });
  let closed = false;
  afterAll(async () => { if (!closed) await app.close(); });

  it('leaves no secret, code or token in any log line', async () => {
    const created = await createClient(app.context, { redirect_uris: [REDIRECT], scope: 'openid email offline_access', grant_types: ['authorization_code', 'refresh_token'] });
    const clientId = created.client.clientId;
    const clientSecret = created.clientSecret!;
    await createUser(app.context, 'carol');
    const b = new Browser(app);

    // A failed sign-in first (its password is a secret too), then the real one.
    const wrongPassword = 'not the password, but secret all the same';
    await b.signIn('carol', wrongPassword);
    const p = pkce();
    let res = await b.request('GET', `/authorize?${authorizeQuery({
      response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid email offline_access', state: 's', code_challenge: p.challenge, code_challenge_method: 'S256',
    })}`);
    const login = new URL(res.headers.location!, 'http://localhost:8080');
    const page = await b.request('GET', login.pathname + login.search);
    res = await b.request('POST', '/login', { csrf: csrfOf(page.body), login: 'carol', password: PASSWORD, return_to: login.searchParams.get('return_to')! });
    const consent = await b.request('GET', res.headers.location!);
    const action = /action="(\/interaction\/[^"]+)"/.exec(consent.body)![1]!;
    res = await b.request('POST', action, consentForm(consent.body, 'allow'));
    const { code } = redirectParams(res.headers.location);

    const token = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) },
      payload: form({ grant_type: 'authorization_code', code: code!, redirect_uri: REDIRECT, code_verifier: p.verifier }),
    });
    const tokens = token.json() as { access_token: string; id_token: string; refresh_token: string };
    expect(tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Refresh: rotation, then the rotated token again after the grace window (reuse, logged).
    const refreshed = (await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) },
      payload: form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
    })).json() as { access_token: string; refresh_token: string; id_token?: string };
    expect(refreshed.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) }, payload: form({ token: refreshed.access_token }) });
    await app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) }, payload: form({ token: refreshed.refresh_token }) });
    clock.advance(31);
    const reuse = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) },
      payload: form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
    });
    expect(reuse.json()).toMatchObject({ error: 'invalid_grant' });
    // A replay (logged as a rejected request with its reason), and a wrong secret.
    await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) },
      payload: form({ grant_type: 'authorization_code', code: code!, redirect_uri: REDIRECT, code_verifier: p.verifier }),
    });
    const wrongSecret = 'wrong-secret-wrong-secret-wrong-secret-000';
    await app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(clientId, wrongSecret) }, payload: form({ grant_type: 'client_credentials' }) });
    await app.server.inject({ method: 'POST', url: '/token', headers: FORM_HEADERS, payload: form({ grant_type: 'client_credentials', client_id: clientId, client_secret: wrongSecret }) });
    await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${tokens.access_token}` } });
    await app.server.inject({ method: 'GET', url: `/userinfo?access_token=${tokens.access_token}` });
    await app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) }, payload: form({ token: tokens.access_token }) });
    await app.server.inject({ method: 'POST', url: '/revoke', headers: { ...FORM_HEADERS, authorization: basic(clientId, clientSecret) }, payload: form({ token: tokens.access_token }) });
    // Hints in request URLs: an ID token, and an e-mail address (personal data), passed on to /login.
    const loginHint = 'carol.hint@example.org';
    const again = await b.request('GET', `/authorize?${authorizeQuery({
      response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid', state: 's', code_challenge: p.challenge, code_challenge_method: 'S256',
      prompt: 'login', login_hint: loginHint, id_token_hint: tokens.id_token,
    })}`);
    expect(again.headers.location).toContain('login_hint=');
    await b.request('GET', again.headers.location!);
    await b.request('GET', `/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, logout_hint: loginHint })}`);
    await app.close(); // flushes the audit trail
    closed = true;

    secrets.push(loginHint, encodeURIComponent(loginHint), PASSWORD, wrongPassword, clientSecret, wrongSecret, code!, p.verifier, tokens.access_token, tokens.id_token,
      tokens.refresh_token, refreshed.access_token, refreshed.refresh_token, ...(refreshed.id_token ? [refreshed.id_token] : []), ...b.cookies.values());
    const output = app.logs.text();
    expect(app.logs.lines.length).toBeGreaterThan(20);
    expect(output).toContain('"url":"/token"'); // requests were logged...
    expect(output).toContain('"event":"refresh.reuse_detected"');
    expect(output).toContain('"url":"/userinfo?access_token=[Redacted]"');
    expect(output).toMatch(/"url":"\/authorize\?[^"]*login_hint=\[Redacted\]&id_token_hint=\[Redacted\]"/);
    expect(output).toContain('"url":"/logout?id_token_hint=[Redacted]&logout_hint=[Redacted]"');
    for (const secret of secrets) expect(output, 'a secret in the logs').not.toContain(secret); // ...their secrets were not
    // The access token's signature alone (what a partial leak would show) is absent too.
    expect(output).not.toContain(tokens.access_token.split('.')[2]!);
  });
});
