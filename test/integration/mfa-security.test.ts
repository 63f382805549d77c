import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { csrfCookie, enrolPasskey, enrolTotp, passkeySecondFactor, totpCode, wrongTotpCode } from '../support/mfa.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';

/**
 * The findings of the security read of the multi-factor sign-in, each as the attack it stops:
 * parallel TOTP guesses, a phished code adding a passkey, sessions opened with the password
 * alone outliving the first factor.
 */
describe('multi-factor sign-in against an attacker who has the password', () => {
  let app: TestApp;
  const clock = new ManualClock('2030-01-01T00:00:10Z');
  beforeAll(async () => { app = await createTestApp({ ...FAST_ARGON2 }, { clock }); });
  afterAll(async () => { await app.close(); });
  const device = () => new SoftwareAuthenticator({ origin: 'http://localhost:8080', rpId: 'localhost', uv: true });

  it('20 TOTP guesses sent at once: exactly 6 are checked (5 free, the 6th starts the delay), the other 14 are refused before any check (429)', async () => {
    await createUser(app.context, 'tara');
    const owner = new Browser(app, '10.1.0.1');
    await owner.signIn('tara', PASSWORD);
    const { secret } = await enrolTotp(owner, clock.now());
    clock.advance(30);
    const attacker = new Browser(app, '10.1.0.2');
    expect((await attacker.signIn('tara', PASSWORD, '/account')).headers.location).toBe('/login/factor?return_to=%2Faccount');
    const wrong = wrongTotpCode(secret, clock.now());
    const answers = await Promise.all(Array.from({ length: 20 }, () =>
      attacker.request('POST', '/login/factor/totp', { csrf: csrfCookie(attacker), return_to: '/account', code: wrong })));
    expect(answers.filter((a) => a.statusCode === 401)).toHaveLength(6);
    expect(answers.filter((a) => a.statusCode === 429)).toHaveLength(14);
    // Even the right code waits out the block.
    const right = await attacker.request('POST', '/login/factor/totp', { csrf: csrfCookie(attacker), return_to: '/account', code: totpCode(secret, clock.now()) });
    expect(right.statusCode).toBe(429);
  });

  it('a session that used a TOTP code cannot add a passkey to an account that has one', async () => {
    await createUser(app.context, 'uma');
    const owner = new Browser(app, '10.1.1.1');
    await owner.signIn('uma', PASSWORD);
    const { secret } = await enrolTotp(owner, clock.now());
    clock.advance(30);
    // The owner adds a passkey in a session that used the TOTP code: allowed (the account has none yet).
    const o2 = new Browser(app, '10.1.1.2');
    await o2.signIn('uma', PASSWORD, '/account');
    expect((await o2.request('POST', '/login/factor/totp', { csrf: csrfCookie(o2), return_to: '/account', code: totpCode(secret, clock.now()) })).statusCode).toBe(303);
    expect((await enrolPasskey(o2, device())).statusCode).toBe(200);
    clock.advance(30);
    // A phished password and code: a complete, recent session at the mfa level.
    const attacker = new Browser(app, '10.1.1.3');
    await attacker.signIn('uma', PASSWORD, '/account');
    expect((await attacker.request('POST', '/login/factor/totp', { csrf: csrfCookie(attacker), return_to: '/account', code: totpCode(secret, clock.now()) })).statusCode).toBe(303);
    expect((await attacker.request('GET', '/account')).statusCode).toBe(200);
    const options = await attacker.json('/account/passkeys/options', { csrf: csrfCookie(attacker) });
    expect(options).toMatchObject({ statusCode: 403, body: { error: 'login_required' } });
    expect(await app.context.store.db.selectFrom('webauthn_credentials').select('name').where('user_id', '=', (await app.services.users.findByLogin('uma'))!.id).execute()).toHaveLength(1);
  });

  it('adding a passkey does not raise the session that adds it', async () => {
    await createUser(app.context, 'vic');
    const b = new Browser(app, '10.1.2.1');
    await b.signIn('vic', PASSWORD);
    expect((await enrolPasskey(b, device())).statusCode).toBe(200);
    expect((await b.request('GET', '/account')).body).toContain('(pwd)');
  });

  it('the first factor ends every other session of the account (opened with the password alone)', async () => {
    await createUser(app.context, 'wes');
    const intruder = new Browser(app, '10.1.3.1');
    await intruder.signIn('wes', PASSWORD);
    expect((await intruder.request('GET', '/')).statusCode).toBe(200);
    const owner = new Browser(app, '10.1.3.2');
    await owner.signIn('wes', PASSWORD);
    const key = device();
    expect((await enrolPasskey(owner, key)).statusCode).toBe(200);
    expect((await intruder.request('GET', '/')).statusCode).toBe(303);
    expect((await owner.request('GET', '/')).statusCode).toBe(200);
    // A second factor later ends nothing more.
    expect((await passkeySecondFactor(owner, key)).statusCode).toBe(200);
    expect((await owner.request('GET', '/')).statusCode).toBe(200);
  });

  it('a sign-in waiting for its second factor has 15 minutes to finish, not the session\'s lifetime', async () => {
    await createUser(app.context, 'xia');
    const owner = new Browser(app, '10.1.4.1');
    await owner.signIn('xia', PASSWORD);
    const { secret } = await enrolTotp(owner, clock.now());
    const b = new Browser(app, '10.1.4.2');
    expect((await b.signIn('xia', PASSWORD, '/account')).headers.location).toBe('/login/factor?return_to=%2Faccount');
    clock.advance(14 * 60);
    expect((await b.request('GET', '/login/factor?return_to=%2Faccount')).statusCode).toBe(200);
    clock.advance(2 * 60);
    const late = await b.request('GET', '/login/factor?return_to=%2Faccount');
    expect([late.statusCode, late.headers.location]).toEqual([303, '/login?return_to=%2Faccount']);
    const code = await b.request('POST', '/login/factor/totp', { csrf: csrfCookie(b), return_to: '/account', code: totpCode(secret, clock.now()) });
    expect([code.statusCode, code.headers.location]).toEqual([303, '/login?return_to=%2Faccount']);
    expect((await b.request('GET', '/')).statusCode).toBe(303);
  });

  it('after an operator\'s reset, a session from before it cannot add a factor of its own (before it is ended); a new sign-in can', async () => {
    const user = await createUser(app.context, 'yan');
    const owner = new Browser(app, '10.1.5.1');
    await owner.signIn('yan', PASSWORD);
    const { secret } = await enrolTotp(owner, clock.now());
    clock.advance(30);
    // The intruder's session: password and a phished code, complete and recent.
    const intruder = new Browser(app, '10.1.5.2');
    await intruder.signIn('yan', PASSWORD, '/account');
    expect((await intruder.request('POST', '/login/factor/totp', { csrf: csrfCookie(intruder), return_to: '/account', code: totpCode(secret, clock.now()) })).statusCode).toBe(303);
    clock.advance(1);
    const { FactorAdministration } = await import('../../src/capabilities/mfa/factor-administration.js');
    await new FactorAdministration(app.context.store.db, app.context.audit, clock).reset(user.id, { by: 'cli:test' });
    clock.advance(1);
    expect(await intruder.json('/account/passkeys/options', { csrf: csrfCookie(intruder) })).toMatchObject({ statusCode: 403, body: { error: 'login_required' } });
    expect((await intruder.request('GET', '/account/totp')).headers.location).toBe('/login?return_to=%2Faccount%2Ftotp');
    // The owner, signing in afresh (with a new password, in the runbook), enrols.
    const fresh = new Browser(app, '10.1.5.3');
    expect((await fresh.signIn('yan', PASSWORD, '/account')).headers.location).toBe('/login/factor?return_to=%2Faccount');
    expect((await fresh.json('/account/passkeys/options', { csrf: csrfCookie(fresh) })).statusCode).toBe(200);
  });
});
