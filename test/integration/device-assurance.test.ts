import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/users/user-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const MFA = 'urn:latchkey:acr:mfa';

/**
 * A client that requires a level of everyone signing in to it (default_acr_values) gets no
 * device approved by a sign-in below it — whether the person goes through the code page (which
 * sends them to step up) or posts the decision form directly.
 */
describe('device approval and the client\'s default_acr_values', () => {
  let app: TestApp;
  let alice: User;
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 });
    await createClient(app.context, {
      client_name: 'Admin CLI', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid', default_acr_values: [MFA],
    }, 'admin-cli');
    alice = await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  const post = (url: string, body: Record<string, string>) => app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form(body) });
  const stepUp = (userCode: string) => `/login/factor?${new URLSearchParams({ return_to: `/device?user_code=${userCode}`, acr: MFA })}`;
  const statusOf = async (userCode: string) => (await app.context.store.db.selectFrom('device_authorizations').select('status')
    .where('user_code', '=', userCode.replace('-', '')).executeTakeFirstOrThrow()).status;

  it('the code page sends a password-only session to step up', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const res = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(stepUp(d.user_code));
    expect(await statusOf(d.user_code)).toBe('pending');
  });

  it('a decision to allow posted directly by a password-only session approves nothing: it is sent to step up', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const res = await b.request('POST', '/device/decision', { csrf: csrfOf(page.body), user_code: d.user_code, shown_to: alice.id, decision: 'allow' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(stepUp(d.user_code));
    expect(await statusOf(d.user_code)).toBe('pending');
    expect(app.logs.lines.filter((l) => l.event === 'device.approved')).toEqual([]);
    const poll = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'admin-cli' });
    expect(poll.statusCode).toBe(400);
    expect(poll.json().error).toBe('authorization_pending');
  });

  it('denying needs no step-up: a password-only session may refuse a device', async () => {
    const d = (await post('/device_authorization', { client_id: 'admin-cli', scope: 'openid' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const res = await b.request('POST', '/device/decision', { csrf: csrfOf(page.body), user_code: d.user_code, shown_to: alice.id, decision: 'deny' });
    expect(res.statusCode).toBe(200);
    expect(await statusOf(d.user_code)).toBe('denied');
  });
});
