import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf, consentForm } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { createClient } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { freePort } from '../support/process.js';

/**
 * A relying party built on oauth4webapi (a certified OpenID RP library) refreshing over real
 * HTTP: the code flow's token response, then refresh_token grants validated by the library
 * (ID token on refresh per OpenID Connect Core §12.2), racing refreshes, and reuse.
 */
const options = { [oauth.allowInsecureRequests]: true } as const;
const REDIRECT = 'https://app.example.com/callback';

describe('refresh tokens with oauth4webapi over real HTTP', () => {
  let app: TestApp;
  let as: oauth.AuthorizationServer;
  let client: oauth.Client;
  let auth: oauth.ClientAuth;
  let userId: string;
  // Real time (the library checks iat and exp), moved by hand to pass the grace window.
  const clock = new ManualClock(new Date());

  beforeAll(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    app = await createTestApp({ ...FAST_ARGON2, ISSUER: issuer }, { clock });
    await app.server.listen({ port, host: '127.0.0.1' });
    as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { ...options, algorithm: 'oidc' }));
    const created = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile offline_access' });
    client = { client_id: created.client.clientId };
    auth = oauth.ClientSecretBasic(created.clientSecret!);
    userId = (await createUser(app.context, 'alice')).id;
  });
  afterAll(async () => { await app.close(); });

  /** Sign-in and consent (through the server's own pages), then the code redeemed by the library. */
  async function signInAndRedeem() {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: client.client_id, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile offline_access', state, nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    let res = await b.request('GET', url.pathname + url.search);
    if (res.statusCode === 200) {
      const action = /action="(\/interaction\/[^"]+)"/.exec(res.body)![1]!;
      res = await b.request('POST', action, consentForm(res.body, 'allow'));
    }
    const params = oauth.validateAuthResponse(as, client, new URL(res.headers.location!), state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, options);
    return oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true });
  }

  const refreshWith = async (token: string) =>
    oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, token, options));

  it('refreshes: a new refresh token, an access token userinfo accepts, an ID token the library validates', async () => {
    expect(as.grant_types_supported).toContain('refresh_token');
    expect(as.scopes_supported).toContain('offline_access');
    const first = await signInAndRedeem();
    expect(first.refresh_token).toBeDefined();
    const next = await refreshWith(first.refresh_token!);
    expect(next.refresh_token).toBeDefined();
    expect(next.refresh_token).not.toBe(first.refresh_token);
    expect(oauth.getValidatedIdTokenClaims(next)!.sub).toBe(userId);
    const info = await oauth.processUserInfoResponse(as, client, userId, await oauth.userInfoRequest(as, client, next.access_token, options));
    expect(info.sub).toBe(userId);
  });

  it('racing refreshes of one token over HTTP all get the same successor; reuse after the window is invalid_grant and kills the family', async () => {
    const first = await signInAndRedeem();
    const raced = await Promise.all(Array.from({ length: 6 }, () => refreshWith(first.refresh_token!)));
    expect(new Set(raced.map((r) => r.refresh_token)).size).toBe(1);
    const successor = raced[0]!.refresh_token!;

    clock.advance(31);
    const reuse = refreshWith(first.refresh_token!);
    await expect(reuse).rejects.toBeInstanceOf(oauth.ResponseBodyError);
    await expect(reuse).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(refreshWith(successor)).rejects.toMatchObject({ error: 'invalid_grant' });
    const info = oauth.userInfoRequest(as, client, raced[0]!.access_token, options).then((r) => oauth.processUserInfoResponse(as, client, userId, r));
    await expect(info).rejects.toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
  });
});
