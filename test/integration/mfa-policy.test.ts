import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import {
  afterFirstPasskey, allowIfAsked, auditEvents, authorizeUrl, codeFlowClient, codeOf, csrfCookie, enrolPasskey, enrolTotp, expectScriptsAllowed, ORIGIN, passkeySecondFactor, redeem, RP_ID, totpCode, type TestClient,
} from '../support/mfa.js';
import { TotpFactors } from '../../src/capabilities/mfa/totp.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';

const PHISHING_RESISTANT = 'urn:latchkey:acr:phishing-resistant';
const MFA = 'urn:latchkey:acr:mfa';
const ADMIN = 'admin-credential-0123456789-abcdefghijklmnop';
const TOTP_LINK = 'Use an authenticator app instead';

describe('MFA_REQUIRED=phishing-resistant', () => {
  let app: TestApp;
  let client: TestClient;
  const clock = new ManualClock('2030-01-01T00:00:10Z');
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, MFA_REQUIRED: 'phishing-resistant' }, { clock });
    client = await codeFlowClient(app);
  });
  afterAll(async () => { await app.close(); });

  it('leads a user without factors from the password to passkey enrolment; no code until then; after it the code\'s ID token is phishing-resistant', async () => {
    const user = await createUser(app.context, 'fay');
    const b = new Browser(app);
    const request = authorizeUrl(client);
    const toLogin = await b.request('GET', request.url);
    expect(toLogin.statusCode).toBe(303);
    const returnTo = new URL(toLogin.headers.location!, ORIGIN).searchParams.get('return_to')!;
    expect(returnTo).toMatch(/^\/interaction\/[A-Za-z0-9_-]{43}$/);
    const factorPage = `/login/factor?${new URLSearchParams({ return_to: returnTo })}`;

    const signedIn = await b.signIn('fay', PASSWORD, returnTo);
    expect(signedIn.statusCode).toBe(303);
    expect(signedIn.headers.location).toBe(factorPage);
    expect((await auditEvents(app, 'login.succeeded', user.id))[0]!.details).toMatchObject({ amr: ['pwd'], required_acr: PHISHING_RESISTANT });

    const page = await b.request('GET', factorPage);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h1>Set up a second factor</h1>');
    expect(page.body).toContain('This requires a passkey (a security key, or your device\'s screen lock).');
    expect(page.body).toContain('data-passkey="create" data-options="/account/passkeys/options"');
    expect(page.body).not.toContain(TOTP_LINK);
    expect(page.body).not.toContain('/account/totp');
    expect(page.body).not.toContain('action="/login/factor/totp"');
    expectScriptsAllowed(page);
    // Its forms' redirects may end at the client (the interaction's redirect URI).
    expect(page.headers['content-security-policy']).toContain("form-action 'self' https://app.example.com");

    // Meanwhile the browser is not signed in: another authorization request issues no code.
    const meanwhile = await b.request('GET', authorizeUrl(client).url);
    expect(meanwhile.statusCode).toBe(303);
    expect(meanwhile.headers.location).toMatch(/^\/login\?return_to=%2Finteraction%2F[A-Za-z0-9_-]{43}$/);
    const silent = await b.request('GET', authorizeUrl(client, { prompt: 'none' }).url);
    expect(new URL(silent.headers.location!).searchParams.get('error')).toBe('login_required');
    expect((await b.request('GET', '/')).statusCode).toBe(303);

    // Enrolling a passkey proves nothing by itself; the factor page then offers it, and using it
    // (no phishable factor came before it in this sign-in) is the phishing-resistant proof.
    const key = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID, uv: true });
    const enrolled = await enrolPasskey(b, key, { return_to: returnTo });
    expect(enrolled.statusCode).toBe(200);
    expect(enrolled.body.location).toBe(afterFirstPasskey(factorPage));
    expect((await b.request('GET', '/')).statusCode).toBe(303);
    expect((await b.request('GET', enrolled.body.location)).body).toContain('data-passkey="get"');
    expect((await passkeySecondFactor(b, key, {}, { return_to: returnTo })).statusCode).toBe(200);
    expect((await b.request('GET', '/')).statusCode).toBe(200);
    const next = await b.request('GET', factorPage);
    expect(next.statusCode).toBe(303);
    expect(next.headers.location).toBe(returnTo);

    const done = await allowIfAsked(b, await b.request('GET', returnTo));
    const tokens = await redeem(app, client, codeOf(done), request.verifier);
    expect(tokens.id).toMatchObject({ sub: user.id, acr: PHISHING_RESISTANT, amr: ['pwd', 'hwk', 'user', 'mfa'], auth_time: Math.floor(clock.now().getTime() / 1000) });
    expect(tokens.at).toMatchObject({ sub: user.id, acr: PHISHING_RESISTANT });
  });

  it('a user with only TOTP must use it first, then is asked to add a passkey, and is signed in once it is added', async () => {
    // TOTP reaches mfa, not this floor: the page asks for the code (to prove the account) and says a passkey follows.
    const user = await createUser(app.context, 'otto');
    const totp = new TotpFactors(app.context.store.db, app.context.keyEncryptionSecret, 'localhost:8080');
    const { secret } = (await totp.begin(user, clock.now()))!;
    expect(await totp.confirm(user.id, totpCode(secret, clock.now()), clock.now())).toBe('ok');
    clock.advance(30);

    const b = new Browser(app);
    expect((await b.signIn('otto', PASSWORD)).headers.location).toBe('/login/factor?return_to=%2F');
    const page = await b.request('GET', '/login/factor?return_to=%2F');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('action="/login/factor/totp"');
    expect(page.body).toContain('After confirming, you will be asked to add a passkey: this requires one.');
    expect(page.body).not.toContain('data-passkey="create"');
    // Before the code, the password alone may not add the passkey.
    expect((await b.json('/account/passkeys/options', { csrf: csrfCookie(b) })).statusCode).toBe(403);

    const ok = await b.request('POST', '/login/factor/totp', { csrf: csrfCookie(b), return_to: '/', code: totpCode(secret, clock.now()) });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/login/factor?return_to=%2F');
    // At mfa, below the floor: still not signed in; now the page offers the passkey enrolment only.
    expect((await b.request('GET', '/')).statusCode).toBe(303);
    const enrol = await b.request('GET', ok.headers.location!);
    expect(enrol.statusCode).toBe(200);
    expect(enrol.body).toContain('<h1>Set up a second factor</h1>');
    expect(enrol.body).toContain('data-passkey="create"');
    expect(enrol.body).not.toContain('action="/login/factor/totp"');
    expect(enrol.body).not.toContain(TOTP_LINK);

    const key = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID, uv: true });
    const enrolled = await enrolPasskey(b, key, { return_to: '/' });
    expect(enrolled.statusCode).toBe(200);
    // A passkey added after a TOTP code in the same sign-in does not raise it (a phished code could
    // add a key): this sign-in stays below the floor; the passkey signs in from the next one.
    const notCounted = await passkeySecondFactor(b, key);
    expect(notCounted).toMatchObject({ statusCode: 400, body: { error: 'access_denied', error_description: 'Your new passkey works from your next sign-in: sign out, then sign in with it.' } });
    expect((await b.request('GET', '/')).statusCode).toBe(303);
    const c = new Browser(app, '10.0.3.9');
    const csrf = csrfOf((await c.request('GET', '/login')).body);
    const options = await c.json('/login/passkey/options', { csrf });
    expect((await c.json('/login/passkey', { csrf, return_to: '/', response: key.get(options.body as never) })).body).toEqual({ location: '/' });
    expect((await c.request('GET', '/')).statusCode).toBe(200);
    expect((await c.request('GET', '/account')).body).toContain('(hwk, user, mfa)');
  });
});

