import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';
import { afterFirstPasskey } from '../support/mfa.js';

const ORIGIN = 'http://localhost:8080';

describe('passkeys at sign-in and on the account page (over inject, a software authenticator)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ...FAST_ARGON2 }); });
  afterAll(async () => { await app.close(); });

  it('enrols a passkey after a password sign-in, then signs in usernameless with it at the phishing-resistant level', async () => {
    await createUser(app.context, 'alice');
    const b = new Browser(app);
    expect((await b.signIn('alice', PASSWORD)).headers.location).toBe('/');
    const account = await b.request('GET', '/account');
    expect(account.statusCode).toBe(200);
    const csrf = csrfOf(account.body);
    const options = await b.json('/account/passkeys/options', { csrf });
    expect(options.statusCode).toBe(200);
    const key = new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost', uv: true });
    const enrolled = await b.json('/account/passkeys', { csrf, name: 'Laptop', return_to: '/account', response: key.create(options.body as never) });
    // Adding proved nothing: the factor page has the new passkey used once, then recovery codes are offered.
    expect(enrolled).toMatchObject({ statusCode: 200, body: { location: afterFirstPasskey('/login/factor?return_to=%2Faccount') } });

    // Signed out, a new browser: the passkey alone.
    const c = new Browser(app);
    const login = await c.request('GET', '/login');
    const csrf2 = csrfOf(login.body);
    const request = await c.json('/login/passkey/options', { csrf: csrf2 });
    const signedIn = await c.json('/login/passkey', { csrf: csrf2, return_to: '/account', response: key.get(request.body as never) });
    expect(signedIn).toMatchObject({ statusCode: 200, body: { location: '/account' } });
    const page = await c.request('GET', '/account');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Laptop');
    expect(page.body).toContain('(hwk, user, mfa)');
  });

  it('offers no passkey on an issuer that is an IP address (WebAuthn: an RP ID is a domain): the sign-in page has no script', async () => {
    const ip = await createTestApp({ ...FAST_ARGON2, ISSUER: 'http://127.0.0.1:8080' });
    try {
      const page = await new Browser(ip).request('GET', '/login');
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('<script');
      expect(page.body).toContain('autocomplete="username"');
      expect(page.headers['content-security-policy']).not.toContain('script-src');
    } finally {
      await ip.close();
    }
  });
});
