import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { codeFlow, REDIRECT } from '../support/refresh.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';

const IAT = 'initial-access-token-0123456789-abcdefghij';
const ADMIN = 'admin-token-0123456789-abcdefghijklmnopqrstuvwxyz';

async function startApp(env: Record<string, string> = {}): Promise<TestApp> {
  const app = await createTestApp({ ...FAST_ARGON2, INITIAL_ACCESS_TOKEN: IAT, ADMIN_TOKENS: ADMIN, ...env });
  await createUser(app.context, 'alice');
  return app;
}

const register = (app: TestApp, body: unknown) => app.server.inject({
  method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
});

describe('registration without a scope member (RFC 7591 §2, OpenID Connect Dynamic Registration)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await startApp(); });
  afterAll(async () => { await app.close(); });

  it('gets the OpenID Connect scopes, shown in the response, and can sign a user in with scope=openid', async () => {
    const res = await register(app, { redirect_uris: [REDIRECT], client_name: 'OIDC RP' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.scope).toBe('openid profile email address phone');
    const tokens = await codeFlow(app, { id: body.client_id, secret: body.client_secret }, 'openid email');
    expect(tokens.id_token).toEqual(expect.any(String));
    expect(tokens.scope).toBe('openid email');
  });

  it('adds offline_access when the client registers the refresh_token grant', async () => {
    const res = await register(app, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    expect(res.json().scope).toBe('openid profile email address phone offline_access');
    const tokens = await codeFlow(app, { id: res.json().client_id, secret: res.json().client_secret }, 'openid offline_access');
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  it('keeps a scope the client sent, and gives none to a client_credentials-only client', async () => {
    expect((await register(app, { redirect_uris: [REDIRECT], scope: 'openid' })).json().scope).toBe('openid');
    expect((await register(app, { grant_types: ['client_credentials'] })).json().scope).toBe('');
  });

  it('an RFC 7592 update without scope gets the default as well (§2.2: omitted members are the server\'s defaults)', async () => {
    const created = (await register(app, { redirect_uris: [REDIRECT], scope: 'openid' })).json();
    const res = await app.server.inject({
      method: 'PUT', url: new URL(created.registration_client_uri).pathname,
      headers: { authorization: `Bearer ${created.registration_access_token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ client_id: created.client_id, redirect_uris: [REDIRECT] }),
    });
    expect(res.json().scope).toBe('openid profile email address phone');
  });

  it('an administrator can still restrict such a client', async () => {
    const created = (await register(app, { redirect_uris: [REDIRECT] })).json();
    const res = await app.server.inject({
      method: 'PATCH', url: `/admin/clients/${created.client_id}`,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, payload: JSON.stringify({ scope: 'openid' }),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().scope).toBe('openid');
  });
});

describe('REGISTRATION_DEFAULT_SCOPE', () => {
  it('sets the default; none turns it off', async () => {
    const custom = await startApp({ REGISTRATION_DEFAULT_SCOPE: 'openid email' });
    try {
      expect((await register(custom, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] })).json().scope).toBe('openid email offline_access');
    } finally { await custom.close(); }
    const none = await startApp({ REGISTRATION_DEFAULT_SCOPE: 'none' });
    try {
      expect((await register(none, { redirect_uris: [REDIRECT] })).json().scope).toBe('');
    } finally { await none.close(); }
  });
});
