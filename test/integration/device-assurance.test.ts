import { Secret, TOTP as Otp } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TotpFactors } from '../../src/capabilities/mfa/totp.js';
import type { User } from '../../src/users/user-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, consentForm, csrfOf } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';
import { createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const MFA = 'urn:latchkey:acr:mfa';

/**
 * A client that requires a level of everyone signing in to it (default_acr_values) gets no
 * device approved by a sign-in below it — whether the person goes through the code page (which
 * sends them to step up) or posts the decision form directly.
 */
describe('device approval and the client\'s default_acr_values', () => {
  let app: TestApp;
  let alice: User;
  let carol: User;
  let carolSecret: string;
  // 10 s into a TOTP step, moved a step on for each code used.
  const clock = new ManualClock('2030-01-01T00:00:10Z');
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    await createClient(app.context, {
      client_name: 'Admin CLI', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid', default_acr_values: [MFA],
    }, 'admin-cli');
    // Alternatives in order of preference (Registration §2): the weakest of them is what must be reached, as at /authorize.
    await createClient(app.context, {
      client_name: 'Ops CLI', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid',
      default_acr_values: ['urn:latchkey:acr:phishing-resistant', MFA],
    }, 'ops-cli');
    alice = await createUser(app.context, 'alice');
    // Carol has a TOTP authenticator: her every sign-in proves it (mfa).
    carol = await createUser(app.context, 'carol');
    const totp = new TotpFactors(app.context.store.db, app.context.keyEncryptionSecret, 'localhost');
    carolSecret = (await totp.begin(carol, clock.now()))!.secret;
    expect(await totp.confirm(carol.id, codeNow(carolSecret), clock.now())).toBe('ok');
  });
  afterAll(async () => { await app.close(); });

  function codeNow(secret: string): string {
    return Otp.generate({ secret: Secret.fromBase32(secret), timestamp: clock.now().getTime() });
  }
  const post = (url: string, body: Record<string, string>) => app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form(body) });
  const stepUp = (userCode: string) => `/login/factor?${new URLSearchParams({ return_to: `/device?user_code=${userCode}`, acr: MFA })}`;
  const statusOf = async (userCode: string) => (await app.context.store.db.selectFrom('device_authorizations').select('status')
    .where('user_code', '=', userCode.replace('-', '')).executeTakeFirstOrThrow()).status;

  it('the code page sends a password-only session to step up', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const res = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(stepUp(d.user_code));
    expect(await statusOf(d.user_code)).toBe('pending');
  });

  it('a decision to allow posted directly by a password-only session approves nothing: it is sent to step up', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const res = await b.request('POST', '/device/decision', { csrf: csrfOf(page.body), user_code: d.user_code, shown_to: alice.id, decision: 'allow' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(stepUp(d.user_code));
    expect(await statusOf(d.user_code)).toBe('pending');
    expect(app.logs.lines.filter((l) => l.event === 'device.approved')).toEqual([]);
    const poll = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'admin-cli' });
    expect(poll.statusCode).toBe(400);
    expect(poll.json().error).toBe('authorization_pending');
  });

  it('denying needs no step-up: a password-only session may refuse a device', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const res = await b.request('POST', '/device/decision', { csrf: csrfOf(page.body), user_code: d.user_code, shown_to: alice.id, decision: 'deny' });
    expect(res.statusCode).toBe(200);
    expect(await statusOf(d.user_code)).toBe('denied');
  });

  it('a session at the level (password and TOTP) is not sent to step up: it approves, and the ID token says mfa', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    const signIn = await b.signIn('carol', PASSWORD);
    expect(signIn.statusCode).toBe(303);
    expect(signIn.headers.location).toMatch(/^\/login\/factor\?/);
    const factor = await b.request('GET', signIn.headers.location as string);
    clock.advance(30);
    const proved = await b.request('POST', '/login/factor/totp', { csrf: csrfOf(factor.body), code: codeNow(carolSecret), return_to: '/' });
    expect(proved.statusCode).toBe(303);
    const page = await b.request('GET', '/device');
    const consent = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect(consent.statusCode).toBe(200);
    expect(consent.body).toContain('A device is asking');
    const done = await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code });
    expect(done.statusCode).toBe(200);
    expect(await statusOf(d.user_code)).toBe('approved');
    const tokens = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'admin-cli' });
    expect(tokens.statusCode).toBe(200);
    const id = JSON.parse(Buffer.from(tokens.json().id_token.split('.')[1], 'base64url').toString());
    expect(id).toMatchObject({ sub: carol.id, acr: MFA, amr: ['pwd', 'otp', 'mfa'] });
  });

  it('a passkey session (above the level asked) approves; the ID token reports the level asked, as after a code (Core §5.5.1.1)', async () => {
    await createUser(app.context, 'dave');
    const enrol = new Browser(app);
    expect((await enrol.signIn('dave', PASSWORD)).headers.location).toBe('/');
    const account = await enrol.request('GET', '/account');
    const csrf = csrfOf(account.body);
    const options = await enrol.json('/account/passkeys/options', { csrf });
    const key = new SoftwareAuthenticator({ origin: 'http://localhost:8080', rpId: 'localhost', uv: true });
    expect((await enrol.json('/account/passkeys', { csrf, name: 'Laptop', return_to: '/account', response: key.create(options.body as never) })).statusCode).toBe(200);
    // A new browser, the passkey alone: phishing-resistant.
    const b = new Browser(app);
    const login = await b.request('GET', '/login');
    const csrf2 = csrfOf(login.body);
    const request = await b.json('/login/passkey/options', { csrf: csrf2 });
    expect((await b.json('/login/passkey', { csrf: csrf2, return_to: '/', response: key.get(request.body as never) })).statusCode).toBe(200);

    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const page = await b.request('GET', '/device');
    const consent = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect(consent.statusCode).toBe(200);
    expect((await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code })).statusCode).toBe(200);
    const tokens = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'admin-cli' });
    expect(tokens.statusCode).toBe(200);
    const id = JSON.parse(Buffer.from(tokens.json().id_token.split('.')[1], 'base64url').toString());
    expect(id.amr).toEqual(expect.arrayContaining(['hwk', 'user', 'mfa']));
    expect(id.acr).toBe(MFA);
  });

  it('default_acr_values listing alternatives: a session at the weakest of them approves, as at /authorize', async () => {
    const d = (await post('/device_authorization', { client_id: 'ops-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    const signIn = await b.signIn('carol', PASSWORD);
    const factor = await b.request('GET', signIn.headers.location as string);
    clock.advance(30);
    expect((await b.request('POST', '/login/factor/totp', { csrf: csrfOf(factor.body), code: codeNow(carolSecret), return_to: '/' })).statusCode).toBe(303);
    const page = await b.request('GET', '/device');
    const consent = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect(consent.statusCode).toBe(200);
    expect((await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code })).statusCode).toBe(200);
    const tokens = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'ops-cli' });
    expect(tokens.statusCode).toBe(200);
    expect(JSON.parse(Buffer.from(tokens.json().id_token.split('.')[1], 'base64url').toString()).acr).toBe(MFA);
  });
});