describe('MFA_REQUIRED_USERS and an operator\'s reset', () => {
  let app: TestApp;
  const clock = new ManualClock('2030-01-01T00:00:10Z');
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, MFA_REQUIRED_USERS: 'Bob, someone', ADMIN_TOKENS: ADMIN }, { clock });
  });
  afterAll(async () => { await app.close(); });

  const admin = (method: 'GET' | 'POST', url: string) => app.server.inject({ method, url, headers: { authorization: `Bearer ${ADMIN}` } });

  it('leads a listed user (bob) to enrolment with TOTP offered; a user not listed (alice) signs in with the password alone', async () => {
    await createUser(app.context, 'bob');
    await createUser(app.context, 'alice');
    const bob = new Browser(app);
    const res = await bob.signIn('bob', PASSWORD);
    expect(res.headers.location).toBe('/login/factor?return_to=%2F');
    const page = await bob.request('GET', '/login/factor?return_to=%2F');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Your organisation requires a second factor for signing in. Set one up to continue.');
    expect(page.body).toContain('data-passkey="create"');
    expect(page.body).toContain(`<a href="/account/totp?return_to=%2F">${TOTP_LINK}</a>`);
    expect(page.body).not.toContain('This requires a passkey');
    expect((await bob.request('GET', '/')).statusCode).toBe(303);

    // Enrolling TOTP completes bob's sign-in at the mfa level.
    const { location } = await enrolTotp(bob, clock.now(), '/');
    expect(location).toBe('/account/recovery-codes?return_to=%2Flogin%2Ffactor%3Freturn_to%3D%252F');
    expect((await bob.request('GET', '/')).statusCode).toBe(200);
    expect((await bob.request('GET', '/account')).body).toContain('(pwd, otp, mfa)');

    const alice = new Browser(app);
    expect((await alice.signIn('alice', PASSWORD)).headers.location).toBe('/');
    expect((await alice.request('GET', '/')).statusCode).toBe(200);
    expect((await alice.request('GET', '/account')).body).toContain('Signed in as <strong>alice</strong> (pwd).');
  });

  it('after a reset (admin API) the user is led to enrolment at the next sign-in; enrolling clears the mark', async () => {
    const user = await createUser(app.context, 'rex');
    const first = new Browser(app);
    expect((await first.signIn('rex', PASSWORD)).headers.location).toBe('/');
    const key = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID });
    expect((await enrolPasskey(first, key)).statusCode).toBe(200);

    const reset = await admin('POST', '/admin/users/rex/mfa/reset');
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toEqual({ passkeys: 1, totp: false, recovery_codes: 0, sessions_ended: 1 });
    expect((await first.request('GET', '/')).statusCode).toBe(303); // that session ended
    expect((await admin('GET', '/admin/users/rex/mfa')).json()).toMatchObject({ passkeys: [], totp: null, enrolment_required: true });

    clock.advance(60);
    const b = new Browser(app);
    expect((await b.signIn('rex', PASSWORD)).headers.location).toBe('/login/factor?return_to=%2F');
    const [, login] = await auditEvents(app, 'login.succeeded', user.id);
    expect(login!.details).toMatchObject({ amr: ['pwd'], required_acr: MFA });
    const page = await b.request('GET', '/login/factor?return_to=%2F');
    expect(page.body).toContain('<h1>Set up a second factor</h1>');
    expect(page.body).toContain(TOTP_LINK);
    expect((await b.request('GET', '/')).statusCode).toBe(303);
    // The old passkey is gone: it no longer signs in, not even usernameless.
    const options = await b.json('/login/factor/passkey/options', { csrf: csrfCookie(b) });
    expect(options.body.allowCredentials).toEqual([]);

    await enrolTotp(b, clock.now(), '/');
    expect((await b.request('GET', '/')).statusCode).toBe(200);
    expect((await admin('GET', '/admin/users/rex/mfa')).json()).toMatchObject({ enrolment_required: false });
    // The mark is gone, and rex now has a factor: the next sign-in asks for it, not for enrolment.
    const c = new Browser(app);
    expect((await c.signIn('rex', PASSWORD)).headers.location).toBe('/login/factor?return_to=%2F');
    const again = await c.request('GET', '/login/factor?return_to=%2F');
    expect(again.body).toContain('Confirm it is you with your second factor.');
    expect(again.body).not.toContain('Set up a second factor');
  });

  it('a reset by FactorAdministration itself (as the CLI does it) sends the next sign-in to enrolment too', async () => {
    const user = await createUser(app.context, 'ria');
    const first = new Browser(app);
    expect((await first.signIn('ria', PASSWORD)).headers.location).toBe('/');
    expect((await enrolPasskey(first, new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID }))).statusCode).toBe(200);
    const { FactorAdministration } = await import('../../src/capabilities/mfa/factor-administration.js');
    const administration = new FactorAdministration(app.context.store.db, app.context.audit, clock);
    expect(await administration.reset(user.id, { by: 'cli:test' })).toEqual({ passkeys: 1, totp: false, recovery_codes: 0 });
    expect(await administration.enrolmentRequired(user.id)).toBe(true);

    const b = new Browser(app);
    expect((await b.signIn('ria', PASSWORD)).headers.location).toBe('/login/factor?return_to=%2F');
    expect((await b.request('GET', '/login/factor?return_to=%2F')).body).toContain('<h1>Set up a second factor</h1>');
    const fresh = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID });
    const enrolled = await enrolPasskey(b, fresh, { return_to: '/' });
    expect(enrolled.statusCode).toBe(200);
    expect(await administration.enrolmentRequired(user.id)).toBe(false);
    expect((await passkeySecondFactor(b, fresh)).statusCode).toBe(200);
    expect((await b.request('GET', '/')).statusCode).toBe(200);
    expect((await auditEvents(app, 'mfa.reset', user.id))[0]!.details).toMatchObject({ passkeys: 1, totp: false, recovery_codes: 0, by: 'cli:test' });
  });
});
