import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/platform/crypto.js';
import { UserRepository, type User } from '../../src/users/user-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, consentForm, csrfOf } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, eventually, form, FORM_HEADERS, registryOf } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ISSUER = 'http://localhost:8080';
const API = 'https://api.example.com';
const REPORTS = 'https://reports.example.com';
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, any>;

interface Started { device_code: string; user_code: string; verification_uri: string; verification_uri_complete: string; expires_in: number; interval: number }

/**
 * RFC 8628 end to end over inject, on one app whose clock the tests move: POST
 * /device_authorization, the verification pages at /device, and polling /token.
 */
describe('device authorization grant (RFC 8628): every answer', () => {
  let app: TestApp;
  let alice: User;
  let bob: User;
  let boxSecret: string;
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, DEVICE_USER_CODE_ATTEMPTS: '3' }, { clock });
    await createClient(app.context, {
      client_name: 'TV app', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'],
      scope: 'openid profile offline_access', resources: [API, REPORTS],
    }, 'tv');
    await createClient(app.context, {
      client_name: 'Other TV', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid',
    }, 'tv2');
    boxSecret = (await createClient(app.context, {
      client_name: 'Set-top box', grant_types: [DEVICE_GRANT], scope: 'openid profile',
    }, 'box')).clientSecret!;
    await createClient(app.context, {
      client_name: 'Web app', token_endpoint_auth_method: 'none', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code'], scope: 'openid',
    }, 'web');
    alice = await createUser(app.context, 'alice');
    bob = await createUser(app.context, 'bob');
  });
  afterAll(async () => { await app.close(); });
  // Wrong codes count per account, session and address (at /device and /device/decision alike):
  // each test starts with those counters clear, whatever the tests before it entered.
  beforeEach(async () => { await app.context.store.db.deleteFrom('login_throttle').where('key', 'like', 'device:%').execute(); });

  const post = (url: string, body: Record<string, string | string[]>, headers: Record<string, string> = {}) =>
    app.server.inject({ method: 'POST', url, headers: { ...FORM_HEADERS, ...headers }, payload: form(body) });
  const start = async (body: Record<string, string | string[]> = { client_id: 'tv', scope: 'openid offline_access' }): Promise<Started> => {
    const res = await post('/device_authorization', body);
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const poll = (deviceCode: string, clientId = 'tv') => post('/token', { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId });
  const errorOf = async (deviceCode: string, clientId = 'tv') => {
    const res = await poll(deviceCode, clientId);
    expect(res.statusCode).toBe(400);
    return res.json() as { error: string; error_description: string };
  };
  const signedIn = async (username: string, address?: string) => {
    const b = new Browser(app, address);
    const res = await b.signIn(username, PASSWORD);
    expect(res.statusCode).toBe(303);
    return b;
  };
  /** The code page, then the code entered: the consent page. */
  const enter = async (b: Browser, userCode: string) => {
    const page = await b.request('GET', '/device');
    expect(page.statusCode).toBe(200);
    return b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: userCode });
  };
  const decide = async (b: Browser, userCode: string, decision: 'allow' | 'deny') => {
    const consent = await enter(b, userCode);
    expect(consent.statusCode).toBe(200);
    return b.request('POST', '/device/decision', { ...consentForm(consent.body, decision), user_code: userCode });
  };
  const statusOf = async (userCode: string) => (await app.context.store.db.selectFrom('device_authorizations').select('status')
    .where('user_code', '=', userCode.replace('-', '')).executeTakeFirstOrThrow()).status;
  const counter = async (name: string, labels: Record<string, string>) => {
    const { values } = await app.context.metrics.registry.getSingleMetric(name)!.get();
    return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  };
  const audited = (event: string) => app.logs.lines.filter((l) => l.event === event);

  describe('POST /device_authorization (RFC 8628 §3.1–3.2)', () => {
    it('answers exactly the RFC\'s members, no-store; a second request gets other codes', async () => {
      const res = await post('/device_authorization', { client_id: 'tv', scope: 'openid' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['cache-control']).toBe('no-store');
      const d = res.json();
      expect(d).toEqual({
        device_code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), user_code: expect.stringMatching(USER_CODE),
        verification_uri: `${ISSUER}/device`, verification_uri_complete: `${ISSUER}/device?user_code=${d.user_code}`,
        expires_in: 600, interval: 5,
      });
      const again = await start({ client_id: 'tv', scope: 'openid' });
      expect(again.device_code).not.toBe(d.device_code);
      expect(again.user_code).not.toBe(d.user_code);
      // Stored as the hash, never the code.
      const rows = await app.context.store.db.selectFrom('device_authorizations').selectAll().execute();
      expect(JSON.stringify(rows)).not.toContain(d.device_code);
    });

    it('a confidential client with HTTP Basic gets codes; without its secret it is 401 invalid_client', async () => {
      const ok = await post('/device_authorization', { scope: 'openid' }, { authorization: basic('box', boxSecret) });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().user_code).toMatch(USER_CODE);
      const none = await post('/device_authorization', { client_id: 'box', scope: 'openid' });
      expect(none.statusCode).toBe(401);
      expect(none.json().error).toBe('invalid_client');
      const wrong = await post('/device_authorization', { scope: 'openid' }, { authorization: basic('box', 'not-the-secret') });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error).toBe('invalid_client');
    });

    it('a client not registered for the device grant: 400 unauthorized_client', async () => {
      const res = await post('/device_authorization', { client_id: 'web', scope: 'openid' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('unauthorized_client');
    });

    it('a scope the client may not ask for: 400 invalid_scope', async () => {
      const res = await post('/device_authorization', { client_id: 'tv', scope: 'openid admin' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_scope');
    });

    it('a resource not registered for the client: 400 invalid_target', async () => {
      const res = await post('/device_authorization', { client_id: 'tv', scope: 'openid', resource: 'https://elsewhere.example.com' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_target');
    });

    it('client_id in the body not the authenticated client: 400 invalid_request', async () => {
      const res = await post('/device_authorization', { client_id: 'tv', scope: 'openid' }, { authorization: basic('box', boxSecret) });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    });

    it('a repeated parameter, or a body that is not a form: 400 invalid_request, nothing stored', async () => {
      const count = async () => (await app.context.store.db.selectFrom('device_authorizations').select('user_code').execute()).length;
      const before = await count();
      const repeated = await post('/device_authorization', { client_id: 'tv', scope: ['openid', 'openid'] });
      expect(repeated.statusCode).toBe(400);
      expect(repeated.json().error).toBe('invalid_request');
      const json = await app.server.inject({ method: 'POST', url: '/device_authorization', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ client_id: 'tv' }) });
      expect(json.statusCode).toBe(400);
      expect(json.json().error).toBe('invalid_request');
      const repeatedCode = await post('/token', { grant_type: DEVICE_GRANT, device_code: ['a'.repeat(43), 'b'.repeat(43)], client_id: 'tv' });
      expect(repeatedCode.statusCode).toBe(400);
      expect(repeatedCode.json().error).toBe('invalid_request');
      expect(await count()).toBe(before);
    });

    it('counts each issued authorization and audits it with the client and scope', async () => {
      const before = await counter('latchkey_device_authorizations_total', { outcome: 'issued' });
      const auditedBefore = audited('device.authorization_issued').length;
      await start({ client_id: 'tv', scope: 'openid profile' });
      expect(await counter('latchkey_device_authorizations_total', { outcome: 'issued' })).toBe(before + 1);
      const events = audited('device.authorization_issued');
      expect(events).toHaveLength(auditedBefore + 1);
      expect(events.at(-1)).toMatchObject({ client_id: 'tv', scope: 'openid profile' });
    });
  });

  describe('polling /token (RFC 8628 §3.4–3.5)', () => {
    it('authorization_pending until the person decides', async () => {
      const d = await start();
      expect((await errorOf(d.device_code)).error).toBe('authorization_pending');
      clock.advance(5);
      expect((await errorOf(d.device_code)).error).toBe('authorization_pending');
    });

    it('slow_down when polling sooner than the interval, each one adding 5 s (5 → 10 → 15); after the interval, pending again', async () => {
      const d = await start();
      const slowBefore = await counter('latchkey_device_polls_total', { answer: 'slow_down' });
      const pendingBefore = await counter('latchkey_device_polls_total', { answer: 'authorization_pending' });
      expect((await errorOf(d.device_code)).error).toBe('authorization_pending'); // t=0
      clock.advance(1);
      const first = await errorOf(d.device_code); // t=1: sooner than 5 s → slow_down, interval 10
      expect(first).toEqual({ error: 'slow_down', error_description: 'polling too fast: wait at least 10 seconds between requests' });
      clock.advance(6);
      const second = await errorOf(d.device_code); // t=7: 6 s after the last poll, sooner than 10 → 15
      expect(second).toEqual({ error: 'slow_down', error_description: 'polling too fast: wait at least 15 seconds between requests' });
      clock.advance(15);
      expect((await errorOf(d.device_code)).error).toBe('authorization_pending'); // t=22: 15 s after → pending, interval stays 15
      clock.advance(15);
      expect((await errorOf(d.device_code)).error).toBe('authorization_pending');
      // Pacing lives in memory (PollPacer): the stored row keeps the interval it was issued with.
      const row = await app.context.store.db.selectFrom('device_authorizations').select(['interval_seconds'])
        .where('user_code', '=', d.user_code.replace('-', '')).executeTakeFirstOrThrow();
      expect(row.interval_seconds).toBe(5);
      expect(await counter('latchkey_device_polls_total', { answer: 'slow_down' })).toBe(slowBefore + 2);
      expect(await counter('latchkey_device_polls_total', { answer: 'authorization_pending' })).toBe(pendingBefore + 3);
    });

    it('access_denied after Deny, and from then on; audited and counted', async () => {
      const d = await start();
      const deniedBefore = await counter('latchkey_device_authorizations_total', { outcome: 'denied' });
      const b = await signedIn('bob');
      const done = await decide(b, d.user_code, 'deny');
      expect(done.statusCode).toBe(200);
      expect(done.body).toContain('Device denied');
      expect(await statusOf(d.user_code)).toBe('denied');
      expect(await errorOf(d.device_code)).toEqual({ error: 'access_denied', error_description: 'the user denied this device' });
      clock.advance(5);
      expect((await errorOf(d.device_code)).error).toBe('access_denied');
      expect(await counter('latchkey_device_authorizations_total', { outcome: 'denied' })).toBe(deniedBefore + 1);
      expect(await counter('latchkey_device_polls_total', { answer: 'access_denied' })).toBeGreaterThanOrEqual(2);
      expect(audited('device.denied').at(-1)).toMatchObject({ client_id: 'tv', sub: bob.id, scope: 'openid offline_access' });
    });

    it('expired_token once DEVICE_CODE_TTL is over, even when approved in time', async () => {
      const pendingOne = await start();
      const approvedOne = await start();
      const b = await signedIn('alice');
      expect((await decide(b, approvedOne.user_code, 'allow')).statusCode).toBe(200);
      clock.advance(599);
      expect((await errorOf(pendingOne.device_code)).error).toBe('authorization_pending');
      clock.advance(1);
      const before = await counter('latchkey_device_polls_total', { answer: 'expired_token' });
      expect(await errorOf(pendingOne.device_code)).toEqual({ error: 'expired_token', error_description: 'the device code has expired; start again' });
      expect((await errorOf(approvedOne.device_code)).error).toBe('expired_token');
      expect(await counter('latchkey_device_polls_total', { answer: 'expired_token' })).toBe(before + 2);
      // Its user code no longer finds it either.
      const late = await enter(b, pendingOne.user_code);
      expect(late.statusCode).toBe(400);
    });

    it('invalid_grant for an unknown code, for another client\'s code (which stays usable), and after success', async () => {
      const unknown = await errorOf('u'.repeat(43));
      expect(unknown.error).toBe('invalid_grant');
      const d = await start();
      expect(await errorOf(d.device_code, 'tv2')).toEqual({ error: 'invalid_grant', error_description: 'the device code is invalid, or was issued to another client' });
      const b = await signedIn('alice');
      expect((await decide(b, d.user_code, 'allow')).statusCode).toBe(200);
      expect((await errorOf(d.device_code, 'tv2')).error).toBe('invalid_grant');
      expect(await statusOf(d.user_code)).toBe('approved');
      expect((await poll(d.device_code)).statusCode).toBe(200);
      clock.advance(5);
      expect(await errorOf(d.device_code)).toEqual({ error: 'invalid_grant', error_description: 'the device code was already used' });
    });

    it('10 polls at once after approval: exactly one 200, nine invalid_grant', async () => {
      const d = await start();
      const b = await signedIn('alice');
      expect((await decide(b, d.user_code, 'allow')).statusCode).toBe(200);
      const answers = await Promise.all(Array.from({ length: 10 }, () => poll(d.device_code)));
      expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(1);
      const refused = answers.filter((a) => a.statusCode !== 200);
      expect(refused.map((a) => [a.statusCode, a.json().error])).toEqual(Array.from({ length: 9 }, () => [400, 'invalid_grant']));
      expect(await app.context.store.db.selectFrom('refresh_families').select('id').where('client_id', '=', 'tv').where('user_id', '=', alice.id)
        .where('id', 'in', app.context.store.db.selectFrom('device_authorizations').select('grant_id').where('user_code', '=', d.user_code.replace('-', '')))
        .execute()).toHaveLength(1);
    });

    it('the tokens: the approving session\'s sub, sid, amr, acr and auth_time in the ID token; aud as `resource` asked; audited and counted', async () => {
      const d = await start({ client_id: 'tv', scope: 'openid profile offline_access', resource: REPORTS });
      const signInTime = Math.floor(clock.now().getTime() / 1000);
      const b = await signedIn('alice');
      // This browser's session (stored as the SHA-256 of its cookie).
      const session = await app.context.store.db.selectFrom('sessions').selectAll()
        .where('id_hash', '=', sha256(b.cookies.get('latchkey_session')!)).executeTakeFirstOrThrow();
      expect(session.user_id).toBe(alice.id);
      clock.advance(30);
      const approvedBefore = await counter('latchkey_device_authorizations_total', { outcome: 'approved' });
      const issuedBefore = await counter('latchkey_device_polls_total', { answer: 'issued' });
      const done = await decide(b, d.user_code, 'allow');
      expect(done.statusCode).toBe(200);
      expect(done.body).toContain('Device connected');
      expect(await counter('latchkey_device_authorizations_total', { outcome: 'approved' })).toBe(approvedBefore + 1);
      expect(audited('device.approved').at(-1)).toMatchObject({ client_id: 'tv', sub: alice.id, scope: 'openid profile offline_access' });
      clock.advance(10);
      const res = await poll(d.device_code);
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const t = res.json();
      expect(Object.keys(t).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type']);
      expect(t).toMatchObject({ token_type: 'Bearer', scope: 'openid profile offline_access' });
      const id = payloadOf(t.id_token);
      expect(id).toMatchObject({ iss: ISSUER, sub: alice.id, aud: 'tv', sid: session.sid, amr: session.amr, auth_time: signInTime });
      expect(session.amr).toEqual(['pwd']);
      expect(session.acr).toBe('urn:latchkey:acr:password');
      expect(id.acr).toBe(session.acr);
      expect(id.nonce).toBeUndefined();
      const at = payloadOf(t.access_token);
      expect(at).toMatchObject({ iss: ISSUER, sub: alice.id, aud: REPORTS, client_id: 'tv', scope: 'openid profile offline_access', auth_time: signInTime });
      expect(await counter('latchkey_device_polls_total', { answer: 'issued' })).toBe(issuedBefore + 1);
      expect(audited('device.redeemed').at(-1)).toMatchObject({ client_id: 'tv', sub: alice.id, grant_id: at.gid });
    });

    it('without `resource`, the client\'s first resource is the audience', async () => {
      const d = await start({ client_id: 'tv', scope: 'openid' });
      expect((await decide(await signedIn('alice'), d.user_code, 'allow')).statusCode).toBe(200);
      const res = await poll(d.device_code);
      expect(res.statusCode).toBe(200);
      expect(payloadOf(res.json().access_token).aud).toBe(API);
      expect(res.json().refresh_token).toBeUndefined();
    });

    it('`resource` at /token narrows the audience to resources granted (RFC 8707 §2.2); the refresh family keeps them all', async () => {
      const d = await start({ client_id: 'tv', scope: 'openid offline_access', resource: [API, REPORTS] });
      expect((await decide(await signedIn('alice'), d.user_code, 'allow')).statusCode).toBe(200);
      const res = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'tv', resource: REPORTS });
      expect(res.statusCode).toBe(200);
      expect(payloadOf(res.json().access_token).aud).toBe(REPORTS);
      const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: res.json().refresh_token, client_id: 'tv', resource: API });
      expect(refreshed.statusCode).toBe(200);
      expect(payloadOf(refreshed.json().access_token).aud).toBe(API);
    });

    it('a `resource` at /token not granted: invalid_target, and the device code is not used up', async () => {
      const d = await start({ client_id: 'tv', scope: 'openid', resource: API });
      expect((await decide(await signedIn('alice'), d.user_code, 'allow')).statusCode).toBe(200);
      const wrong = await post('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: 'tv', resource: REPORTS });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().error).toBe('invalid_target');
      expect(await statusOf(d.user_code)).toBe('approved');
      clock.advance(5);
      const right = await poll(d.device_code);
      expect(right.statusCode).toBe(200);
      expect(payloadOf(right.json().access_token).aud).toBe(API);
    });

    it('the refresh token refreshes (grant_type=refresh_token), keeping the grant', async () => {
      const d = await start({ client_id: 'tv', scope: 'openid offline_access' });
      expect((await decide(await signedIn('alice'), d.user_code, 'allow')).statusCode).toBe(200);
      const issuedBefore = await counter('latchkey_refresh_tokens_total', { outcome: 'issued' });
      const first = (await poll(d.device_code)).json();
      // A new family, counted as the authorization code grant's are.
      expect(await counter('latchkey_refresh_tokens_total', { outcome: 'issued' })).toBe(issuedBefore + 1);
      clock.advance(60);
      const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'tv' });
      expect(refreshed.statusCode).toBe(200);
      const r = refreshed.json();
      expect(r.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(r.refresh_token).not.toBe(first.refresh_token);
      expect(payloadOf(r.access_token)).toMatchObject({ sub: alice.id, client_id: 'tv', gid: payloadOf(first.access_token).gid });
    });

    it('an approved device is one of the person\'s apps on the account page; removing it there revokes its refresh token', async () => {
      await createUser(app.context, 'erin');
      const d = await start({ client_id: 'tv', scope: 'openid offline_access' });
      const b = await signedIn('erin');
      expect((await decide(b, d.user_code, 'allow')).statusCode).toBe(200);
      const t = (await poll(d.device_code)).json();
      expect(t.refresh_token).toEqual(expect.any(String));
      const account = await b.request('GET', '/account');
      expect(account.statusCode).toBe(200);
      expect(account.body).toContain('action="/account/apps/tv/withdraw"');
      expect(account.body).toContain('<strong>TV app</strong>');
      const removed = await b.request('POST', '/account/apps/tv/withdraw', { csrf: csrfOf(account.body) });
      expect(removed.statusCode).toBe(303);
      expect(removed.headers.location).toBe('/account?notice=app_removed');
      const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: 'tv' });
      expect(refreshed.statusCode).toBe(400);
      expect(refreshed.json().error).toBe('invalid_grant');
    });

    it('a user disabled after approving: invalid_grant at redemption', async () => {
      const dora = await createUser(app.context, 'dora');
      const d = await start();
      expect((await decide(await signedIn('dora'), d.user_code, 'allow')).statusCode).toBe(200);
      await new UserRepository(app.context.store.db).setDisabled(dora.id, true, clock.now());
      expect(await errorOf(d.device_code)).toEqual({ error: 'invalid_grant', error_description: 'the user who approved this device is no longer active' });
    });
  });

  describe('the verification pages (RFC 8628 §3.3)', () => {
    it('not signed in: 303 to /login with the page and code to come back to', async () => {
      const d = await start();
      const res = await app.server.inject({ method: 'GET', url: `/device?user_code=${d.user_code}` });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe(`/login?return_to=%2Fdevice%3Fuser_code%3D${d.user_code}`);
      const bare = await app.server.inject({ method: 'GET', url: '/device' });
      expect(bare.statusCode).toBe(303);
      expect(bare.headers.location).toBe('/login?return_to=%2Fdevice');
    });

    it('verification_uri_complete only fills the code in: the form, no consent, nothing decided', async () => {
      const d = await start();
      const b = await signedIn('alice');
      const res = await b.request('GET', new URL(d.verification_uri_complete).pathname + new URL(d.verification_uri_complete).search);
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain(`name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" required maxlength="32" value="${d.user_code}"`);
      expect(res.body).toContain('action="/device"');
      expect(res.body).not.toContain('A device is asking');
      expect(res.body).not.toContain('name="decision"');
      expect(await statusOf(d.user_code)).toBe('pending');
    });

    it('what the link pre-fills is escaped, and more than 32 characters is not taken', async () => {
      const b = await signedIn('alice');
      const hostile = await b.request('GET', `/device?user_code=${encodeURIComponent('"><script>x</script>')}`);
      expect(hostile.statusCode).toBe(200);
      expect(hostile.body).not.toContain('<script>x');
      expect(hostile.body).toContain('value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"');
      const long = await b.request('GET', `/device?user_code=${'B'.repeat(33)}`);
      expect(long.statusCode).toBe(200);
      expect(long.body).toContain('maxlength="32" value=""');
    });

    it('a code posted without the form\'s CSRF token: 403, nothing looked up or counted', async () => {
      const d = await start();
      const b = await signedIn('alice', '10.0.4.1');
      const res = await b.request('POST', '/device', { csrf: 'forged', user_code: d.user_code });
      expect(res.statusCode).toBe(403);
      const decision = await b.request('POST', '/device/decision', { csrf: 'forged', user_code: d.user_code, shown_to: alice.id, decision: 'allow' });
      expect(decision.statusCode).toBe(403);
      expect(await statusOf(d.user_code)).toBe('pending');
      expect(await app.context.store.db.selectFrom('login_throttle').select('key').where('key', 'like', 'device:ip:10.0.4.1%').execute()).toEqual([]);
    });

    it('a wrong code: 400 and the code page again', async () => {
      const b = await signedIn('alice', '10.0.1.1');
      const res = await enter(b, 'BCDF-GHJK');
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('That code is not right, or has expired.');
      expect(res.body).not.toContain('name="decision"');
      // Counted against the address and the session.
      expect(await app.context.store.db.selectFrom('login_throttle').select(['key', 'failures']).where('key', 'like', 'device:ip:10.0.1.1%').execute())
        .toEqual([{ key: 'device:ip:10.0.1.1', failures: 1 }]);
      const { sid } = await app.context.store.db.selectFrom('sessions').select('sid')
        .where('id_hash', '=', sha256(b.cookies.get('latchkey_session')!)).executeTakeFirstOrThrow();
      expect(await app.context.store.db.selectFrom('login_throttle').select('failures').where('key', '=', `device:session:${sid}`).execute())
        .toEqual([{ failures: 1 }]);
    });

    it(`${3} wrong codes in one session: 429 with Retry-After, even for the right code, from another address too`, async () => {
      const d = await start();
      const b = await signedIn('alice', '10.0.2.1');
      for (const wrong of ['BCDF-GHJK', 'ZZZZ-ZZZZ', 'not a code']) expect((await enter(b, wrong)).statusCode).toBe(400);
      const blocked = await enter(b, d.user_code);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.headers['retry-after']).toBe('900');
      expect(blocked.body).toContain('Too many wrong codes. Try again in 900 seconds.');
      // The same session from elsewhere: still blocked.
      const moved = new Browser(app, '10.0.2.2');
      moved.cookies = new Map(b.cookies);
      const elsewhere = await enter(moved, d.user_code);
      expect(elsewhere.statusCode).toBe(429);
      expect(elsewhere.headers['retry-after']).toBe('900');
      // Another session at that other address is not.
      const other = await signedIn('bob', '10.0.2.2');
      const consent = await enter(other, d.user_code);
      expect(consent.statusCode).toBe(200);
      expect(consent.body).toContain('A device is asking');
      expect(audited('device.code_throttled').length).toBeGreaterThanOrEqual(2);
      expect(await statusOf(d.user_code)).toBe('pending');
    });

    it('20 codes entered at once in one session: exactly 3 are looked at, 17 refused before any lookup (429)', async () => {
      const d = await start();
      const b = await signedIn('bob', '10.0.10.1');
      const page = await b.request('GET', '/device');
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: i === 19 ? d.user_code : 'BCDF-GHJK' })));
      expect(answers.filter((a) => a.statusCode === 429)).toHaveLength(17);
      expect(answers.filter((a) => a.statusCode !== 429)).toHaveLength(3);
    });

    it('3 wrong codes by one account: 429 for a new session of it, from a new address, for the right code', async () => {
      const d = await start();
      const first = await signedIn('alice', '10.0.9.1');
      for (const wrong of ['BCDF-GHJK', 'ZZZZ-ZZZZ', 'XXXX-XXXX']) expect((await enter(first, wrong)).statusCode).toBe(400);
      const again = await signedIn('alice', '10.0.9.2');
      const blocked = await enter(again, d.user_code);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.headers['retry-after']).toBe('900');
      // The decision endpoint counts and refuses the same way (it is no way around the code page).
      const page = await again.request('GET', '/device');
      const posted = await again.request('POST', '/device/decision', { csrf: csrfOf(page.body), user_code: d.user_code, shown_to: alice.id, decision: 'allow' });
      expect(posted.statusCode).toBe(429);
      expect(await statusOf(d.user_code)).toBe('pending');
    });

    it('3 wrong codes from one address: 429 for another session at that address, for the right code', async () => {
      const d = await start();
      const first = await signedIn('alice', '10.0.3.1');
      for (const wrong of ['BCDF-GHJK', 'ZZZZ-ZZZZ', 'XXXX-XXXX']) expect((await enter(first, wrong)).statusCode).toBe(400);
      const second = await signedIn('bob', '10.0.3.1');
      const blocked = await enter(second, d.user_code);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.headers['retry-after']).toBe('900');
      // The block runs 15 minutes from the third wrong code.
      clock.advance(300);
      const later = await enter(second, d.user_code);
      expect(later.statusCode).toBe(429);
      expect(later.headers['retry-after']).toBe('600');
    });

    it('a decision posted by someone other than the person it was shown to changes nothing', async () => {
      const d = await start();
      const a = await signedIn('alice');
      const consent = await enter(a, d.user_code);
      expect(consent.statusCode).toBe(200);
      const fields = consentForm(consent.body, 'allow');
      expect(fields.shown_to).toBe(alice.id);
      // Bob, in his own browser, posts Alice's form (with his own CSRF token).
      const bb = await signedIn('bob');
      const page = await bb.request('GET', '/device');
      const res = await bb.request('POST', '/device/decision', { ...fields, csrf: csrfOf(page.body), user_code: d.user_code });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe(`/login?return_to=%2Fdevice%3Fuser_code%3D${d.user_code}`);
      expect(await statusOf(d.user_code)).toBe('pending');
      expect((await errorOf(d.device_code)).error).toBe('authorization_pending');
      // Alice's own decision still counts.
      const done = await a.request('POST', '/device/decision', { ...fields, user_code: d.user_code });
      expect(done.statusCode).toBe(200);
      expect(await statusOf(d.user_code)).toBe('approved');
    });

    it('an Allow for a client disabled since the consent page was shown approves nothing (re-enabled, it is still pending)', async () => {
      await createClient(app.context, { client_name: 'Kiosk', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'openid' }, 'kiosk');
      const d = await start({ client_id: 'kiosk', scope: 'openid' });
      const b = await signedIn('alice');
      const consent = await enter(b, d.user_code);
      expect(consent.statusCode).toBe(200);
      await registryOf(app.context).setDisabled('kiosk', true, { source: 'cli' });
      await eventually(async () => (await app.services.clients.get('kiosk'))?.disabled === true);
      const approvedBefore = await counter('latchkey_device_authorizations_total', { outcome: 'approved' });
      const res = await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code });
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('This code has expired or was already used.');
      expect(await statusOf(d.user_code)).toBe('pending');
      expect(await counter('latchkey_device_authorizations_total', { outcome: 'approved' })).toBe(approvedBefore);
      await registryOf(app.context).setDisabled('kiosk', false, { source: 'cli' });
      await eventually(async () => (await app.services.clients.get('kiosk'))?.disabled === false);
      expect((await errorOf(d.device_code, 'kiosk')).error).toBe('authorization_pending');
    });

    it('a second decision on the same code: "expired or already used", nothing changes', async () => {
      const d = await start();
      const b = await signedIn('alice');
      const consent = await enter(b, d.user_code);
      const allow = await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: d.user_code });
      expect(allow.statusCode).toBe(200);
      const deniedBefore = await counter('latchkey_device_authorizations_total', { outcome: 'denied' });
      const deny = await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'deny'), user_code: d.user_code });
      expect(deny.statusCode).toBe(400);
      expect(deny.body).toContain('This code has expired or was already used.');
      expect(await statusOf(d.user_code)).toBe('approved');
      expect(await counter('latchkey_device_authorizations_total', { outcome: 'denied' })).toBe(deniedBefore);
      // (A third code entry from this session would be over DEVICE_USER_CODE_ATTEMPTS=3: every entry counts.)
      expect((await poll(d.device_code)).statusCode).toBe(200);
    });
  });

  describe('cleanup', () => {
    it('the cleanup job removes expired device authorizations and keeps live ones', async () => {
      const old = await start();
      clock.advance(601);
      const live = await start();
      const removed = await app.services.runCleanup();
      expect(removed.device_authorizations).toBeGreaterThanOrEqual(1);
      const left = (await app.context.store.db.selectFrom('device_authorizations').select('user_code').execute()).map((r) => r.user_code);
      expect(left).toContain(live.user_code.replace('-', ''));
      expect(left).not.toContain(old.user_code.replace('-', ''));
      // Every row left is live.
      const expired = await app.context.store.db.selectFrom('device_authorizations').select('user_code').where('expires_at', '<', clock.now()).execute();
      expect(expired).toEqual([]);
      // A removed code answers invalid_grant.
      expect((await errorOf(old.device_code)).error).toBe('invalid_grant');
    });
  });
});
