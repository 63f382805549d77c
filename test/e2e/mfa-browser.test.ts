import { createServer, type Server } from 'node:http';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { createClient } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { freePort } from '../support/process.js';

/**
 * Multi-factor sign-in as people meet it: Debian's Chromium driven by playwright-core, with a
 * CDP virtual authenticator (a platform authenticator: CTAP2, internal transport, discoverable
 * credentials, user verification) standing in for the device, through the real sign-in, factor,
 * enrolment and account pages; a relying party built on openid-client 6 receives the callback
 * and checks what the ID token and the access token say about how the person signed in.
 *
 * The issuer is http://localhost:<port>: WebAuthn needs a host name as the RP ID (an IP address
 * is not a valid one). The cases run in order and build on each other (one account's passkey is
 * enrolled, used, then removed…); each browser context holds its own virtual authenticator.
 */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ACR = {
  password: 'urn:latchkey:acr:password',
  mfa: 'urn:latchkey:acr:mfa',
  phishingResistant: 'urn:latchkey:acr:phishing-resistant',
} as const;

/** The relying party's redirect endpoint on its own loopback port: records what the browser brought back. */
class RelyingParty {
  readonly callbacks: URL[] = [];
  private server!: Server;
  port = 0;
  async start(): Promise<void> {
    this.port = await freePort();
    this.server = createServer((req, res) => {
      if (req.url!.startsWith('/cb')) this.callbacks.push(new URL(req.url!, `http://127.0.0.1:${this.port}`));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>RP</title><p>back at the app</p>');
    });
    await new Promise<void>((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
  }
  redirectUri(): string { return `http://127.0.0.1:${this.port}/cb`; }
  last(): URL { return this.callbacks[this.callbacks.length - 1]!; }
  async stop(): Promise<void> { await new Promise((resolve) => this.server.close(resolve)); }
}

/** One authorization server on http://localhost:<port>, with a confidential client seen through openid-client. */
interface AuthServer { app: TestApp; issuer: string; config: oidc.Configuration; jwks: ReturnType<typeof createRemoteJWKSet> }

async function startServer(env: Record<string, string> = {}): Promise<AuthServer> {
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const app = await createTestApp({ ...FAST_ARGON2, ISSUER: issuer, ...env });
  await app.server.listen({ port, host: '127.0.0.1' });
  // Registered without a port: RFC 8252 §7.3 lets the RP's loopback listener pick any.
  const { client, clientSecret } = await createClient(app.context, {
    client_name: 'MFA App', redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['authorization_code'], scope: 'openid profile email',
  });
  const config = await oidc.discovery(new URL(issuer), client.clientId, undefined, oidc.ClientSecretBasic(clientSecret!), { execute: [oidc.allowInsecureRequests] });
  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
  return { app, issuer, config, jwks };
}

interface Flow { verifier: string; state: string; nonce: string }

/** A browser context with its own virtual authenticator (WebAuthn domain of the Chrome DevTools Protocol). */
interface Device { context: BrowserContext; page: Page; cdp: CDPSession; authenticatorId: string }

const CONDITIONAL_FLAG = 'latchkey-test-conditional-mediation';
/** Conditional mediation off unless the tab's flag is set; with it, a conditional request is noted in window.conditionalRequested. */
const CONDITIONAL_SWITCH = `(function () {
  var on = false;
  try { on = !!sessionStorage.getItem('${CONDITIONAL_FLAG}'); } catch (e) { /* an opaque origin */ }
  if (!window.PublicKeyCredential) return;
  if (!on) {
    PublicKeyCredential.isConditionalMediationAvailable = function () { return Promise.resolve(false); };
    return;
  }
  var get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = function (options) {
    if (options && options.mediation === 'conditional') window.conditionalRequested = true;
    return get(options);
  };
})();`;

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('multi-factor sign-in in Chromium with a virtual authenticator, checked by an openid-client relying party', () => {
  const rp = new RelyingParty();
  let browser: Browser;
  let main: AuthServer;
  /** MFA_REQUIRED=phishing-resistant. */
  let strict: AuthServer;
  const devices: Device[] = [];
  const users: Record<'alice' | 'bob' | 'carol', string> = { alice: '', bob: '', carol: '' };
  let alice: Device;
  let bob: Device;
  let aliceRecoveryCodes: string[] = [];
  let bobRecoveryCodes: string[] = [];

  beforeAll(async () => {
    await rp.start();
    // The second server (case 9) starts now too: started together they take less time.
    [main, strict, browser] = await Promise.all([
      startServer(), startServer({ MFA_REQUIRED: 'phishing-resistant' }),
      chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS }),
    ]);
    users.alice = (await createUser(main.app.context, 'alice')).id;
    users.bob = (await createUser(main.app.context, 'bob')).id;
    users.carol = (await createUser(strict.app.context, 'carol')).id;
    alice = await newDevice();
    bob = await newDevice();
  });
  afterAll(async () => {
    for (const d of devices) await d.context.close().catch(() => {});
    await browser?.close();
    await main?.app.close();
    await strict?.app.close();
    await rp.stop();
  });

  async function newDevice(): Promise<Device> {
    const context = await browser.newContext();
    // The virtual authenticator, presence simulated, answers a conditional request (the passkeys
    // offered in the login field's autofill) at once, as if the person had picked one the moment
    // /login loaded: every visit to /login would sign in with the passkey before a password could
    // be typed. So these browsers say conditional mediation is unavailable (as browsers without
    // it do; the page then offers only its button) unless a test turns it on for the tab.
    await context.addInitScript({ content: CONDITIONAL_SWITCH });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.setDefaultNavigationTimeout(10_000);
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    const device = { context, page, cdp, authenticatorId };
    devices.push(device);
    return device;
  }

  /** Sends the browser to /authorize with a fresh PKCE pair, state and nonce. */
  async function authorize(page: Page, extra: Record<string, string> = {}, server: AuthServer = main): Promise<Flow> {
    const flow: Flow = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const url = oidc.buildAuthorizationUrl(server.config, {
      redirect_uri: rp.redirectUri(), scope: 'openid profile email', state: flow.state, nonce: flow.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256', ...extra,
    });
    await page.goto(url.href);
    return flow;
  }

  const path = (page: Page) => new URL(page.url()).pathname;
  const atRp = (page: Page) => page.url().startsWith(rp.redirectUri());

  /** After the sign-in: the consent page when `consent` (allowed), then the callback at the app. */
  async function toApp(page: Page, consent: boolean): Promise<void> {
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()) || u.pathname.startsWith('/interaction/'));
    if (consent) {
      expect(await page.title()).toBe('Allow access? · Latchkey');
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    }
    expect(atRp(page)).toBe(true);
  }

  /**
   * The relying party's side: the callback validated and the code redeemed by openid-client
   * (state, iss, PKCE, nonce, the ID token's signature and claims), the access token verified
   * as an RFC 9068 JWT; the sign-in they describe, exactly.
   */
  async function signInSeen(flow: Flow, expected: { sub: string; amr: string[]; acr: string; notBefore: number }, server: AuthServer = main): Promise<{ idToken: JWTPayload; accessToken: JWTPayload }> {
    const tokens = await oidc.authorizationCodeGrant(server.config, rp.last(), {
      pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
    });
    const idToken = tokens.claims()!;
    const { payload: accessToken } = await jwtVerify(tokens.access_token, server.jwks, { issuer: server.issuer, typ: 'at+jwt' });
    // auth_time is the session's: when its last factor was proved (at or after the step began).
    const session = await server.app.context.store.db.selectFrom('sessions').select('auth_time')
      .where('sid', '=', idToken.sid as string).executeTakeFirstOrThrow();
    const authTime = Math.floor(session.auth_time.getTime() / 1000);
    expect(authTime).toBeGreaterThanOrEqual(expected.notBefore);
    expect(authTime).toBeLessThanOrEqual(nowSeconds());
    expect({ sub: idToken.sub, amr: idToken.amr, acr: idToken.acr, auth_time: idToken.auth_time })
      .toEqual({ sub: expected.sub, amr: expected.amr, acr: expected.acr, auth_time: authTime });
    expect({ sub: accessToken.sub, acr: accessToken.acr, auth_time: accessToken.auth_time })
      .toEqual({ sub: expected.sub, acr: expected.acr, auth_time: authTime });
    return { idToken, accessToken };
  }

  async function password(page: Page, username: string): Promise<void> {
    expect(path(page)).toBe('/login');
    await page.getByLabel('Username or email').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((u) => u.pathname !== '/login');
  }

  /**
   * Presses "Sign in with a passkey" and expects /login/passkey to refuse the assertion: its JSON
   * answer (400 access_denied) and the message the page then shows in the form (role=alert).
   */
  async function passkeySignInRefused(page: Page, message: string): Promise<void> {
    const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/login/passkey' && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const res = await answer;
    expect(res.status()).toBe(400);
    expect(await res.json()).toEqual({ error: 'access_denied', error_description: message });
    expect(await passkeyError(page, 'Sign in with a passkey')).toBe(message);
    expect(path(page)).toBe('/login');
  }

  /** The passkey form's error line (role=alert) once the script filled it. */
  async function passkeyError(page: Page, button: string): Promise<string> {
    const alert = page.locator('form[data-passkey]', { has: page.getByRole('button', { name: button }) }).getByRole('alert');
    await alert.waitFor({ state: 'visible' });
    return (await alert.textContent())!;
  }

  /** Signs out on the account page; the browser then has no session. */
  async function signOut(page: Page, server: AuthServer = main): Promise<void> {
    await page.goto(`${server.issuer}/account`);
    expect(path(page)).toBe('/account');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/logout');
    await expectSignedOut(page, server);
  }

  /** Not signed in: the account page at / sends the browser to sign in. */
  async function expectSignedOut(page: Page, server: AuthServer = main): Promise<void> {
    await page.goto(`${server.issuer}/`);
    expect(path(page)).toBe('/login');
  }

  /** The account's passkeys as the virtual authenticator holds them. */
  async function credentials(d: Device) {
    return (await d.cdp.send('WebAuthn.getCredentials', { authenticatorId: d.authenticatorId })).credentials;
  }

  const userHandle = (id: string) => Buffer.from(id).toString('base64');

  it('1. a password-only account enrols a passkey on /account, makes recovery codes, signs out', async () => {
    const { page } = alice;
    // The levels a relying party may ask for, weakest first (OpenID Connect Discovery §3).
    expect(main.config.serverMetadata().acr_values_supported).toEqual([ACR.password, ACR.mfa, ACR.phishingResistant]);
    await page.goto(`${main.issuer}/login?return_to=%2Faccount`);
    // The login field offers passkeys in its autofill (WebAuthn conditional mediation).
    expect(await page.locator('#login').getAttribute('autocomplete')).toBe('username webauthn');
    await password(page, 'alice');
    expect(path(page)).toBe('/account');
    expect(await page.getByText('Signed in as').textContent()).toBe('Signed in as alice (pwd).');
    expect(await page.locator('#passkeys li').count()).toBe(0);
    expect(await page.locator('#totp-status').textContent()).toBe('Off.');
    expect(await page.locator('#recovery-status').textContent()).toBe('0 unused.');

    await page.locator('#passkey-name').fill('Laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    // Adding it proved nothing: the factor page has it used once; then, a first factor, recovery codes are offered.
    await page.waitForURL((u) => u.pathname === '/login/factor');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL((u) => u.pathname === '/account/recovery-codes');
    await page.getByRole('button', { name: 'Make recovery codes' }).click();
    await page.locator('#recovery-codes').waitFor();
    aliceRecoveryCodes = await page.locator('#recovery-codes li').allTextContents();
    expect(aliceRecoveryCodes).toHaveLength(10);
    for (const code of aliceRecoveryCodes) expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
    expect(new Set(aliceRecoveryCodes).size).toBe(10);
    await page.getByRole('link', { name: 'I have saved them, continue' }).click();
    await page.waitForURL((u) => u.pathname === '/account');

    // The passkey, used once with user verification: the session is phishing-resistant now.
    expect(await page.getByText('Signed in as').textContent()).toBe('Signed in as alice (pwd, hwk, user, mfa).');
    const listed = await page.locator('#passkeys li strong').allTextContents();
    expect(listed).toEqual(['Laptop']);
    expect(await page.locator('#passkeys li').textContent()).toContain('this device only');
    expect(await page.locator('#recovery-status').textContent()).toBe('10 unused.');

    // The authenticator holds one discoverable credential for localhost, for this account.
    const held = await credentials(alice);
    expect(held.map((c) => [c.rpId, c.isResidentCredential, c.userHandle])).toEqual([['localhost', true, userHandle(users.alice)]]);
    const stored = await main.app.context.store.db.selectFrom('webauthn_credentials').select(['id', 'name', 'device_bound'])
      .where('user_id', '=', users.alice).execute();
    expect(stored).toEqual([{ id: Buffer.from(held[0]!.credentialId, 'base64').toString('base64url'), name: 'Laptop', device_bound: true }]);

    await signOut(page);
  });

  it('2. usernameless: "Sign in with a passkey" in an authorization request → amr [hwk, user, mfa], phishing-resistant', async () => {
    const { page } = alice;
    const flow = await authorize(page);
    expect(path(page)).toBe('/login');
    const began = nowSeconds();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await toApp(page, true);
    await signInSeen(flow, { sub: users.alice, amr: ['hwk', 'user', 'mfa'], acr: ACR.phishingResistant, notBefore: began });
    await signOut(page);

    // Conditional mediation on (WebAuthn §5.1.4.1: the login field's autofill offers the passkey,
    // the page starting the request as it loads). First the person ignores the offer and presses
    // the button: the pending conditional request is aborted and the button's own goes through.
    // Presence is off while the conditional request starts, so that the authenticator does not
    // answer it; on again for the button's.
    const { cdp, authenticatorId } = alice;
    await page.evaluate(`sessionStorage.setItem('${CONDITIONAL_FLAG}', '1')`);
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
    const pressed = await authorize(page);
    // A function, not a string: the page's CSP forbids eval.
    await page.waitForFunction(() => (globalThis as { conditionalRequested?: boolean }).conditionalRequested === true, undefined, { timeout: 5000 });
    await page.waitForTimeout(300);
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
    // Still pending: neither answered nor failed.
    expect(path(page)).toBe('/login');
    expect(await page.locator('[data-passkey-error]').isHidden()).toBe(true);
    const fromButton = nowSeconds();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await toApp(page, false);
    await signInSeen(pressed, { sub: users.alice, amr: ['hwk', 'user', 'mfa'], acr: ACR.phishingResistant, notBefore: fromButton });
    await page.goto(`${main.issuer}/account`);
    await page.evaluate(`sessionStorage.removeItem('${CONDITIONAL_FLAG}')`);
    await signOut(page);

    // Then picked from the autofill (the authenticator, presence simulated, answers the
    // conditional request at once): signed in as the page loads, no button pressed.
    await page.evaluate(`sessionStorage.setItem('${CONDITIONAL_FLAG}', '1')`);
    const fromAutofill = nowSeconds();
    const autofill = await authorize(page);
    await toApp(page, false);
    await signInSeen(autofill, { sub: users.alice, amr: ['hwk', 'user', 'mfa'], acr: ACR.phishingResistant, notBefore: fromAutofill });
    // Off again (on the server's origin, and before /login loads again).
    await page.goto(`${main.issuer}/account`);
    await page.evaluate(`sessionStorage.removeItem('${CONDITIONAL_FLAG}')`);
    await signOut(page);
  });

  it('3. password, then "Use a passkey" on /login/factor → amr [pwd, hwk, user, mfa], phishing-resistant', async () => {
    const { page } = alice;
    const flow = await authorize(page);
    await password(page, 'alice');
    expect(path(page)).toBe('/login/factor');
    expect(new URL(page.url()).searchParams.get('return_to')).toMatch(/^\/interaction\/[A-Za-z0-9_-]{43}$/);
    expect(await page.getByRole('heading').textContent()).toBe('Confirm it is you');
    expect(await page.getByText('Signed in as').textContent()).toBe('Signed in as alice.');
    // Alice has a passkey and recovery codes, no authenticator app.
    expect(await page.locator('#totp-code').count()).toBe(0);
    expect(await page.getByText('Use a recovery code').count()).toBe(1);
    const began = nowSeconds();
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await toApp(page, false);
    await signInSeen(flow, { sub: users.alice, amr: ['pwd', 'hwk', 'user', 'mfa'], acr: ACR.phishingResistant, notBefore: began });
    await signOut(page);
  });

  /** Bob's authenticator app: codes of steps not yet used, within the server's ±1 step window (RFC 6238 §5.2). */
  class AuthenticatorApp {
    private last = -Infinity;
    private readonly totp: TOTP;
    constructor(secret: string) { this.totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }); }
    /**
     * The code of the earliest step after the last one used that the server accepts now: the
     * server takes each step once, and three codes are needed here (enrolment, case 4, case 6)
     * faster than steps go by. The first is the previous step's, so case 4's is the current
     * step's and its replay a few seconds later is still inside the window (refused as used, not
     * as wrong). Close to a step's end it first waits for the next step (at most 2 s), so that
     * the step does not change between computing the code and the server checking it.
     */
    async next(): Promise<string> {
      if (Date.now() % 30_000 > 28_000) await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 50));
      const current = Math.floor(Date.now() / 30_000);
      const step = Math.max(this.last + 1, current - 1);
      if (step > current + 1) throw new Error(`no unused TOTP step within the window (last used ${this.last}, now ${current})`);
      this.last = step;
      return this.totp.generate({ timestamp: step * 30_000 });
    }
  }
  let bobApp: AuthenticatorApp;
  let bobLastCode = '';

  it('4. password + TOTP: enrol on /account/totp, sign in → amr [pwd, otp, mfa], mfa; the same code again is refused, no session', async () => {
    const { page } = bob;
    await page.goto(`${main.issuer}/login?return_to=%2Faccount`);
    await password(page, 'bob');
    expect(path(page)).toBe('/account');
    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await page.waitForURL((u) => u.pathname === '/account/totp');
    const shown = (await page.locator('#totp-secret').textContent())!;
    // 160 bits in base32, in groups of four.
    expect(shown).toMatch(/^[A-Z2-7]{4}( [A-Z2-7]{4}){7}$/);
    bobApp = new AuthenticatorApp(shown.replace(/ /g, ''));
    await page.locator('#totp-code').fill(await bobApp.next());
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.waitForURL((u) => u.pathname === '/account/recovery-codes');
    await page.getByRole('button', { name: 'Make recovery codes' }).click();
    await page.locator('#recovery-codes').waitFor();
    bobRecoveryCodes = await page.locator('#recovery-codes li').allTextContents();
    expect(bobRecoveryCodes).toHaveLength(10);
    await page.getByRole('link', { name: 'I have saved them, continue' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    expect(await page.locator('#totp-status').textContent()).toMatch(/^On since \d{4}-\d\d-\d\d \d\d:\d\d UTC; last used never\.$/);
    expect(await page.getByText('Signed in as').textContent()).toBe('Signed in as bob (pwd, otp, mfa).');
    await signOut(page);

    const flow = await authorize(page);
    await password(page, 'bob');
    expect(path(page)).toBe('/login/factor');
    expect(await page.getByRole('button', { name: 'Use a passkey' }).count()).toBe(0);
    bobLastCode = await bobApp.next();
    const began = nowSeconds();
    await page.locator('#totp-code').fill(bobLastCode);
    await page.getByRole('button', { name: 'Verify' }).click();
    await toApp(page, true);
    await signInSeen(flow, { sub: users.bob, amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa, notBefore: began });
    await signOut(page);

    // A fresh sign-in, the same code again (its step still inside the window): refused.
    const callbacks = rp.callbacks.length;
    await authorize(page);
    await password(page, 'bob');
    expect(path(page)).toBe('/login/factor');
    await page.locator('#totp-code').fill(bobLastCode);
    const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/login/factor/totp');
    await page.getByRole('button', { name: 'Verify' }).click();
    expect((await answer).status()).toBe(401);
    await page.locator('#form-error').waitFor();
    // The factor page again, as the answer to the form.
    expect(path(page)).toBe('/login/factor/totp');
    expect(await page.locator('#totp-code').count()).toBe(1);
    expect(await page.getByRole('alert').filter({ hasText: 'code' }).textContent()).toBe('That code was already used. Wait for the next one.');
    expect(rp.callbacks.length).toBe(callbacks);
    await expectSignedOut(page);
    await main.app.context.audit.flush();
    const failed = (await new AuditEventRepository(main.app.context.store.db).query({ sub: users.bob, event: 'mfa.totp.failed' }));
    expect(failed.map((e) => e.details)).toEqual([expect.objectContaining({ reason: 'replayed' })]);
  });

  it('5. password, then a recovery code → 9 left → amr [pwd, otp, mfa], mfa', async () => {
    const { page } = alice;
    const flow = await authorize(page);
    await password(page, 'alice');
    expect(path(page)).toBe('/login/factor');
    await page.getByText('Use a recovery code').click();
    const began = nowSeconds();
    await page.locator('#recovery-code').fill(aliceRecoveryCodes[0]!);
    await page.getByRole('button', { name: 'Use recovery code' }).click();
    await page.locator('#recovery-remaining').waitFor();
    expect(await page.locator('#recovery-remaining').textContent()).toBe('You have 9 recovery codes left.');
    await page.getByRole('link', { name: 'Continue' }).click();
    await toApp(page, false);
    await signInSeen(flow, { sub: users.alice, amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa, notBefore: began });
    await signOut(page);
  });

  it('6. step-up: an mfa session meets acr_values=mfa silently; acr_values=phishing-resistant asks for the passkey', async () => {
    const { page } = bob;
    // Bob adds a passkey, signed in with his password and a recovery code (a TOTP code would do
    // as well; the codes of the steps in the window are kept for the sign-ins below).
    await page.goto(`${main.issuer}/login?return_to=%2Faccount`);
    await password(page, 'bob');
    expect(path(page)).toBe('/login/factor');
    await page.getByText('Use a recovery code').click();
    await page.locator('#recovery-code').fill(bobRecoveryCodes[0]!);
    await page.getByRole('button', { name: 'Use recovery code' }).click();
    await page.getByRole('link', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    await page.locator('#passkey-name').fill('Phone');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    // Recovery codes exist already: no offer, straight back.
    await page.locator('#passkeys li strong', { hasText: 'Phone' }).waitFor();
    expect(path(page)).toBe('/account');
    expect(await page.locator('#passkeys li strong').allTextContents()).toEqual(['Phone']);
    await signOut(page);

    // Password and TOTP: the mfa level.
    const first = await authorize(page, { acr_values: ACR.mfa });
    await password(page, 'bob');
    expect(path(page)).toBe('/login/factor');
    const began = nowSeconds();
    await page.locator('#totp-code').fill(await bobApp.next());
    await page.getByRole('button', { name: 'Verify' }).click();
    await toApp(page, false);
    const { idToken } = await signInSeen(first, { sub: users.bob, amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa, notBefore: began });
    const mfaAuthTime = idToken.auth_time as number;

    // The same level asked again: no page in between.
    const visited: string[] = [];
    const record = (f: { url(): string }) => visited.push(new URL(f.url()).pathname);
    page.on('framenavigated', record);
    const silent = await authorize(page, { acr_values: ACR.mfa });
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri()));
    page.off('framenavigated', record);
    expect(visited.filter((p) => p !== '/cb')).toEqual([]);
    await signInSeen(silent, { sub: users.bob, amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa, notBefore: mfaAuthTime });

    // auth_time has a second's resolution: let one pass so that the step-up's is later.
    while (nowSeconds() <= mfaAuthTime) await new Promise((r) => setTimeout(r, 100));
    const stepUp = await authorize(page, { acr_values: ACR.phishingResistant });
    await page.waitForURL((u) => u.pathname === '/login/factor');
    const asked = new URL(page.url()).searchParams;
    expect(asked.get('acr')).toBe(ACR.phishingResistant);
    expect(asked.get('return_to')).toMatch(/^\/interaction\/[A-Za-z0-9_-]{43}$/);
    expect(await page.getByText('The application asks for a stronger sign-in').textContent()).toBe('The application asks for a stronger sign-in for what you are about to do.');
    // Only a passkey reaches the level: no code forms.
    expect(await page.locator('#totp-code').count()).toBe(0);
    expect(await page.locator('#recovery-code').count()).toBe(0);
    const stepped = nowSeconds();
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await toApp(page, false);
    const after = await signInSeen(stepUp, { sub: users.bob, amr: ['pwd', 'otp', 'hwk', 'user', 'mfa'], acr: ACR.phishingResistant, notBefore: stepped });
    expect(after.idToken.auth_time).toBeGreaterThan(mfaAuthTime);
    expect(after.idToken.sid).toBe(idToken.sid);
    await signOut(page);
  });

  it('7. a removed passkey is refused', async () => {
    const { page } = alice;
    await page.goto(`${main.issuer}/login?return_to=%2Faccount`);
    await password(page, 'alice');
    expect(path(page)).toBe('/login/factor');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    await page.getByRole('button', { name: 'Remove Laptop' }).click();
    await page.waitForURL((u) => u.pathname === '/account' && u.searchParams.get('notice') === 'passkey_removed');
    expect(await page.getByRole('status').textContent()).toBe('The passkey was removed.');
    expect(await page.locator('#passkeys li').count()).toBe(0);
    await signOut(page);

    // The authenticator still holds it; the server no longer knows it.
    expect(await credentials(alice)).toHaveLength(1);
    await page.goto(`${main.issuer}/login`);
    await passkeySignInRefused(page, 'This passkey is not registered here (it may have been removed).');
    expect((await alice.context.cookies()).map((c) => c.name)).not.toContain('latchkey_session');
    await expectSignedOut(page);
  });

  it('8. a signature counter that went backwards is refused and audited', async () => {
    const { page } = bob;
    const db = main.app.context.store.db;
    const stored = () => db.selectFrom('webauthn_credentials').select(['id', 'counter']).where('user_id', '=', users.bob).executeTakeFirstOrThrow();

    // One more good use, usernameless: the counters agree.
    await page.goto(`${main.issuer}/login`);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL((u) => u.pathname === '/');
    const [held] = await credentials(bob);
    const before = await stored();
    expect(before.id).toBe(Buffer.from(held!.credentialId, 'base64').toString('base64url'));
    expect(Number(before.counter)).toBe(held!.signCount);
    expect(held!.signCount).toBeGreaterThanOrEqual(2);
    await signOut(page);

    // The same key with its counter back at 0, as a copy of the authenticator would have it.
    await bob.cdp.send('WebAuthn.removeCredential', { authenticatorId: bob.authenticatorId, credentialId: held!.credentialId });
    await bob.cdp.send('WebAuthn.addCredential', {
      authenticatorId: bob.authenticatorId,
      credential: { credentialId: held!.credentialId, isResidentCredential: true, rpId: held!.rpId!, privateKey: held!.privateKey, userHandle: held!.userHandle!, signCount: 0 },
    });
    await page.goto(`${main.issuer}/login`);
    await passkeySignInRefused(page, 'This passkey was refused: its signature counter went backwards, which is how a copied authenticator shows.');
    expect((await bob.context.cookies()).map((c) => c.name)).not.toContain('latchkey_session');
    await expectSignedOut(page);
    expect(await stored()).toEqual(before);

    await main.app.context.audit.flush();
    const events = await new AuditEventRepository(db).query({ sub: users.bob });
    expect(events.filter((e) => e.event === 'mfa.passkey.counter_regression').map((e) => e.details))
      .toEqual([expect.objectContaining({ credential_id: before.id })]);
    expect(events.filter((e) => e.event === 'login.failed').map((e) => e.details))
      .toEqual([expect.objectContaining({ method: 'passkey', reason: 'counter_regression', credential_id: before.id })]);
  });

  it('9. MFA_REQUIRED=phishing-resistant: a password-only account is led to passkey enrolment, then the authorization completes', async () => {
    const { page } = await newDevice();
    const flow = await authorize(page, {}, strict);
    await password(page, 'carol');
    expect(path(page)).toBe('/login/factor');
    expect(await page.getByRole('heading').textContent()).toBe('Set up a second factor');
    expect(await page.getByText('This requires a passkey').textContent()).toBe('This requires a passkey (a security key, or your device\'s screen lock).');
    expect(await page.getByRole('link', { name: 'Use an authenticator app instead' }).count()).toBe(0);
    const began = nowSeconds();
    await page.locator('#passkey-name').fill('Security key');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForURL((u) => u.pathname === '/login/factor');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL((u) => u.pathname === '/account/recovery-codes');
    await page.getByRole('link', { name: 'Not now' }).click();
    await toApp(page, true);
    await signInSeen(flow, { sub: users.carol, amr: ['pwd', 'hwk', 'user', 'mfa'], acr: ACR.phishingResistant, notBefore: began }, strict);
    expect(await strict.app.context.store.db.selectFrom('webauthn_credentials').select('name').where('user_id', '=', users.carol).execute()).toEqual([{ name: 'Security key' }]);
  });
});
