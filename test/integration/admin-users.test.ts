import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { authorizeQuery, createUser, FAST_ARGON2, PASSWORD, pkce } from '../support/oidc.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';

const SCOPE = 'openid offline_access';
const ADMIN_NAME = 'ops-bea';
const ADMIN = 'admin-credential-users-0123456789-0123456789';
const NEW_PASSWORD = 'a brand new passphrase 42';

/** A relying party's back-channel logout endpoint: records the sid of each logout token. */
class Receiver {
  readonly sids: string[] = [];
  private server!: Server;
  base = '';
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; }).on('end', () => {
        this.sids.push(decodeJwt(new URLSearchParams(body).get('logout_token')!).sid as string);
        res.writeHead(200, { 'cache-control': 'no-store' }).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('admin API: users, sessions, grants and single access tokens (issue 25)', () => {
  let app: TestApp;
  const rp = new Receiver();
  let web: TestClient;
  let other: TestClient;
  let carolId: string;

  beforeAll(async () => {
    await rp.start();
    app = await createTestApp({ ...FAST_ARGON2, ADMIN_TOKENS: `${ADMIN_NAME}:${ADMIN}`, OUTBOUND_ALLOWED_HOSTS: '127.0.0.1', PASSWORD_MIN_LENGTH: '12' });
    const make = async (extra: Record<string, unknown> = {}) => {
      const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE, skip_consent: true, ...extra });
      return { id: c.client.clientId, secret: c.clientSecret! };
    };
    web = await make({ backchannel_logout_uri: `${rp.base}/bc` });
    other = await make();
    carolId = (await createUser(app.context, 'carol')).id;
    await createUser(app.context, 'dave');
    for (const name of ['ann', 'anna', 'annabel', 'bob', 'zed']) await createUser(app.context, name, { email: `${name}@corp.example` });
  });
  afterAll(async () => {
    await app.close();
    await rp.stop();
  });

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, credential = ADMIN) => app.server.inject({
    method, url,
    headers: { authorization: `Bearer ${credential}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  const works = async (client: TestClient, token: string) => (await refresh(app, client, token)).statusCode === 200;
  const introspect = async (client: TestClient, token: string) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret!) }, payload: form({ token }),
  })).json().active as boolean;
  const events = async (name: string) => {
    await app.context.audit.flush();
    return app.logs.lines.filter((l) => l.event === name);
  };
  /** Whether the browser's SSO session still signs it in (else /authorize sends it to /login). */
  const signedIn = async (b: Browser) => {
    const p = pkce();
    const res = await b.request('GET', `/authorize?${authorizeQuery({ response_type: 'code', client_id: web.id, redirect_uri: REDIRECT, scope: 'openid', state: 's', code_challenge: p.challenge, code_challenge_method: 'S256' })}`);
    return !(res.statusCode === 303 && res.headers.location!.startsWith('/login?'));
  };

  it('the stolen refresh token: revoking one grant ends it and its access tokens, the user\'s other grant still works', async () => {
    const stolen = await codeFlow(app, web, SCOPE, 'carol');
    const kept = await codeFlow(app, web, SCOPE, 'carol');
    const stolenGid = decodeJwt(stolen.access_token).gid as string;
    // A rotation records when and from where.
    const rotated = await refresh(app, web, kept.refresh_token!);
    expect(rotated.statusCode).toBe(200);
    const keptGid = decodeJwt(kept.access_token).gid as string;

    const listed = await call('GET', '/admin/users/carol/grants');
    expect(listed.statusCode).toBe(200);
    const grants = listed.json().grants as Array<Record<string, unknown>>;
    const byId = new Map(grants.map((g) => [g.grant_id, g]));
    expect(byId.get(stolenGid)).toMatchObject({ client_id: web.id, sub: carolId, scope: SCOPE, state: 'active', created_ip: '127.0.0.1', last_rotated_at: null, last_rotated_ip: null });
    expect(byId.get(keptGid)).toMatchObject({ state: 'active', created_ip: '127.0.0.1', last_rotated_ip: '127.0.0.1' });
    expect(typeof byId.get(keptGid)!.last_rotated_at).toBe('string');
    expect(byId.get(stolenGid)).not.toHaveProperty('refresh_token');

    expect((await call('DELETE', `/admin/grants/${stolenGid}`, {})).statusCode).toBe(400); // no reason
    const res = await call('DELETE', `/admin/grants/${stolenGid}`, { reason: 'refresh token seen from two countries, INC-7' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ grant_id: stolenGid, client_id: web.id, sub: carolId, revoked: true });
    expect(await works(web, stolen.refresh_token!)).toBe(false);
    expect(await introspect(web, stolen.access_token)).toBe(false);
    expect(await works(web, rotated.json().refresh_token)).toBe(true);
    expect(await introspect(web, rotated.json().access_token)).toBe(true);
    // Again: found, already revoked.
    expect((await call('DELETE', `/admin/grants/${stolenGid}?reason=again`)).json()).toMatchObject({ revoked: false });

    const after = (await call('GET', '/admin/users/carol/grants')).json().grants as Array<Record<string, unknown>>;
    expect(after.find((g) => g.grant_id === stolenGid)).toMatchObject({ state: 'revoked', revoked_reason: 'refresh token seen from two countries, INC-7' });
    const audited = (await events('family.revoked')).filter((e) => e.grant_id === stolenGid);
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ admin: ADMIN_NAME, revoked_by: 'admin_api', sub: carolId, client_id: web.id, of: 'grant', reason: 'refresh token seen from two countries, INC-7' });

    const byClient = (await call('GET', `/admin/clients/${web.id}/grants`)).json();
    expect((byClient.grants as Array<{ grant_id: string }>).map((g) => g.grant_id)).toEqual(expect.arrayContaining([stolenGid, keptGid]));
    expect((await call('GET', '/admin/clients/no-such-client/grants')).statusCode).toBe(404);
  });

  it('the compromised account: set-password ends every session (apps told by back-channel logout), revokes every grant, and signs the old cookie out', async () => {
    const b1 = new Browser(app);
    const b2 = new Browser(app);
    const t1 = await codeFlow(app, web, SCOPE, 'dave', b1);
    const t2 = await codeFlow(app, other, SCOPE, 'dave', b2);
    const sid1 = decodeJwt(t1.id_token!).sid as string;
    const sessions = (await call('GET', '/admin/users/dave/sessions')).json();
    expect((sessions.sessions as Array<{ sid: string }>).map((s) => s.sid).sort()).toEqual([sid1, decodeJwt(t2.id_token!).sid as string].sort());
    expect(sessions.sessions.find((s: { sid: string }) => s.sid === sid1)).toMatchObject({ amr: ['pwd'], backchannel_logout_clients: [web.id] });

    const res = await call('POST', '/admin/users/dave/password', { password: NEW_PASSWORD });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ sessions_ended: 2, families_revoked: 2 });
    await app.services.sessionEnd.idle();
    expect(rp.sids).toContain(sid1);
    expect(await signedIn(b1)).toBe(false);
    expect(await signedIn(b2)).toBe(false);
    expect(await works(web, t1.refresh_token!)).toBe(false);
    expect(await works(other, t2.refresh_token!)).toBe(false);
    expect(await introspect(web, t1.access_token)).toBe(false);
    expect((await call('GET', '/admin/users/dave/sessions')).json().sessions).toEqual([]);
    // The new password signs in; the old does not.
    const old = await new Browser(app).signIn('dave', PASSWORD);
    expect([old.statusCode, old.headers.location]).not.toEqual([303, '/']);
    const fresh = await new Browser(app).signIn('dave', NEW_PASSWORD);
    expect([fresh.statusCode, fresh.headers.location]).toEqual([303, '/']);
    const [set] = await events('user.password_set');
    expect(set).toMatchObject({ admin: ADMIN_NAME, by: 'admin_api', sessions_ended: 2, families_revoked: 2 });
    expect(JSON.stringify(app.logs.lines)).not.toContain(NEW_PASSWORD);
    expect((await events('session.ended_by_admin')).filter((e) => e.sid === sid1)).toMatchObject([{ admin: ADMIN_NAME }]);
  });

  it('set-password can keep the sessions and grants; a too-short password is refused', async () => {
    const b = new Browser(app);
    const t = await codeFlow(app, web, SCOPE, 'ann', b);
    expect((await call('POST', '/admin/users/ann/password', { password: 'short' })).statusCode).toBe(400);
    const res = await call('POST', '/admin/users/ann/password', { password: NEW_PASSWORD, end_sessions: false, revoke_tokens: false });
    expect(res.json()).toMatchObject({ sessions_ended: 0, families_revoked: 0 });
    expect(await signedIn(b)).toBe(true);
    expect(await works(web, t.refresh_token!)).toBe(true);
  });

  it('ends one session or all of a user\'s, telling the apps, and 404s an unknown session', async () => {
    const b1 = new Browser(app);
    const b2 = new Browser(app);
    const t1 = await codeFlow(app, web, SCOPE, 'anna', b1);
    await codeFlow(app, web, SCOPE, 'anna', b2);
    const sid1 = decodeJwt(t1.id_token!).sid as string;
    const one = await call('DELETE', `/admin/users/anna/sessions/${sid1}`);
    expect(one.json()).toEqual({ sub: expect.any(String), sessions_ended: 1 });
    await app.services.sessionEnd.idle();
    expect(rp.sids).toContain(sid1);
    expect(await signedIn(b1)).toBe(false);
    expect(await signedIn(b2)).toBe(true);
    expect((await call('DELETE', `/admin/users/anna/sessions/${sid1}`)).statusCode).toBe(404);
    expect((await call('DELETE', '/admin/users/anna/sessions')).json()).toMatchObject({ sessions_ended: 1 });
    expect(await signedIn(b2)).toBe(false);
    // The refresh families are not sessions: they stay until revoked.
    expect(await works(web, t1.refresh_token!)).toBe(true);
  });

  it('lists and searches users with exact keyset pages, never a password hash', async () => {
    const page1 = (await call('GET', '/admin/users?q=ANN&limit=2')).json();
    expect(page1.users.map((u: { username: string }) => u.username)).toEqual(['ann', 'anna']);
    expect(page1.users[0]).toMatchObject({ has_password: true, email: 'ann@corp.example' });
    expect(JSON.stringify(page1)).not.toContain('argon2');
    const page2 = (await call('GET', `/admin/users?q=ANN&limit=2&cursor=${page1.next_cursor}`)).json();
    expect(page2).toEqual({ users: [expect.objectContaining({ username: 'annabel' })] });
    const byMail = (await call('GET', '/admin/users?q=corp.example&limit=200')).json();
    expect(byMail.users.map((u: { username: string }) => u.username)).toEqual(['ann', 'anna', 'annabel', 'bob', 'zed']);
    expect((await call('GET', '/admin/users?q=%25')).json().users).toEqual([]); // % is plain text
    expect((await call('GET', '/admin/users?limit=0')).statusCode).toBe(400);
    expect((await call('GET', '/admin/users?cursor=%00')).statusCode).toBe(400);
    expect((await call('GET', '/admin/users/bob')).json()).toMatchObject({ username: 'bob', disabled: false });
  });

  it('creates, disables (ending sessions) and enables a user, audited', async () => {
    const created = await call('POST', '/admin/users', { username: 'erin', email: 'erin@example.com', password: NEW_PASSWORD });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ username: 'erin', email: 'erin@example.com', has_password: true, disabled: false });
    expect((await call('POST', '/admin/users', { username: 'erin' })).statusCode).toBe(400);
    expect((await call('POST', '/admin/users', { username: 'bad name' })).statusCode).toBe(400);
    expect((await call('POST', '/admin/users', { username: 'nopass' })).json()).toMatchObject({ has_password: false });
    const b = new Browser(app);
    await b.signIn('erin', NEW_PASSWORD);
    expect((await call('GET', '/admin/users/erin/sessions')).json().sessions).toHaveLength(1);
    expect((await call('POST', '/admin/users/erin/disable')).json()).toMatchObject({ disabled: true, sessions_ended: 1 });
    expect((await call('GET', '/admin/users/erin/sessions')).json().sessions).toEqual([]);
    expect((await call('POST', '/admin/users/erin/enable')).json()).toMatchObject({ disabled: false });
    expect(await events('user.created')).toMatchObject([{ username: 'erin', admin: ADMIN_NAME }, { username: 'nopass', admin: ADMIN_NAME }]);
    expect((await events('user.disabled')).at(-1)).toMatchObject({ admin: ADMIN_NAME, sessions_ended: 1 });
    expect((await events('user.enabled')).at(-1)).toMatchObject({ admin: ADMIN_NAME });
    expect(JSON.stringify(app.logs.lines)).not.toContain(NEW_PASSWORD);
  });

  it('denylists one access token by jti: introspection and UserInfo answer inactive at once, the grant lives on', async () => {
    const t = await codeFlow(app, web, SCOPE, 'bob');
    const jti = decodeJwt(t.access_token).jti as string;
    expect((await call('POST', '/admin/tokens/revoke', { jti })).statusCode).toBe(400); // no reason
    const res = await call('POST', '/admin/tokens/revoke', { jti, client_id: web.id, reason: 'token pasted in a public ticket' });
    expect(res.statusCode).toBe(200);
    const until = new Date(res.json().revoked_until).getTime();
    // The longest access-token lifetime (MAX_ACCESS_TOKEN_TTL, 24 h) from now.
    expect(Math.abs(until - (Date.now() + 86_400_000))).toBeLessThan(60_000);
    expect(await introspect(web, t.access_token)).toBe(false);
    const userinfo = await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${t.access_token}` } });
    expect(userinfo.statusCode).toBe(401);
    const again = await refresh(app, web, t.refresh_token!);
    expect(again.statusCode).toBe(200);
    expect(await introspect(web, again.json().access_token)).toBe(true);
    expect((await events('token.revoked')).at(-1)).toMatchObject({ jti, client_id: web.id, admin: ADMIN_NAME, revoked_by: 'admin_api', reason: 'token pasted in a public ticket' });
  });

  it('401 without the admin credential and 404 for an unknown user, session or grant on every route', async () => {
    const routes: Array<['GET' | 'POST' | 'DELETE', string, unknown?]> = [
      ['GET', '/admin/users'], ['POST', '/admin/users', { username: 'x1' }], ['GET', '/admin/users/nobody'],
      ['POST', '/admin/users/nobody/disable'], ['POST', '/admin/users/nobody/enable'],
      ['POST', '/admin/users/nobody/password', { password: NEW_PASSWORD }],
      ['GET', '/admin/users/nobody/sessions'], ['DELETE', '/admin/users/nobody/sessions'], ['DELETE', '/admin/users/nobody/sessions/s1'],
      ['GET', '/admin/users/nobody/grants'], ['GET', `/admin/clients/${web.id}/grants`],
      ['DELETE', '/admin/grants/no-such-grant', { reason: 'r' }], ['POST', '/admin/tokens/revoke', { jti: 'j', reason: 'r' }],
    ];
    for (const [method, url, body] of routes) {
      const res = await call(method, url, body, 'not-the-admin-credential-0123456789');
      expect(res.statusCode, `${method} ${url}`).toBe(401);
    }
    for (const [method, url, body] of routes.filter(([, url]) => url.includes('nobody') || url.includes('no-such'))) {
      const res = await call(method, url, body);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().error).toBe('not_found');
    }
    expect((await call('DELETE', '/admin/users/bob/sessions/no-such-sid')).statusCode).toBe(404);
    expect((await call('GET', '/admin/users/a%00b')).statusCode).toBe(404);
  });
});
