import { expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Browser, csrfOf, consentForm } from './browser.js';
import { basic, form, FORM_HEADERS } from './clients.js';
import { authorizeQuery, PASSWORD, pkce, redirectParams } from './oidc.js';

/** Anything with a server to inject into (a TestApp, or an App on a data directory). */
type TestApp = { server: FastifyInstance };

export const REDIRECT = 'https://app.example.com/callback';

export interface TestClient { id: string; secret?: string | undefined }

export interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
}

/** The client's credentials on a token, introspection or revocation request (Basic, or client_id for a public client). */
export function clientAuth(client: TestClient): { headers: Record<string, string>; params: Record<string, string> } {
  return client.secret
    ? { headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) }, params: {} }
    : { headers: { ...FORM_HEADERS }, params: { client_id: client.id } };
}

/**
 * The authorization code flow through sign-in and consent (a new browser unless given), up to
 * the code: the code and its PKCE verifier, not yet redeemed.
 */
export async function authorizationCode(app: TestApp, client: TestClient, scope: string, login = 'alice', b = new Browser(app), extra: Record<string, string | undefined> = {}): Promise<{ code: string; verifier: string }> {
  const p = pkce();
  let res = await b.request('GET', `/authorize?${authorizeQuery({
    response_type: 'code', client_id: client.id, redirect_uri: REDIRECT, scope, state: 's', code_challenge: p.challenge, code_challenge_method: 'S256', ...extra,
  })}`);
  if (res.statusCode === 303 && res.headers.location!.startsWith('/login?')) {
    const loginUrl = new URL(res.headers.location!, 'http://localhost');
    const page = await b.request('GET', loginUrl.pathname + loginUrl.search);
    res = await b.request('POST', '/login', { csrf: csrfOf(page.body), login, password: PASSWORD, return_to: loginUrl.searchParams.get('return_to')! });
    res = await b.request('GET', res.headers.location!);
  }
  if (res.statusCode === 200 && res.body.includes('Allow access?')) {
    const action = /action="(\/interaction\/[^"]+)"/.exec(res.body)![1]!;
    res = await b.request('POST', action, consentForm(res.body, 'allow'));
  }
  return { code: redirectParams(res.headers.location).code!, verifier: p.verifier };
}

/** An authorization_code grant request; the raw response. */
export function redeemCode(app: TestApp, client: TestClient, code: string, verifier: string, extra: Record<string, string | string[]> = {}) {
  const auth = clientAuth(client);
  return app.server.inject({
    method: 'POST', url: '/token', headers: auth.headers,
    payload: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...auth.params, ...extra }),
  });
}

/**
 * The authorization code flow through sign-in and consent (a new browser unless given), then the
 * code redeemed: the token response.
 */
export async function codeFlow(app: TestApp, client: TestClient, scope: string, login = 'alice', b = new Browser(app)): Promise<TokenBody & { code: string; verifier: string }> {
  const { code, verifier } = await authorizationCode(app, client, scope, login, b);
  const token = await redeemCode(app, client, code, verifier);
  expect(token.statusCode).toBe(200);
  return { ...(token.json() as TokenBody), code, verifier };
}

/** A refresh_token grant request; the raw response. */
export function refresh(app: TestApp, client: TestClient, refreshToken: string, extra: Record<string, string | string[]> = {}) {
  const auth = clientAuth(client);
  return app.server.inject({
    method: 'POST', url: '/token', headers: auth.headers,
    payload: form({ grant_type: 'refresh_token', refresh_token: refreshToken, ...auth.params, ...extra }),
  });
}
