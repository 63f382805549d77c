import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';

const SCOPE = 'openid profile offline_access';

describe('refresh tokens at /introspect (RFC 7662 §2.2)', () => {
  let app: TestApp;
  const clock = new ManualClock();
  let web: TestClient;
  let rs: TestClient;
  let stranger: TestClient;
  let aliceId: string;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    const w = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE, refresh_token_idle_ttl: 600, refresh_token_absolute_ttl: 1800 });
    web = { id: w.client.clientId, secret: w.clientSecret! };
    const r = await createClient(app.context, { grant_types: ['client_credentials'], introspect_any_token: true });
    rs = { id: r.client.clientId, secret: r.clientSecret! };
    const s = await createClient(app.context, { grant_types: ['client_credentials'] });
    stranger = { id: s.client.clientId, secret: s.clientSecret! };
    aliceId = (await createUser(app.context, 'alice')).id;
  });
  afterAll(async () => { await app.close(); });

  const introspect = async (token: string, caller: TestClient, extra: Record<string, string> = {}) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(caller.id, caller.secret!) }, payload: form({ token, ...extra }),
  })).json() as Record<string, unknown>;

  it('a live refresh token is active for the client it was issued to and for a resource server, with or without the hint', async () => {
    const body = await codeFlow(app, web, SCOPE);
    const exp = Math.floor(clock.now().getTime() / 1000) + 600;
    const expected = { active: true, client_id: web.id, scope: SCOPE, sub: aliceId, token_type: 'refresh_token', exp, iss: 'http://localhost:8080' };
    expect(await introspect(body.refresh_token!, web, { token_type_hint: 'refresh_token' })).toEqual(expected);
    expect(await introspect(body.refresh_token!, web)).toEqual(expected);
    expect(await introspect(body.refresh_token!, rs, { token_type_hint: 'access_token' })).toEqual(expected);
  });

  it('another client learns nothing (inactive), and the refusal is audited with the grant id', async () => {
    const body = await codeFlow(app, web, SCOPE);
    expect(await introspect(body.refresh_token!, stranger)).toEqual({ active: false });
    expect(app.logs.lines.find((l) => l.event === 'introspection.refused' && l.client_id === stranger.id)).toMatchObject({ token_client_id: web.id, grant_id: expect.any(String) });
  });

  it('a rotated-out token is inactive, even inside the grace window; its successor is active', async () => {
    const body = await codeFlow(app, web, SCOPE);
    const next = await refresh(app, web, body.refresh_token!);
    expect(next.statusCode).toBe(200);
    expect(await introspect(body.refresh_token!, web)).toEqual({ active: false });
    expect((await introspect(next.json().refresh_token, web)).active).toBe(true);
  });

  it('a revoked token is inactive, and so is an idle-expired one and an unknown one', async () => {
    const revoked = await codeFlow(app, web, SCOPE);
    const res = await app.server.inject({ method: 'POST', url: '/revoke', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) }, payload: form({ token: revoked.refresh_token! }) });
    expect(res.statusCode).toBe(200);
    expect(await introspect(revoked.refresh_token!, web)).toEqual({ active: false });
    expect(await introspect('A'.repeat(43), rs)).toEqual({ active: false });
    const idle = await codeFlow(app, web, SCOPE);
    clock.advance(601);
    expect(await introspect(idle.refresh_token!, web)).toEqual({ active: false });
  });

  it('a disabled user\'s refresh token is inactive', async () => {
    const { UserRepository } = await import('../../src/users/user-store.js');
    const carol = await createUser(app.context, 'carol');
    const body = await codeFlow(app, web, SCOPE, 'carol');
    expect((await introspect(body.refresh_token!, web)).active).toBe(true);
    await new UserRepository(app.context.store.db).setDisabled(carol.id, true, clock.now());
    expect(await introspect(body.refresh_token!, web)).toEqual({ active: false });
  });
});
