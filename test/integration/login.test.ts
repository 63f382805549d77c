import { PASSKEY_SCRIPT, PASSKEY_SCRIPT_HASH } from '../../src/capabilities/mfa/passkey-script.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '../../src/users/user-store.js';
import { createPasswordHasher } from '../../src/users/passwords.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';

const FAST_ARGON2 = { ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' };
const PASSWORD = 'correct horse battery staple';

describe('first-party sign-in', () => {
  let app: TestApp;
  const clock = new ManualClock();
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, SESSION_IDLE_TTL: '30m', SESSION_ABSOLUTE_TTL: '2h' }, { clock });
    const hasher = await createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1, minLength: 12 });
    const users = new UserRepository(app.context.store.db);
    await users.create({ username: 'alice', email: 'alice@example.com', password_hash: await hasher.hash(PASSWORD) }, clock.now());
    const mallory = await users.create({ username: 'mallory', password_hash: await hasher.hash(PASSWORD) }, clock.now());
    await users.setDisabled(mallory.id, true, clock.now());
    for (const name of ['erin', 'frank']) await users.create({ username: name, password_hash: await hasher.hash(PASSWORD) }, clock.now());
  });
  afterAll(async () => { await app.close(); });

  it('renders an accessible login form with a CSRF token, and only the passkey script its CSP names by hash', async () => {
    const b = new Browser(app);
    const res = await b.request('GET', '/login?return_to=%2Fauthorize%3Fx%3D1');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.body).toContain('<label for="login">Username or email</label>');
    expect(res.body).toContain('<input type="hidden" name="return_to" value="/authorize?x=1">');
    expect(res.body.match(/<script>/g)).toHaveLength(1);
    expect(res.body).toContain(`<script>${PASSKEY_SCRIPT}</script>`);
    expect(res.headers['content-security-policy']).toContain(`script-src ${PASSKEY_SCRIPT_HASH}; connect-src 'self'`);
    expect(res.body).toContain('autocomplete="username webauthn"');
    expect(b.cookies.get('latchkey_csrf')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('signs in with the right password: session cookie, redirect to return_to, account page', async () => {
    const b = new Browser(app);
    const res = await b.signIn('Alice', PASSWORD, '/somewhere?a=1');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/somewhere?a=1');
    const cookie = (res.cookies as Array<Record<string, unknown>>).find((c) => c.name === 'latchkey_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', maxAge: 7200 });
    const account = await b.request('GET', '/');
    expect(account.statusCode).toBe(200);
    expect(account.body).toContain('You are signed in as <strong>alice</strong>.');
    const line = app.logs.lines.find((l) => l.event === 'login.succeeded');
    expect(line).toMatchObject({ event: 'login.succeeded', amr: ['pwd'] });
    expect(app.logs.text()).not.toContain(PASSWORD);
  });

  it('signs in with the email address too', async () => {
    const res = await new Browser(app).signIn('ALICE@example.com', PASSWORD);
    expect(res.statusCode).toBe(303);
  });

  it('answers a wrong password, an unknown user and a disabled user with the same page', async () => {
    const wrong = await new Browser(app).signIn('alice', 'not the password at all');
    const unknown = await new Browser(app).signIn('nobody', PASSWORD);
    const disabled = await new Browser(app).signIn('mallory', PASSWORD);
    for (const res of [wrong, unknown, disabled]) {
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('The username or password is not right.');
      expect(res.cookies.some((c: { name: string }) => c.name === 'latchkey_session')).toBe(false);
    }
    const norm = (s: string) => s.replace(/value="[^"]*"/g, '');
    expect(norm(unknown.body)).toBe(norm(wrong.body));
    const reasons = app.logs.lines.filter((l) => l.event === 'login.failed').map((l) => l.reason);
    expect(reasons).toEqual(expect.arrayContaining(['bad_password', 'unknown_user', 'disabled']));
  });

  it('refuses a form without the CSRF cookie value, creating no session', async () => {
    const b = new Browser(app);
    await b.csrf();
    const res = await b.request('POST', '/login', { csrf: 'forged'.padEnd(43, 'x'), login: 'alice', password: PASSWORD });
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('The form expired. Please sign in again.');
    expect(b.cookies.has('latchkey_session')).toBe(false);
  });

  it('a CSRF token from before sign-in, or before sign-out, no longer validates after it', async () => {
    const b = new Browser(app);
    const before = await b.csrf();
    expect((await b.signIn('frank', PASSWORD)).statusCode).toBe(303);
    const signedIn = b.cookies.get('latchkey_csrf')!;
    expect(signedIn).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signedIn).not.toBe(before);
    // The pre-sign-in token (one a cookie-planting attacker could know) is refused by every form.
    const stale = await b.request('POST', '/logout', { csrf: before });
    expect(stale.statusCode).toBe(403);
    expect((await b.request('GET', '/')).statusCode).toBe(200);
    const out = await b.request('POST', '/logout', { csrf: signedIn });
    expect(out.statusCode).toBe(200);
    expect(out.body).toContain('You are signed out.');
    expect(b.cookies.get('latchkey_csrf')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.cookies.get('latchkey_csrf')).not.toBe(signedIn);
    const login = await b.request('POST', '/login', { csrf: signedIn, login: 'frank', password: PASSWORD, return_to: '/' });
    expect(login.statusCode).toBe(403);
  });

  it('escapes what the user typed', async () => {
    const res = await new Browser(app).signIn('<script>alert(1)</script>', 'x');
    expect(res.body).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
    expect(res.body).not.toContain('<script>alert(1)');
  });

  it('never redirects off the server after sign-in', async () => {
    const res = await new Browser(app).signIn('alice', PASSWORD, '//evil.example/phish');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/');
  });

  it('redirects to a non-ASCII return_to percent-encoded, replacing the previous session cleanly', async () => {
    const b = new Browser(app);
    await b.signIn('frank', PASSWORD);
    const previous = b.cookies.get('latchkey_session')!;
    const res = await b.signIn('frank', PASSWORD, '/café?q=ü ✓');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/caf%C3%A9?q=%C3%BC%20%E2%9C%93');
    const now = b.cookies.get('latchkey_session');
    expect(now).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(now).not.toBe(previous);
    expect((await b.request('GET', '/')).statusCode).toBe(200);
  });

  it('throttles an account with a growing delay, without checking the password while blocked', async () => {
    const b = new Browser(app);
    for (let i = 0; i < 5; i++) expect((await b.signIn('erin', `wrong password ${i}`)).statusCode).toBe(401);
    expect((await b.signIn('erin', 'wrong password 5')).statusCode).toBe(401); // 6th failure: blocked 2 s
    const blocked = await b.signIn('erin', PASSWORD);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBe('2');
    expect(blocked.body).toContain('Too many attempts. Try again in 2 seconds.');
    clock.advance(2);
    expect((await b.signIn('erin', 'wrong password 6')).statusCode).toBe(401); // 7th: blocked 4 s
    expect((await b.signIn('erin', PASSWORD)).headers['retry-after']).toBe('4');
    clock.advance(4);
    expect((await b.signIn('erin', PASSWORD)).statusCode).toBe(303);
    // Success clears the account's counter.
    expect((await b.signIn('erin', 'wrong again')).statusCode).toBe(401);
  });

  it('ends the session on sign-out; the old cookie no longer works', async () => {
    const b = new Browser(app);
    await b.signIn('frank', PASSWORD);
    const old = b.cookies.get('latchkey_session')!;
    const page = await b.request('GET', '/logout');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const out = await b.request('POST', '/logout', { csrf });
    expect(out.statusCode).toBe(200);
    expect(out.body).toContain('You are signed out.');
    expect(b.cookies.has('latchkey_session')).toBe(false);
    b.cookies.set('latchkey_session', old);
    const account = await b.request('GET', '/');
    expect(account.statusCode).toBe(303);
    expect(account.headers.location).toBe('/login');
  });

  it('ends an idle session after SESSION_IDLE_TTL, and any session after SESSION_ABSOLUTE_TTL', async () => {
    const b = new Browser(app);
    await b.signIn('frank', PASSWORD);
    clock.advance(29 * 60);
    expect((await b.request('GET', '/')).statusCode).toBe(200); // used: idle expiry slides
    clock.advance(29 * 60);
    expect((await b.request('GET', '/')).statusCode).toBe(200);
    clock.advance(31 * 60);
    expect((await b.request('GET', '/')).statusCode).toBe(303); // idle too long
    const c = new Browser(app);
    await c.signIn('frank', PASSWORD);
    for (let i = 0; i < 4; i++) { clock.advance(25 * 60); expect((await c.request('GET', '/')).statusCode).toBe(200); }
    clock.advance(25 * 60); // 125 min after sign-in: past the 2 h absolute lifetime
    expect((await c.request('GET', '/')).statusCode).toBe(303);
  });
});

describe('sign-in cookies on an https issuer', () => {
  it('use the __Host- prefix and Secure', async () => {
    const app = await createTestApp({ ...FAST_ARGON2, ISSUER: 'https://id.example.com' });
    try {
      const res = await app.server.inject({ method: 'GET', url: '/login' });
      const csrf = (res.cookies as Array<Record<string, unknown>>)[0]!;
      expect(csrf).toMatchObject({ name: '__Host-latchkey_csrf', secure: true, path: '/', httpOnly: true, sameSite: 'Lax' });
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    } finally {
      await app.close();
    }
  });
});
