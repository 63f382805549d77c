import { spawn, type ChildProcess } from 'node:child_process';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../support/oidc.js';
import { startCompatServer, type CompatServer } from './support.js';

/**
 * The device authorization grant (RFC 8628) as a device and a person meet it: a real
 * `latchkey start` process, openid-client 6 as the device (`initiateDeviceAuthorization`,
 * `pollDeviceAuthorizationGrant`, as its README shows), and Debian's Chromium (playwright-core)
 * as the person's phone or laptop on the real sign-in and /device pages while the device polls.
 * Also runs the README's example, examples/device-login.mjs, and drives the browser from what it
 * prints. Polling every second (DEVICE_CODE_INTERVAL=1); the expiry path on a second process
 * whose codes live 6 s.
 */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const execute = [client.allowInsecureRequests];
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const CLIENT_ID = 'device-cli';
const CLIENT_NAME = 'Latchkey CLI';
const SCOPE = 'openid profile offline_access';
const root = new URL('../../', import.meta.url).pathname;

/** A public client registered for the device grant (and refresh), as a CLI or a TV would be. */
const DEVICE_CLIENT = {
  client_id: CLIENT_ID, client_name: CLIENT_NAME, token_endpoint_auth_method: 'none',
  grant_types: [DEVICE_GRANT, 'refresh_token'], scope: SCOPE,
};

let server: CompatServer;
/** Its device codes expire after 6 s and nobody approves them. */
let shortLived: CompatServer;
let browser: Browser;
let context: BrowserContext;
let config: client.Configuration;

beforeAll(async () => {
  [server, shortLived] = await Promise.all([
    startCompatServer([DEVICE_CLIENT], { DEVICE_CODE_INTERVAL: '1' }),
    // Nobody signs in there: no user.
    startCompatServer([DEVICE_CLIENT], { DEVICE_CODE_INTERVAL: '1', DEVICE_CODE_TTL: '6' }, { alice: false }),
  ]);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  // One browser profile for the whole file: alice signs in once, later codes reuse her session.
  context = await browser.newContext();
  config = await client.discovery(new URL(server.issuer), CLIENT_ID, undefined, client.None(), { execute });
});
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await Promise.all([server?.close(), shortLived?.close()]);
});

async function newPage(): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

/** On the sign-in page (where /device sends a browser without a session): alice signs in. */
async function signInIfAsked(page: Page): Promise<void> {
  if (new URL(page.url()).pathname !== '/login') return;
  await page.fill('#login', 'alice');
  await page.fill('#password', PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.pathname !== '/login');
}

/** The person's side: the code page (code already filled in, or typed), Continue, then Allow or Deny. */
async function decide(page: Page, userCode: string, decision: 'Allow' | 'Deny', options: { type?: boolean } = {}): Promise<void> {
  expect(new URL(page.url()).pathname).toBe('/device');
  expect(await page.getByRole('heading').textContent()).toBe('Connect a device');
  if (options.type) await page.fill('#user_code', userCode);
  else expect(await page.inputValue('#user_code')).toBe(userCode);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForSelector('#device-user-code');
  expect(await page.title()).toMatch(/^Allow a device\?/);
  expect(await page.getByText('A device is asking').count()).toBe(1);
  expect(await page.locator('p.warning').textContent()).toContain(CLIENT_NAME);
  expect(await page.textContent('#device-user-code')).toBe(userCode);
  expect(await page.locator('li').allTextContents()).toEqual([
    'Know who you are (your account identifier)', 'See your name, username, picture and locale', 'Keep access when you are not signed in',
  ]);
  await page.getByRole('button', { name: decision }).click();
  await page.waitForSelector('#device-result');
  expect(await page.textContent('#device-result')).toBe(decision === 'Allow' ? 'Device connected' : 'Device denied');
}

