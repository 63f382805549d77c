import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, consentForm, csrfOf } from '../support/browser.js';
import { form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const IAT = 'initial-access-token-0123456789-abcdefghij';

/** A CLI registering itself (RFC 7591) for the device grant only: public, no redirect URI (it has none to offer). */
describe('a device-only client from Dynamic Client Registration', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, INITIAL_ACCESS_TOKEN: IAT });
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  const register = (body: unknown) => app.server.inject({
    method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
  });
  const post = (url: string, body: Record<string, string>) => app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form(body) });

  it('is accepted (201): public, no secret, no redirect URIs, no response types — and completes the flow', async () => {
    const res = await register({ client_name: 'Deploy CLI', grant_types: [DEVICE_GRANT], token_endpoint_auth_method: 'none', scope: 'openid' });
    expect(res.statusCode).toBe(201);
    const c = res.json();
    expect(c).toMatchObject({ client_name: 'Deploy CLI', grant_types: [DEVICE_GRANT], token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], scope: 'openid' });
    expect(c.client_secret).toBeUndefined();

    const started = await post('/device_authorization', { client_id: c.client_id, scope: 'openid' });
    expect(started.statusCode).toBe(200);
    const d = started.json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const consent = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect(consent.statusCode).toBe(200);
    expect(consent.body).toContain('Deploy CLI');
    expect((await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code })).statusCode).toBe(200);
    const tokens = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: c.client_id });
    expect(tokens.statusCode).toBe(200);
    expect(Object.keys(tokens.json()).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'scope', 'token_type']);
  });

  it('asking for authorization_code as well still needs a redirect URI', async () => {
    const res = await register({ grant_types: [DEVICE_GRANT, 'authorization_code'], token_endpoint_auth_method: 'none', scope: 'openid' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_client_metadata');
  });
});
