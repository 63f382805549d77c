import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { revokeIssuedTokens } from '../../src/oauth/clients/revoke-issued.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('device authorization grant (RFC 8628) over inject', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 });
    await createClient(app.context, {
      client_name: 'TV app', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'],
      scope: 'openid profile offline_access',
    }, 'tv');
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  const post = (url: string, body: Record<string, string>) => app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form(body) });

  it('issues codes, answers authorization_pending, and after approval the tokens exactly once', async () => {
    const started = await post('/device_authorization', { client_id: 'tv', scope: 'openid offline_access' });
    expect(started.statusCode).toBe(200);
    const d = started.json();
    expect(d).toEqual({
      device_code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), user_code: expect.stringMatching(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/),
      verification_uri: 'http://localhost:8080/device', verification_uri_complete: `http://localhost:8080/device?user_code=${d.user_code}`,
      expires_in: 600, interval: 5,
    });
    const pending = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'tv' });
    expect(pending.statusCode).toBe(400);
    expect(pending.json().error).toBe('authorization_pending');

    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const entry = await b.request('GET', `/device?user_code=${d.user_code}`);
    expect(entry.statusCode).toBe(200);
    const consent = await b.request('POST', '/device', { csrf: csrfOf(entry.body), user_code: d.user_code.toLowerCase() });
    expect(consent.statusCode).toBe(200);
    expect(consent.body).toContain('A device is asking');
    const shownTo = /name="shown_to" value="([^"]+)"/.exec(consent.body)![1]!;
    const done = await b.request('POST', '/device/decision', { csrf: csrfOf(consent.body), user_code: d.user_code, shown_to: shownTo, decision: 'allow' });
    expect(done.statusCode).toBe(200);
    expect(done.body).toContain('Device connected');

    const tokens = await Promise.all([1, 2, 3].map(() => post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'tv' })));
    const ok = tokens.filter((t) => t.statusCode === 200);
    expect(ok).toHaveLength(1);
    expect(Object.keys(ok[0]!.json()).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type']);
    expect(tokens.filter((t) => t.statusCode === 400).map((t) => t.json().error)).toEqual(['invalid_grant', 'invalid_grant']);
  });

  it('refuses a device approved before its client\'s tokens were revoked (revoke-issued): nothing is minted after the cutoff', async () => {
    const d = (await post('/device_authorization', { client_id: 'tv', scope: 'openid offline_access' })).json();
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const entry = await b.request('GET', `/device?user_code=${d.user_code}`);
    const consent = await b.request('POST', '/device', { csrf: csrfOf(entry.body), user_code: d.user_code });
    const shownTo = /name="shown_to" value="([^"]+)"/.exec(consent.body)![1]!;
    expect((await b.request('POST', '/device/decision', { csrf: csrfOf(consent.body), user_code: d.user_code, shown_to: shownTo, decision: 'allow' })).statusCode).toBe(200);
    // The cutoff is the next whole second: wait it out so that the approval is strictly before it.
    await revokeIssuedTokens({ registry: app.services.registry, families: app.services.families, audit: app.context.audit }, 'tv', 'leaked device client', { by: 'test' });
    await new Promise((r) => setTimeout(r, 1100));
    const refused = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'tv' });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({ error: 'invalid_grant', error_description: 'the device code was issued before this client\'s tokens were revoked; start again' });
    // A device authorized after the cutoff is served.
    const later = (await post('/device_authorization', { client_id: 'tv', scope: 'openid' })).json();
    const entry2 = await b.request('GET', `/device?user_code=${later.user_code}`);
    const consent2 = await b.request('POST', '/device', { csrf: csrfOf(entry2.body), user_code: later.user_code });
    const shownTo2 = /name="shown_to" value="([^"]+)"/.exec(consent2.body)![1]!;
    await b.request('POST', '/device/decision', { csrf: csrfOf(consent2.body), user_code: later.user_code, shown_to: shownTo2, decision: 'allow' });
    expect((await post('/token', { grant_type: DEVICE_GRANT, device_code: later.device_code, client_id: 'tv' })).statusCode).toBe(200);
  });
});
