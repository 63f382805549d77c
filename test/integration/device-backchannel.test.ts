import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, consentForm, csrfOf } from '../support/browser.js';
import { createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
// Nothing listens there: the notification is attempted and fails, which the audit event says.
const LOGOUT_URI = 'http://127.0.0.1:9/bc';

/**
 * A device client registered for back-channel logout gets an ID token carrying the approving
 * session's sid: it takes part in that session, so ending the session notifies it, as it does a
 * client that got its ID token by an authorization code (OpenID Connect Back-Channel Logout 1.0 §2).
 */
describe('device flow and back-channel logout', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, BACKCHANNEL_LOGOUT_TIMEOUT: '1', OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' });
    await createClient(app.context, {
      client_name: 'TV app', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid', backchannel_logout_uri: LOGOUT_URI,
    }, 'tv');
    await createClient(app.context, {
      client_name: 'Plain TV', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid',
    }, 'plain-tv');
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  const post = (url: string, body: Record<string, string>) => app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form(body) });
  const approve = async (b: Browser, clientId: string) => {
    const d = (await post('/device_authorization', { client_id: clientId, scope: 'openid' })).json();
    const page = await b.request('GET', '/device');
    const consent = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: d.user_code });
    expect((await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code })).statusCode).toBe(200);
    const tokens = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: clientId });
    expect(tokens.statusCode).toBe(200);
    return JSON.parse(Buffer.from(tokens.json().id_token.split('.')[1], 'base64url').toString()).sid as string;
  };

  it('the approval records the client in the session; signing out notifies it (and not a client without a logout URI)', async () => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const sid = await approve(b, 'tv');
    expect(await approve(b, 'plain-tv')).toBe(sid);
    const rows = await app.context.store.db.selectFrom('session_clients').select(['sid', 'client_id']).execute();
    expect(rows).toEqual([{ sid, client_id: 'tv' }]);

    const page = await b.request('GET', '/logout');
    expect((await b.request('POST', '/logout', { csrf: csrfOf(page.body), decision: 'sign_out' })).statusCode).toBe(200);
    await app.services.sessionEnd.idle();
    const told = app.logs.lines.filter((l) => l.event === 'logout.backchannel');
    expect(told.map((l) => [l.client_id, l.sid])).toEqual([['tv', sid]]);
    expect(await app.context.store.db.selectFrom('session_clients').select('sid').execute()).toEqual([]);
  });
});
