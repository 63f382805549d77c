import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { createClient, eventually, registryOf } from '../support/clients.js';
import { authorizeQuery, createUser, FAST_ARGON2, redirectParams } from '../support/oidc.js';
import { authorizationCode, REDIRECT, redeemCode, type TestClient } from '../support/refresh.js';

const IAT = 'initial-access-token-0123456789-abcdefghij';
const NO_PKCE = { code_challenge: undefined, code_challenge_method: undefined };

describe('PKCE exemption for confidential OpenID Connect clients that send a nonce (RFC 9700 §2.1.1)', () => {
  let app: TestApp;
  let rp: TestClient;
  let strict: TestClient;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, INITIAL_ACCESS_TOKEN: IAT });
    await createUser(app.context, 'alice');
    const r = await createClient(app.context, { redirect_uris: [REDIRECT], scope: 'openid profile', skip_consent: true, require_pkce: false }, 'passport-rp');
    rp = { id: r.client.clientId, secret: r.clientSecret! };
    const s = await createClient(app.context, { redirect_uris: [REDIRECT], scope: 'openid profile', skip_consent: true }, 'strict-rp');
    strict = { id: s.client.clientId, secret: s.clientSecret! };
  });
  afterAll(async () => { await app.close(); });

  /** GET /authorize (no session yet: validation comes first); the redirect's parameters. */
  const authorizeError = async (client: TestClient, params: Record<string, string | undefined>) => {
    const res = await new Browser(app).request('GET', `/authorize?${authorizeQuery({ response_type: 'code', client_id: client.id, redirect_uri: REDIRECT, state: 's', ...params })}`);
    return redirectParams(res.headers.location);
  };

  it('an exempted client signs in without code_challenge and without code_verifier when it sends scope openid and a nonce', async () => {
    const { code } = await authorizationCode(app, rp, 'openid profile', 'alice', new Browser(app), { ...NO_PKCE, nonce: 'n-0S6_WzA2Mj' });
    const res = await redeemCode(app, rp, code, '', { code_verifier: [] });
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeJwt(res.json().id_token).nonce).toBe('n-0S6_WzA2Mj');
  });

  it('still requires PKCE of it without a nonce, or without openid', async () => {
    expect(await authorizeError(rp, { scope: 'openid' })).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('code_challenge is required') });
    expect(await authorizeError(rp, { scope: 'profile', nonce: 'n-1' })).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('code_challenge is required') });
  });

  it('requires PKCE of every other client, nonce or not (the default)', async () => {
    expect(await authorizeError(strict, { scope: 'openid', nonce: 'n-1' })).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('code_challenge is required') });
    const { code } = await authorizationCode(app, strict, 'openid', 'alice', new Browser(app), { nonce: 'n-2' });
    expect((await redeemCode(app, strict, code, '', { code_verifier: [] })).json()).toMatchObject({ error: 'invalid_request' });
  });

  it('refuses a code_verifier for a code issued without a challenge (PKCE downgrade), leaving the code usable', async () => {
    const { code } = await authorizationCode(app, rp, 'openid', 'alice', new Browser(app), { ...NO_PKCE, nonce: 'n-3' });
    const downgraded = await redeemCode(app, rp, code, 'x'.repeat(43));
    expect(downgraded.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('RFC 9700 §2.1.1') });
    expect((await redeemCode(app, rp, code, '', { code_verifier: [] })).statusCode).toBe(200);
  });

  it('an exempted client that does send a challenge must send its verifier', async () => {
    const { code, verifier } = await authorizationCode(app, rp, 'openid', 'alice', new Browser(app), { nonce: 'n-4' });
    expect((await redeemCode(app, rp, code, '', { code_verifier: [] })).json()).toMatchObject({ error: 'invalid_request' });
    expect((await redeemCode(app, rp, code, verifier)).statusCode).toBe(200);
  });

  it('is an administrator\'s to give: refused at /register, refused for a public client, audited', async () => {
    const res = await app.server.inject({
      method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ redirect_uris: [REDIRECT], scope: 'openid', require_pkce: false }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_client_metadata', error_description: 'require_pkce: may only be set by an administrator' });
    await expect(createClient(app.context, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', require_pkce: false })).rejects.toThrow(/only a confidential client/);
    expect(app.logs.lines.find((l) => l.event === 'client.created' && l.client_id === 'passport-rp')).toMatchObject({ pkce: 'exempted' });
    await registryOf(app.context).update('passport-rp', { require_pkce: true }, { source: 'admin', merge: true });
    expect(app.logs.lines.find((l) => l.event === 'client.updated' && l.client_id === 'passport-rp')).toMatchObject({ pkce: 'required' });
    // The client cache hears of the change by NOTIFY on PostgreSQL: eventually.
    await eventually(async () => {
      const res = await new Browser(app).request('GET', `/authorize?${authorizeQuery({ response_type: 'code', client_id: rp.id, redirect_uri: REDIRECT, scope: 'openid', nonce: 'n-5' })}`);
      return res.headers.location?.startsWith(REDIRECT) === true && redirectParams(res.headers.location).error === 'invalid_request';
    });
  });
});
