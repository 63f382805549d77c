import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.js';
import { DEMO_CLIENT_ID } from '../../src/capabilities/demo/demo-data.js';
import { createTestApp, testConfig, type TestApp } from '../support/app.js';
import { Browser, csrfOf, consentForm } from '../support/browser.js';
import { FAST_ARGON2 } from '../support/oidc.js';
import { openTestStore } from '../support/store.js';

describe('demo data and the try-it page (embedded store, first start)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ...FAST_ARGON2, DEMO: 'true' }); });
  afterAll(async () => { await app.close(); });

  it('creates a demo user with a generated password and a public demo client, once', async () => {
    expect(app.demo?.username).toBe('demo');
    expect(app.demo?.password).toMatch(/^[A-Za-z0-9_-]{16}$/);
    const client = await app.context.store.db.selectFrom('clients').select(['client_id', 'client_type', 'metadata']).execute();
    expect(client).toEqual([{ client_id: DEMO_CLIENT_ID, client_type: 'public', metadata: expect.objectContaining({ redirect_uris: ['http://localhost:8080/try/callback'], token_endpoint_auth_method: 'none' }) }]);
    const users = await app.context.store.db.selectFrom('users').select(['username', 'password_hash']).execute();
    expect(users).toHaveLength(1);
    expect(users[0]!.password_hash).toMatch(/^\$argon2id\$/);
    expect(users[0]!.password_hash).not.toContain(app.demo!.password);
  });

  it('runs the whole flow at /try: sign in, consent, code, tokens, userinfo', async () => {
    const b = new Browser(app);
    let res = await b.request('GET', '/try');
    expect(res.statusCode).toBe(303);
    res = await b.request('GET', res.headers.location!);
    const login = new URL(res.headers.location!, 'http://localhost:8080');
    const page = await b.request('GET', login.pathname + login.search);
    res = await b.request('POST', '/login', { csrf: csrfOf(page.body), login: 'demo', password: app.demo!.password, return_to: login.searchParams.get('return_to')! });
    const consent = await b.request('GET', res.headers.location!);
    expect(consent.body).toContain('Allow Latchkey demo to access your account?');
    const action = /action="(\/interaction\/[^"]+)"/.exec(consent.body)![1]!;
    res = await b.request('POST', action, consentForm(consent.body, 'allow'));
    const callback = new URL(res.headers.location!);
    expect(callback.pathname).toBe('/try/callback');
    const result = await b.request('GET', callback.pathname + callback.search);
    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('<h1>It worked</h1>');
    expect(result.body).toContain('&quot;email&quot;: &quot;demo@example.com&quot;');
    expect(result.body).toContain(`&quot;aud&quot;: &quot;${DEMO_CLIENT_ID}&quot;`);
    // The exchange went through /token like any client's: counted.
    expect(await app.context.metrics.registry.getSingleMetricAsString('latchkey_tokens_issued_total')).toContain('grant_type="authorization_code",outcome="success"} 1');
  });

  it('a callback whose state does not match is refused', async () => {
    const b = new Browser(app);
    await b.request('GET', '/try');
    const res = await b.request('GET', '/try/callback?code=x&state=forged&iss=http%3A%2F%2Flocalhost%3A8080');
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('did not match');
  });

  it('creates nothing on a store that already has users or clients, and serves no /try then', async () => {
    const store = await openTestStore();
    try {
      const first = await createApp(testConfig({ ...FAST_ARGON2 }), { store });
      await first.close();
      const { UserRepository } = await import('../../src/users/user-store.js');
      await new UserRepository(store.db).create({ username: 'someone' }, new Date());
      const second = await createApp(testConfig({ ...FAST_ARGON2, DEMO: 'true' }), { store });
      expect(second.demo).toBeUndefined();
      expect((await second.server.inject('/try')).statusCode).toBe(404);
      await second.close();
    } finally {
      await store.close();
    }
  });

  it('never creates demo data for a public issuer', async () => {
    const other = await createTestApp({ ...FAST_ARGON2, DEMO: 'true', ISSUER: 'https://id.example.com' });
    try {
      expect(other.demo).toBeUndefined();
      expect(await other.context.store.db.selectFrom('users').select('id').execute()).toEqual([]);
      expect((await other.server.inject('/try')).statusCode).toBe(404);
    } finally {
      await other.close();
    }
  });
});