/** The script's output so far, and a promise of its exit code. */
/** examples/device-login.mjs run as its header says (LATCHKEY_ISSUER, LATCHKEY_CLIENT_ID). */
function runExample(issuer: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['examples/device-login.mjs'], {
    cwd: root, env: { PATH: process.env.PATH ?? '', LATCHKEY_ISSUER: issuer, LATCHKEY_CLIENT_ID: CLIENT_ID }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += String(d); });
  child.stderr!.on('data', (d) => { out += String(d); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitForOutput(run: ReturnType<typeof runExample>, pattern: RegExp): Promise<RegExpExecArray> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = pattern.exec(run.output());
    if (m) return m;
    if (run.child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in the script's output: ${run.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('openid-client 6 as the device, Chromium as the person', () => {
  let tokens: Awaited<ReturnType<typeof client.pollDeviceAuthorizationGrant>>;

  it('discovery names the device authorization endpoint and the grant', () => {
    const meta = config.serverMetadata();
    expect(meta.device_authorization_endpoint).toBe(`${server.issuer}/device_authorization`);
    expect(meta.grant_types_supported).toContain(DEVICE_GRANT);
  });

  it('initiateDeviceAuthorization → sign-in and Allow on verification_uri_complete while pollDeviceAuthorizationGrant waits → tokens', async () => {
    const response = await client.initiateDeviceAuthorization(config, { scope: SCOPE });
    expect(response).toMatchObject({ verification_uri: `${server.issuer}/device`, interval: 1, expires_in: 600 });
    expect(response.user_code).toMatch(/^[B-DF-HJ-NP-TV-Z]{4}-[B-DF-HJ-NP-TV-Z]{4}$/);
    expect(response.verification_uri_complete).toBe(`${server.issuer}/device?user_code=${response.user_code}`);
    // The device polls from now on (authorization_pending every second) while the person acts.
    const polling = client.pollDeviceAuthorizationGrant(config, response);
    polling.catch(() => {});

    const page = await newPage();
    await page.goto(response.verification_uri_complete!);
    expect(new URL(page.url()).pathname).toBe('/login');
    await signInIfAsked(page);
    await decide(page, response.user_code, 'Allow');
    await page.close();

    tokens = await polling;
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope!.split(' ').sort()).toEqual(['offline_access', 'openid', 'profile']);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    // The ID token, validated by openid-client (signature, iss, aud, exp); what it says of the sign-in.
    expect(tokens.claims()).toMatchObject({
      iss: server.issuer, sub: server.aliceSub!, aud: CLIENT_ID, amr: ['pwd'], acr: 'urn:latchkey:acr:password',
    });
    expect(tokens.claims()!.nonce).toBeUndefined();
    expect(tokens.claims()!.sid).toEqual(expect.any(String));

    // The access token, as a resource server checks it.
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: server.issuer, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: server.aliceSub!, client_id: CLIENT_ID, scope: SCOPE });

    // The device code gave its tokens once: polling with it again is invalid_grant.
    await expect(client.pollDeviceAuthorizationGrant(config, response)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('refreshTokenGrant with the device\'s refresh token: a new access token for alice, the refresh token rotated', async () => {
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    // The refreshed ID token still says how alice signed in on the browser that approved.
    expect(refreshed.claims()).toMatchObject({ sub: server.aliceSub!, aud: CLIENT_ID, amr: ['pwd'], acr: 'urn:latchkey:acr:password', auth_time: tokens.claims()!.auth_time });
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(refreshed.access_token, jwks, { issuer: server.issuer, audience: server.issuer, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: server.aliceSub!, client_id: CLIENT_ID });
    expect(await client.fetchUserInfo(config, refreshed.access_token, server.aliceSub!)).toMatchObject({ sub: server.aliceSub!, preferred_username: 'alice' });
  });

  it('Deny on the consent page: the poll rejects with access_denied', async () => {
    const response = await client.initiateDeviceAuthorization(config, { scope: SCOPE });
    const polling = client.pollDeviceAuthorizationGrant(config, response).then(() => undefined, (e: unknown) => e);

    // The code typed on verification_uri, as from a TV screen; alice's session is still there.
    const page = await newPage();
    await page.goto(response.verification_uri);
    await decide(page, response.user_code, 'Deny', { type: true });
    await page.close();

    const err = await polling;
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    expect(err).toMatchObject({ error: 'access_denied', status: 400 });
  });
});

describe('examples/device-login.mjs (the README\'s example)', () => {
  it('prints the URL and the code; the person opens the URL, types the code and allows; it prints "signed in as <sub>"', async () => {
    const run = runExample(server.issuer);
    try {
      const [, url, code] = await waitForOutput(run, /^To sign in, open (\S+) and enter the code (\S+)$/m);
      expect(url).toBe(`${server.issuer}/device`);
      const page = await newPage();
      await page.goto(url!);
      await signInIfAsked(page);
      await decide(page, code!, 'Allow', { type: true });
      await page.close();
      expect(await run.exited).toBe(0);
      expect(run.output()).toContain(`signed in as ${server.aliceSub} (alice)\n`);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGTERM');
    }
  });

  it('Deny: it says so and exits 1', async () => {
    const run = runExample(server.issuer);
    try {
      const [, completeUrl] = await waitForOutput(run, /^or open (\S+)$/m);
      const page = await newPage();
      await page.goto(completeUrl!);
      await signInIfAsked(page);
      await decide(page, new URL(completeUrl!).searchParams.get('user_code')!, 'Deny');
      await page.close();
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain('not signed in: access_denied\n');
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGTERM');
    }
  });
});

describe('nobody approves: the code expires (DEVICE_CODE_TTL=6)', () => {
  it('the server answers expired_token; openid-client on its own gives up at expires_in (OAUTH_TIMEOUT); the example says so', async () => {
    const short = await client.discovery(new URL(shortLived.issuer), CLIENT_ID, undefined, client.None(), { execute });
    const [response, other] = await Promise.all([
      client.initiateDeviceAuthorization(short, { scope: SCOPE }),
      client.initiateDeviceAuthorization(short, { scope: SCOPE }),
    ]);
    expect(response).toMatchObject({ expires_in: 6, interval: 1 });
    const started = Date.now();
    // All three wait at once: the example script as well.
    const script = runExample(shortLived.issuer);
    // openid-client stops polling by itself after expires_in (a local timeout, by then the code is
    // just expiring: no server answer); a longer signal lets the server's answer through.
    const [err, byDefault] = await Promise.all([
      client.pollDeviceAuthorizationGrant(short, response, undefined, { signal: AbortSignal.timeout(20_000) }).then(() => undefined, (e: unknown) => e),
      client.pollDeviceAuthorizationGrant(short, other).then(() => undefined, (e: unknown) => e),
    ]);
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    expect(err).toMatchObject({ error: 'expired_token', status: 400 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(5_000);
    expect(byDefault).toBeInstanceOf(client.ClientError);
    expect(byDefault).toMatchObject({ code: 'OAUTH_TIMEOUT' });

    try {
      expect(await script.exited).toBe(1);
      expect(script.output()).toMatch(/^not signed in: (expired_token|timed out: the code expired)$/m);
    } finally {
      if (script.child.exitCode === null) script.child.kill('SIGTERM');
    }
  });
});
