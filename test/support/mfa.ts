import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { Secret, TOTP as Otp } from 'otpauth';
import { expect } from 'vitest';
import { AuditEventRepository, type AuditEventRow } from '../../src/platform/observability/audit-event-store.js';
import type { TestApp } from './app.js';
import { consentForm, type Browser } from './browser.js';
import { basic, createClient, form, FORM_HEADERS } from './clients.js';
import { authorizeQuery, pkce, redirectParams } from './oidc.js';
import type { SoftwareAuthenticator } from './webauthn.js';

/** The issuer's origin in the test configuration (testConfig), which passkeys are bound to. */
export const ORIGIN = 'http://localhost:8080';
export const RP_ID = 'localhost';

/** The code an authenticator app shows for `secret` at `at` (otpauth itself). */
export const totpCode = (secret: string, at: Date) => Otp.generate({ secret: Secret.fromBase32(secret), timestamp: at.getTime() });

/** A six-digit code that matches none of the steps the server accepts at `at` (±1 step). */
export function wrongTotpCode(secret: string, at: Date): string {
  const taken = new Set([-30_000, 0, 30_000].map((d) => totpCode(secret, new Date(at.getTime() + d))));
  for (let n = 123456; ; n = (n + 111_111) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!taken.has(code)) return code;
  }
}

/** The CSRF cookie's value: the double-submit token every form and passkey call carries. */
export function csrfCookie(b: Browser): string {
  const value = b.cookies.get('latchkey_csrf');
  if (!value) throw new Error('no CSRF cookie');
  return value;
}

/**
 * Enrols TOTP through /account/totp in `b`'s session (which must be allowed to add a factor);
 * returns the secret. The confirming code is the one of `at`'s step, so that step is used.
 */
export async function enrolTotp(b: Browser, at: Date, returnTo = '/account'): Promise<{ secret: string; location: string }> {
  const setup = await b.request('GET', `/account/totp?${new URLSearchParams({ return_to: returnTo })}`);
  expect(setup.statusCode).toBe(200);
  const secret = /<code id="totp-secret">([^<]+)<\/code>/.exec(setup.body)![1]!.replace(/\s+/g, '');
  const confirmed = await b.request('POST', '/account/totp', { csrf: csrfCookie(b), return_to: returnTo, code: totpCode(secret, at) });
  expect(confirmed.statusCode).toBe(303);
  return { secret, location: confirmed.headers.location! };
}

/** Makes a set of recovery codes in `b`'s session; the ten codes as shown. */
export async function makeRecoveryCodes(b: Browser): Promise<string[]> {
  const res = await b.request('POST', '/account/recovery-codes', { csrf: csrfCookie(b), return_to: '/account' });
  expect(res.statusCode).toBe(200);
  return [...res.body.matchAll(/<li><code>([a-z2-7-]+)<\/code><\/li>/g)].map((m) => m[1]!);
}

/** Enrols a passkey of `key` through the account endpoints in `b`'s session; the JSON answer. */
export async function enrolPasskey(b: Browser, key: SoftwareAuthenticator, extra: Record<string, string> = {}) {
  const csrf = csrfCookie(b);
  const options = await b.json('/account/passkeys/options', { csrf });
  expect(options.statusCode).toBe(200);
  return b.json('/account/passkeys', { csrf, name: 'Key', return_to: '/account', ...extra, response: key.create(options.body as never) });
}

/**
 * Where the browser goes after adding a passkey in a sign-in that used no second factor: the
 * factor page, to use the new passkey once (adding proved nothing), then — with no recovery codes
 * yet — their offer, then `next`.
 */
export function afterFirstPasskey(next: string, recoveryCodes = false): string {
  const then = recoveryCodes ? next : `/account/recovery-codes?${new URLSearchParams({ return_to: next })}`;
  return `/login/factor?${new URLSearchParams({ return_to: then, acr: 'urn:latchkey:acr:phishing-resistant' })}`;
}

/** A second-factor passkey assertion in `b`'s session (options for its account, then the response). */
export async function passkeySecondFactor(b: Browser, key: SoftwareAuthenticator, overrides: Parameters<SoftwareAuthenticator['get']>[1] = {}, extra: Record<string, string> = {}) {
  const csrf = csrfCookie(b);
  const options = await b.json('/login/factor/passkey/options', { csrf });
  expect(options.statusCode).toBe(200);
  return b.json('/login/factor/passkey', { csrf, return_to: '/account', ...extra, response: key.get(options.body as never, overrides) });
}

/** The audit events `event` of `sub`, oldest first (after flushing the buffer). */
export async function auditEvents(app: TestApp, event: string, sub?: string): Promise<AuditEventRow[]> {
  await app.context.audit.flush();
  return new AuditEventRepository(app.context.store.db).query({ event, ...(sub ? { sub } : {}) });
}

/** The value of one metric series, e.g. `latchkey_sign_in_factors_total{method="totp",step="second",outcome="success"}` (0 when absent). */
export async function metricSample(app: TestApp, series: string): Promise<number> {
  const line = (await app.context.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

// ── The authorization code flow around a step-up ──

export const REDIRECT = 'https://app.example.com/callback';

export interface TestClient { id: string; secret: string }

/** A confidential web client for the code flow (refresh tokens with offline_access), besides `extra` metadata. */
export async function codeFlowClient(app: TestApp, extra: Record<string, unknown> = {}): Promise<TestClient> {
  const created = await createClient(app.context, {
    client_name: 'Invoices', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile offline_access', ...extra,
  });
  return { id: created.client.clientId, secret: created.clientSecret! };
}

/** An authorization request URL of `client` (PKCE S256), and its verifier. */
export function authorizeUrl(client: TestClient, extra: Record<string, string | undefined> = {}): { url: string; verifier: string } {
  const pair = pkce();
  return {
    verifier: pair.verifier,
    url: `/authorize?${authorizeQuery({
      response_type: 'code', client_id: client.id, redirect_uri: REDIRECT, scope: 'openid profile',
      state: 'st', nonce: 'n', code_challenge: pair.challenge, code_challenge_method: 'S256', ...extra,
    })}`,
  };
}

/** Allows on the consent page when `res` is one; else `res`. */
export async function allowIfAsked(b: Browser, res: Awaited<ReturnType<Browser['request']>>) {
  if (res.statusCode !== 200 || !res.body.includes('Allow access?')) return res;
  const action = /action="(\/interaction\/[^"]+)"/.exec(res.body)![1]!;
  return b.request('POST', action, consentForm(res.body, 'allow'));
}

/** The code a redirect to the client carries (the test fails when it carries none). */
export function codeOf(res: { statusCode: number; headers: Record<string, unknown> }): string {
  expect(res.statusCode).toBe(303);
  const params = redirectParams(res.headers.location as string);
  expect(params.error).toBeUndefined();
  return params.code!;
}

export async function redeem(app: TestApp, client: TestClient, code: string, verifier: string) {
  const res = await app.server.inject({
    method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) },
    payload: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
  });
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json() as { access_token: string; id_token: string; refresh_token?: string };
  return { ...body, id: decodeJwt(body.id_token), at: decodeJwt(body.access_token) };
}

/** Every inline script of a page is allowed by its CSP (script-src hashes), as a browser would check. */
export function expectScriptsAllowed(res: { body: string; headers: Record<string, unknown> }): void {
  const scripts = [...res.body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  expect(scripts.length).toBeGreaterThan(0);
  const csp = String(res.headers['content-security-policy']);
  for (const s of scripts) expect(csp).toContain(`'sha256-${createHash('sha256').update(s).digest('base64')}'`);
}
