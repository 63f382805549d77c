import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '../../src/users/user-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import {
  afterFirstPasskey, auditEvents, csrfCookie, enrolPasskey, expectScriptsAllowed, enrolTotp, makeRecoveryCodes, metricSample, ORIGIN, passkeySecondFactor, RP_ID, totpCode, wrongTotpCode,
} from '../support/mfa.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';

const MFA = 'urn:latchkey:acr:mfa';
const PHISHING_RESISTANT = 'urn:latchkey:acr:phishing-resistant';
const FACTOR_PAGE = '/login/factor?return_to=%2Faccount';

/**
 * The second factor after the password (TOTP, recovery code, passkey) and usernameless passkey
 * sign-in, over inject with a hand-moved clock. Each test signs in from addresses of its own, so
 * the per-address throttle counters of one test do not reach another's.
 */
describe('second factor after the password, and passkey sign-in', () => {
  let app: TestApp;
  const clock = new ManualClock('2030-01-01T00:00:10Z'); // 10 s into a TOTP step

  beforeAll(async () => { app = await createTestApp({ ...FAST_ARGON2 }, { clock }); });
  afterAll(async () => { await app.close(); });

  /** A user who enrolled TOTP right after a password sign-in (from `ip`); the clock then moves to the next step. */
  async function userWithTotp(username: string, ip: string): Promise<{ id: string; secret: string; first: Browser }> {
    const user = await createUser(app.context, username);
    const first = new Browser(app, ip);
    expect((await first.signIn(username, PASSWORD)).headers.location).toBe('/');
    const { secret, location } = await enrolTotp(first, clock.now());
    // No recovery codes yet: offered before going on.
    expect(location).toBe('/account/recovery-codes?return_to=%2Flogin%2Ffactor%3Freturn_to%3D%252Faccount');
    clock.advance(30);
    return { id: user.id, secret, first };
  }

  /** Signs in with the password; the session then waits for the second factor. */
  async function pending(username: string, ip: string): Promise<Browser> {
    const b = new Browser(app, ip);
    const res = await b.signIn(username, PASSWORD, '/account');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(FACTOR_PAGE);
    return b;
  }

  const totpForm = (b: Browser, code: string) => b.request('POST', '/login/factor/totp', { csrf: csrfCookie(b), return_to: '/account', code });

  describe('TOTP', () => {
    it('asks for the code after the password; until then the browser is not signed in; the code completes the sign-in at the mfa level', async () => {
      const { id, secret } = await userWithTotp('tina', '10.0.1.1');
      const b = await pending('tina', '10.0.1.2');
      // The session is not complete: neither / nor /account count it as signed in.
      const home = await b.request('GET', '/');
      expect(home.statusCode).toBe(303);
      expect(home.headers.location).toBe('/login');
      const account = await b.request('GET', '/account');
      expect(account.statusCode).toBe(303);
      expect(account.headers.location).toBe(FACTOR_PAGE);

      const page = await b.request('GET', FACTOR_PAGE);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('Confirm it is you with your second factor.');
      expect(page.body).toContain('<form method="post" action="/login/factor/totp">');
      expect(page.body).not.toContain('data-options="/login/factor/passkey/options"'); // no passkey on the account
      expect(page.body).not.toContain('action="/login/factor/recovery"'); // no recovery codes either

      const ok = await b.request('POST', '/login/factor/totp', { csrf: csrfOf(page.body), return_to: '/account', code: totpCode(secret, clock.now()) });
      expect(ok.statusCode).toBe(303);
      expect(ok.headers.location).toBe(FACTOR_PAGE);
      const back = await b.request('GET', ok.headers.location!);
      expect(back.statusCode).toBe(303);
      expect(back.headers.location).toBe('/account');
      expect((await b.request('GET', '/')).statusCode).toBe(200);
      const signedIn = await b.request('GET', '/account');
      expect(signedIn.statusCode).toBe(200);
      expect(signedIn.body).toContain('Signed in as <strong>tina</strong> (pwd, otp, mfa).');

      const [login] = (await auditEvents(app, 'login.succeeded', id)).slice(-1);
      expect(login!.details).toMatchObject({ amr: ['pwd'], required_acr: MFA });
      const used = await auditEvents(app, 'mfa.totp.used', id);
      expect(used).toHaveLength(1);
      expect(used[0]!.details).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });
    });

    it('a session that proved only the password cannot add a factor or make recovery codes (that would bypass the second factor)', async () => {
      const { id } = await userWithTotp('ivy', '10.0.12.1');
      const b = await pending('ivy', '10.0.12.2');
      const setup = await b.request('GET', '/account/totp?return_to=%2F');
      expect(setup.statusCode).toBe(303);
      expect(setup.headers.location).toBe(`/login?${new URLSearchParams({ return_to: '/account/totp?return_to=%2F' })}`);
      const options = await b.json('/account/passkeys/options', { csrf: csrfCookie(b) });
      expect(options).toMatchObject({ statusCode: 403, body: { error: 'login_required' } });
      const codes = await b.request('POST', '/account/recovery-codes', { csrf: csrfCookie(b), return_to: '/account' });
      expect(codes.statusCode).toBe(303);
      expect(codes.headers.location).toBe('/login?return_to=%2Faccount');
      expect(await auditEvents(app, 'mfa.recovery_codes.generated', id)).toEqual([]);
      expect((await b.request('GET', '/')).statusCode).toBe(303);
    });

    it('refuses a code already used (401 "already used") and a wrong code (401), audited with the reason', async () => {
      const { id, secret } = await userWithTotp('tess', '10.0.2.1');
      const first = await pending('tess', '10.0.2.2');
      const code = totpCode(secret, clock.now());
      expect((await totpForm(first, code)).statusCode).toBe(303);

      const b = await pending('tess', '10.0.2.3');
      const replayed = await totpForm(b, code);
      expect(replayed.statusCode).toBe(401);
      expect(replayed.body).toContain('That code was already used. Wait for the next one.');
      const wrong = await totpForm(b, wrongTotpCode(secret, clock.now()));
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).toContain('That code is not right.');
      expect(wrong.body).toContain('<form method="post" action="/login/factor/totp">'); // the page again, to try once more
      expect((await b.request('GET', '/')).statusCode).toBe(303);
      expect((await auditEvents(app, 'mfa.totp.failed', id)).map((e) => e.details.reason)).toEqual(['replayed', 'invalid']);
    });

    it('throttles guessing per account like the password: 5 free failures, then a doubling delay (429 + Retry-After) that refuses even the right code', async () => {
      const { id, secret } = await userWithTotp('tom', '10.0.3.1');
      const b = await pending('tom', '10.0.3.2');
      const wrong = wrongTotpCode(secret, clock.now());
      // THROTTLE.freeFailures.account = 5: failures 1–5 cost nothing; the 6th is still checked
      // (401) and starts a 2 s block (delayAfter(5)(6) = 2).
      for (let i = 1; i <= 6; i++) expect((await totpForm(b, wrong)).statusCode).toBe(401);
      const right = totpCode(secret, clock.now());
      const blocked = await totpForm(b, right);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.headers['retry-after']).toBe('2');
      expect(blocked.body).toContain('Too many attempts. Try again in 2 seconds.');
      expect((await b.request('GET', '/')).statusCode).toBe(303);
      // The block is the account's, not the browser's: another browser of tom's is refused too.
      const other = await pending('tom', '10.0.3.3');
      expect((await totpForm(other, right)).statusCode).toBe(429);

      clock.advance(2);
      expect((await totpForm(b, wrong)).statusCode).toBe(401); // the 7th failure: 4 s
      const again = await totpForm(b, right);
      expect(again.statusCode).toBe(429);
      expect(again.headers['retry-after']).toBe('4');
      clock.advance(4);
      // The right code was never checked while blocked, so it still works (same step).
      const ok = await totpForm(b, right);
      expect(ok.statusCode).toBe(303);
      expect(ok.headers.location).toBe(FACTOR_PAGE);
      expect((await b.request('GET', '/')).statusCode).toBe(200);

      const failed = await auditEvents(app, 'mfa.totp.failed', id);
      expect(failed.map((e) => e.details.reason)).toEqual(Array(7).fill('invalid'));
      const throttled = await auditEvents(app, 'mfa.throttled', id);
      expect(throttled).toHaveLength(3);
      expect(throttled.every((e) => e.details.method === 'totp')).toBe(true);
      // A success clears the account's counter: the next failure is a free one again.
      clock.advance(30);
      const next = await pending('tom', '10.0.3.4');
      expect((await totpForm(next, wrongTotpCode(secret, clock.now()))).statusCode).toBe(401);
      expect((await totpForm(next, totpCode(secret, clock.now()))).statusCode).toBe(303);
    });

    it('counts successes and failures in latchkey_sign_in_factors_total', async () => {
      const { secret } = await userWithTotp('mia', '10.0.4.1');
      const series = (outcome: string) => `latchkey_sign_in_factors_total{method="totp",step="second",outcome="${outcome}"}`;
      const before = { success: await metricSample(app, series('success')), failure: await metricSample(app, series('failure')), throttled: await metricSample(app, series('throttled')) };
      const b = await pending('mia', '10.0.4.2');
      expect((await totpForm(b, wrongTotpCode(secret, clock.now()))).statusCode).toBe(401);
      expect(await metricSample(app, series('failure'))).toBe(before.failure + 1);
      expect(await metricSample(app, series('success'))).toBe(before.success);
      expect((await totpForm(b, totpCode(secret, clock.now()))).statusCode).toBe(303);
      expect(await metricSample(app, series('success'))).toBe(before.success + 1);
      expect(await metricSample(app, series('failure'))).toBe(before.failure + 1);
      expect(await metricSample(app, series('throttled'))).toBe(before.throttled);
    });
  });

  describe('recovery codes', () => {
    it('a recovery code completes the sign-in once, says 9 are left, and is refused the second time', async () => {
      const { id, first } = await userWithTotp('rita', '10.0.5.1');
      const codes = await makeRecoveryCodes(first);
      expect(codes).toHaveLength(10);
      expect(new Set(codes).size).toBe(10);

      const b = await pending('rita', '10.0.5.2');
      const page = await b.request('GET', FACTOR_PAGE);
      expect(page.body).toContain('<form method="post" action="/login/factor/recovery">');
      const used = await b.request('POST', '/login/factor/recovery', { csrf: csrfCookie(b), return_to: '/account', code: codes[0]! });
      expect(used.statusCode).toBe(200);
      expect(used.body).toContain('<p id="recovery-remaining">You have <strong>9</strong> recovery codes left.</p>');
      const next = /<a href="([^"]+)">Continue<\/a>/.exec(used.body)![1]!;
      expect(next).toBe(FACTOR_PAGE);
      const back = await b.request('GET', next);
      expect(back.statusCode).toBe(303);
      expect(back.headers.location).toBe('/account');
      const account = await b.request('GET', '/account');
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain('(pwd, otp, mfa)');
      expect(account.body).toContain('<p id="recovery-status">9 unused.</p>');

      const again = await pending('rita', '10.0.5.3');
      const reused = await again.request('POST', '/login/factor/recovery', { csrf: csrfCookie(again), return_to: '/account', code: codes[0]! });
      expect(reused.statusCode).toBe(401);
      expect(reused.body).toContain('That recovery code is not right, or was used already.');
      expect((await again.request('GET', '/')).statusCode).toBe(303);

      const audited = await auditEvents(app, 'mfa.recovery_code.used', id);
      expect(audited).toHaveLength(1);
      expect(audited[0]!.details).toMatchObject({ remaining: 9, amr: ['pwd', 'otp', 'mfa'], acr: MFA });
      expect(await auditEvents(app, 'mfa.recovery_code.failed', id)).toHaveLength(1);
    });
  });

  describe('a passkey as the second factor', () => {
    const device = () => new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID });

    /** A user who enrolled a passkey (with user verification, as registration requires) after a password sign-in. */
    async function userWithPasskey(username: string, ip: string): Promise<{ id: string; key: SoftwareAuthenticator }> {
      const user = await createUser(app.context, username);
      const b = new Browser(app, ip);
      expect((await b.signIn(username, PASSWORD)).headers.location).toBe('/');
      const key = device();
      const enrolled = await enrolPasskey(b, key);
      expect(enrolled).toMatchObject({ statusCode: 200, body: { location: afterFirstPasskey('/login/factor?return_to=%2Faccount') } });
      return { id: user.id, key };
    }

    it('a passkey without user verification completes a password sign-in: amr pwd, hwk, user, mfa at the phishing-resistant level', async () => {
      const { id, key } = await userWithPasskey('pam', '10.0.6.1');
      const b = await pending('pam', '10.0.6.2');
      const page = await b.request('GET', FACTOR_PAGE);
      expect(page.body).toContain('data-options="/login/factor/passkey/options" data-verify="/login/factor/passkey"');
      expectScriptsAllowed(page);
      expect(page.body).not.toContain('action="/login/factor/totp"');

      const proved = await passkeySecondFactor(b, key, { uv: false });
      expect(proved).toMatchObject({ statusCode: 200, body: { location: FACTOR_PAGE } });
      expect(proved.headers['cache-control']).toBe('no-store');
      const back = await b.request('GET', FACTOR_PAGE);
      expect(back.statusCode).toBe(303);
      expect(back.headers.location).toBe('/account');
      const account = await b.request('GET', '/account');
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain('Signed in as <strong>pam</strong> (pwd, hwk, user, mfa).');
      const used = await auditEvents(app, 'mfa.passkey.used', id);
      expect(used).toHaveLength(1);
      expect(used[0]!.details).toMatchObject({ credential_id: key.credentials[0]!.id, amr: ['pwd', 'hwk', 'user', 'mfa'], acr: PHISHING_RESISTANT });
    });

    it('refuses another account\'s passkey with 400 access_denied, and the session stays incomplete', async () => {
      const { id } = await userWithPasskey('paul', '10.0.7.1');
      const { key: petesKey } = await userWithPasskey('pete', '10.0.7.2');
      const b = await pending('paul', '10.0.7.3');
      const refused = await passkeySecondFactor(b, petesKey, { credentialId: petesKey.credentials[0]!.id });
      expect(refused.statusCode).toBe(400);
      expect(refused.body).toEqual({ error: 'access_denied', error_description: 'This passkey belongs to another account.' });
      expect((await b.request('GET', '/')).statusCode).toBe(303);
      expect((await auditEvents(app, 'mfa.passkey.failed', id)).map((e) => e.details.reason)).toEqual(['wrong_user']);
    });

    it('does not hold a passkey back by the account\'s failures (a signature cannot be guessed): after 6 bad assertions the right one signs in', async () => {
      const { id, key } = await userWithPasskey('pia', '10.0.14.1');
      const b = await pending('pia', '10.0.14.2');
      for (let i = 1; i <= 6; i++) {
        const res = await passkeySecondFactor(b, key, { origin: 'https://evil.example' });
        expect(res).toMatchObject({ statusCode: 400, body: { error: 'access_denied', error_description: 'The passkey could not be verified.' } });
      }
      expect((await b.request('GET', '/')).statusCode).toBe(303);
      expect((await passkeySecondFactor(b, key)).statusCode).toBe(200);
      expect((await b.request('GET', '/')).statusCode).toBe(200);
      expect((await auditEvents(app, 'mfa.passkey.failed', id)).map((e) => e.details.reason)).toEqual(Array(6).fill('invalid'));
    });

    it('holds passkeys back by the address\'s failures: after 20 from one address the 21st attempt is 429 slow_down with Retry-After', async () => {
      const { key } = await userWithPasskey('pim', '10.0.16.1');
      const b = await pending('pim', '10.0.16.2');
      for (let i = 1; i <= 20; i++) expect((await passkeySecondFactor(b, key, { origin: 'https://evil.example' })).statusCode).toBe(400);
      expect((await passkeySecondFactor(b, key, { origin: 'https://evil.example' })).statusCode).toBe(400);
      const blocked = await passkeySecondFactor(b, key);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.body).toEqual({ error: 'slow_down', error_description: 'Too many attempts. Try again in 2 seconds.' });
      expect(blocked.headers['retry-after']).toBe('2');
    });

    it('"Cancel and sign out" on the factor page ends the waiting session', async () => {
      await userWithPasskey('cleo', '10.0.15.1');
      const b = await pending('cleo', '10.0.15.2');
      const page = await b.request('GET', FACTOR_PAGE);
      expect(page.body).toContain('<form method="post" action="/logout">');
      const out = await b.request('POST', '/logout', { csrf: csrfCookie(b) });
      expect(out.statusCode).toBe(200);
      expect(b.cookies.has('latchkey_session')).toBe(false);
      const again = await b.request('GET', FACTOR_PAGE);
      expect(again.statusCode).toBe(303);
      expect(again.headers.location).toBe('/login?return_to=%2Faccount');
    });

    it('refuses the JSON endpoints without the CSRF token (403 invalid_request)', async () => {
      const { key } = await userWithPasskey('cass', '10.0.8.1');
      const b = await pending('cass', '10.0.8.2');
      const options = await b.json('/login/factor/passkey/options', { csrf: csrfCookie(b) });
      const response = key.get(options.body as never, { uv: false });
      for (const [url, body] of [
        ['/login/factor/passkey/options', {}],
        ['/login/factor/passkey', { return_to: '/account', response }],
        ['/login/factor/passkey', { csrf: 'x'.repeat(43), return_to: '/account', response }],
        ['/login/passkey/options', {}],
        ['/login/passkey', { response }],
        ['/account/passkeys/options', {}],
        ['/account/passkeys', { response }],
      ] as const) {
        const res = await b.json(url, body);
        expect([url, res.statusCode, res.body.error]).toEqual([url, 403, 'invalid_request']);
      }
      expect((await b.request('GET', '/')).statusCode).toBe(303);
      // The challenge was not spent by the refused calls: the same response still works.
      expect((await b.json('/login/factor/passkey', { csrf: csrfCookie(b), return_to: '/account', response })).statusCode).toBe(200);
      expect((await b.request('GET', '/')).statusCode).toBe(200);
    });
  });

  describe('usernameless sign-in with a passkey', () => {
    const device = () => new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID });

    async function enrolled(username: string, ip: string): Promise<{ id: string; key: SoftwareAuthenticator }> {
      const user = await createUser(app.context, username);
      const b = new Browser(app, ip);
      expect((await b.signIn(username, PASSWORD)).headers.location).toBe('/');
      const key = device();
      expect((await enrolPasskey(b, key)).statusCode).toBe(200);
      return { id: user.id, key };
    }

    async function usernameless(ip: string, key: SoftwareAuthenticator, overrides: Parameters<SoftwareAuthenticator['get']>[1] = {}) {
      const b = new Browser(app, ip);
      const login = await b.request('GET', '/login');
      const csrf = csrfOf(login.body);
      const options = await b.json('/login/passkey/options', { csrf });
      expect(options.statusCode).toBe(200);
      expect(options.body.userVerification).toBe('required');
      expect(options.body.allowCredentials ?? []).toEqual([]);
      const res = await b.json('/login/passkey', { csrf, return_to: '/account', response: key.get(options.body as never, overrides) });
      return { b, res };
    }

    it('signs in with user verification; without it answers 400 access_denied and sets no session cookie', async () => {
      const { id, key } = await enrolled('uma', '10.0.9.1');
      const { b, res } = await usernameless('10.0.9.2', key, { uv: false });
      expect(res.statusCode).toBe(400);
      expect(res.body).toEqual({ error: 'access_denied', error_description: 'Your passkey must verify you (PIN or biometric) to sign in with it alone.' });
      expect(b.cookies.has('latchkey_session')).toBe(false);
      expect((await b.request('GET', '/')).statusCode).toBe(303);
      const failed = (await auditEvents(app, 'login.failed', id)).filter((e) => e.details.method === 'passkey');
      expect(failed.map((e) => e.details.reason)).toEqual(['user_verification_required']);

      const good = await usernameless('10.0.9.3', key);
      expect(good.res).toMatchObject({ statusCode: 200, body: { location: '/account' } });
      expect(good.b.cookies.has('latchkey_session')).toBe(true);
      const account = await good.b.request('GET', '/account');
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain('Signed in as <strong>uma</strong> (hwk, user, mfa).');
    });

    it('throttles failed passkey sign-ins per address: after 20 free failures 429 slow_down with Retry-After', async () => {
      const { key } = await enrolled('ulf', '10.0.13.1');
      // THROTTLE.freeFailures.ip = 20: the 21st failure starts a 2 s block.
      for (let i = 1; i <= 21; i++) expect((await usernameless('10.0.13.2', key, { uv: false })).res.statusCode).toBe(400);
      const { b, res } = await usernameless('10.0.13.2', key);
      expect(res.statusCode).toBe(429);
      expect(res.body).toEqual({ error: 'slow_down', error_description: 'Too many attempts. Try again in 2 seconds.' });
      expect(res.headers['retry-after']).toBe('2');
      expect(b.cookies.has('latchkey_session')).toBe(false);
      // Another address is not blocked; this one is again after the delay.
      expect((await usernameless('10.0.13.3', key)).res.statusCode).toBe(200);
      clock.advance(2);
      expect((await usernameless('10.0.13.2', key)).res.statusCode).toBe(200);
    });

    it('refuses a disabled user\'s passkey with 400', async () => {
      const { id, key } = await enrolled('dora', '10.0.10.1');
      await new UserRepository(app.context.store.db).setDisabled(id, true, clock.now());
      const { b, res } = await usernameless('10.0.10.2', key);
      expect(res.statusCode).toBe(400);
      expect(res.body).toEqual({ error: 'access_denied', error_description: 'The passkey could not be verified.' });
      expect(b.cookies.has('latchkey_session')).toBe(false);
      const failed = (await auditEvents(app, 'login.failed', id)).filter((e) => e.details.method === 'passkey');
      expect(failed.map((e) => e.details.reason)).toEqual(['disabled']);
      expect(failed[0]!.details.credential_id).toBe(key.credentials[0]!.id);
    });

    it('refuses an assertion whose signature counter went backwards (400) and audits mfa.passkey.counter_regression', async () => {
      const { id, key } = await enrolled('cora', '10.0.11.1');
      expect((await usernameless('10.0.11.2', key, { counter: 5 })).res.statusCode).toBe(200);
      const { b, res } = await usernameless('10.0.11.3', key, { counter: 3 });
      expect(res.statusCode).toBe(400);
      expect(res.body).toEqual({ error: 'access_denied', error_description: 'This passkey was refused: its signature counter went backwards, which is how a copied authenticator shows.' });
      expect(b.cookies.has('latchkey_session')).toBe(false);
      const regressions = await auditEvents(app, 'mfa.passkey.counter_regression', id);
      expect(regressions).toHaveLength(1);
      expect(regressions[0]!.details).toMatchObject({ credential_id: key.credentials[0]!.id });
    });
  });
});
