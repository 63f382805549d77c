import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionRepository } from '../../src/users/session-store.js';
import { UserRepository } from '../../src/users/user-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { twoInstanceStores } from '../support/store.js';
import { basic, createClient, eventually, form, FORM_HEADERS, registryOf } from '../support/clients.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';

const SCOPE = 'openid profile offline_access';
const ADMIN = 'ops:admin-secret-0123456789abcdef-0123';

/** The sum of a metric's series matching `labels` in the server's registry (a histogram's `_count`/`_sum` by that name; 0 when none). */
async function metric(app: TestApp, name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = name.replace(/_(count|sum)$/, '');
  const found = (await app.context.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name || m.name === family);
  const series = (found?.values ?? []).filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)
    && ((v as { metricName?: string }).metricName ?? found!.name) === name);
  return series.reduce((sum, v) => sum + v.value, 0);
}

describe('operator metrics in the server registry', () => {
  let app: TestApp;
  const clock = new ManualClock();
  let web: TestClient;
  let rs: TestClient;
  let svc: TestClient;
  let stranger: TestClient;
  let aliceId: string;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, ADMIN_TOKENS: ADMIN }, { clock });
    const w = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
    web = { id: w.client.clientId, secret: w.clientSecret! };
    const r = await createClient(app.context, { grant_types: ['client_credentials'], introspect_any_token: true });
    rs = { id: r.client.clientId, secret: r.clientSecret! };
    const s = await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read' });
    svc = { id: s.client.clientId, secret: s.clientSecret! };
    const x = await createClient(app.context, { grant_types: ['client_credentials'] });
    stranger = { id: x.client.clientId, secret: x.clientSecret! };
    aliceId = (await createUser(app.context, 'alice')).id;
  });
  afterAll(async () => { await app.close(); });

  const post = (url: string, caller: TestClient, params: Record<string, string>) => app.server.inject({
    method: 'POST', url, headers: { ...FORM_HEADERS, authorization: basic(caller.id, caller.secret!) }, payload: form(params),
  });
  const introspect = async (token: string, caller: TestClient) => (await post('/introspect', caller, { token })).json() as { active: boolean };
  const m2mToken = async (client: TestClient = svc) => (await post('/token', client, { grant_type: 'client_credentials' })).json().access_token as string;
  const inactive = (reason: string) => metric(app, 'latchkey_introspections_inactive_total', { reason });

  it('introspection: each {active:false} answer counted once under its reason, an active answer under none', async () => {
    const reasons = ['malformed', 'unknown_key', 'invalid_signature', 'expired', 'revoked', 'unknown_client', 'client_disabled', 'user_disabled',
      'not_allowed', 'unknown_refresh_token', 'rotated_refresh_token'];
    const before = Object.fromEntries(await Promise.all(reasons.map(async (r) => [r, await inactive(r)] as const)));
    const expectCounted = async (reason: string) => {
      for (const r of reasons) expect(await inactive(r) - before[r]!, `${r} after a ${reason} answer`).toBe(r === reason ? 1 : 0);
      before[reason]! += 1;
    };

    const token = await m2mToken();
    expect(await introspect(token, rs)).toEqual(expect.objectContaining({ active: true }));
    await expectCounted('none'); // nothing counted

    expect(await introspect('not a token', rs)).toEqual({ active: false });
    await expectCounted('malformed');

    const [header, payload, signature] = token.split('.') as [string, string, string];
    const otherKid = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(header, 'base64url').toString()), kid: 'no-such-key' })).toString('base64url');
    expect(await introspect(`${otherKid}.${payload}.${signature}`, rs)).toEqual({ active: false });
    await expectCounted('unknown_key');

    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    expect(await introspect(`${header}.${payload}.${flipped}`, rs)).toEqual({ active: false });
    await expectCounted('invalid_signature');

    expect(await introspect(token, stranger)).toEqual({ active: false });
    await expectCounted('not_allowed');

    const doomed = await m2mToken();
    expect((await post('/revoke', svc, { token: doomed })).statusCode).toBe(200);
    expect(await introspect(doomed, rs)).toEqual({ active: false });
    await expectCounted('revoked');

    const off = await createClient(app.context, { grant_types: ['client_credentials'] }, 'soon-disabled');
    const offToken = await m2mToken({ id: 'soon-disabled', secret: off.clientSecret! });
    await registryOf(app.context).setDisabled('soon-disabled', true, { source: 'cli' });
    expect(await introspect(offToken, rs)).toEqual({ active: false });
    await expectCounted('client_disabled');

    const gone = await createClient(app.context, { grant_types: ['client_credentials'] }, 'soon-deleted');
    const goneToken = await m2mToken({ id: 'soon-deleted', secret: gone.clientSecret! });
    await registryOf(app.context).delete('soon-deleted', { source: 'cli' });
    expect(await introspect(goneToken, rs)).toEqual({ active: false });
    await expectCounted('unknown_client');

    expect(await introspect('A'.repeat(43), rs)).toEqual({ active: false });
    await expectCounted('unknown_refresh_token');

    const flow = await codeFlow(app, web, SCOPE);
    expect((await refresh(app, web, flow.refresh_token!)).statusCode).toBe(200);
    expect(await introspect(flow.refresh_token!, rs)).toEqual({ active: false });
    await expectCounted('rotated_refresh_token');

    const bob = await createUser(app.context, 'bob');
    const bobs = await codeFlow(app, web, SCOPE, 'bob');
    await new UserRepository(app.context.store.db).setDisabled(bob.id, true, clock.now());
    expect(await introspect(bobs.access_token, rs)).toEqual({ active: false });
    await expectCounted('user_disabled');
    expect(await introspect(bobs.refresh_token!, rs)).toEqual({ active: false });
    await expectCounted('user_disabled');

    clock.advance(24 * 3600);
    expect(await introspect(token, rs)).toEqual({ active: false });
    await expectCounted('expired');
  });

  it('live SSO sessions and refresh families: one COUNT on scrape, cached 15 s', async () => {
    clock.advance(30 * 24 * 3600); // everything earlier has expired
    const sessions = () => metric(app, 'latchkey_sso_sessions');
    const families = () => metric(app, 'latchkey_refresh_families');
    clock.advance(15);
    expect([await sessions(), await families()]).toEqual([0, 0]);

    const first = await codeFlow(app, web, SCOPE); // alice signs in: a session, a family
    await codeFlow(app, web, SCOPE); // a second sign-in (new browser): another session and family
    expect([await sessions(), await families()]).toEqual([0, 0]); // cached for 15 s
    clock.advance(15);
    expect([await sessions(), await families()]).toEqual([2, 2]);

    expect((await post('/revoke', web, { token: first.refresh_token! })).statusCode).toBe(200);
    await new SessionRepository(app.context.store.db).endAllOf(aliceId, clock.now());
    clock.advance(15);
    expect([await sessions(), await families()]).toEqual([0, 1]);
  });

  it('admin API calls counted by route pattern, method and status, never the raw URL', async () => {
    const admin = (method: 'GET' | 'POST', url: string, token = 'admin-secret-0123456789abcdef-0123') =>
      app.server.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
    expect((await admin('GET', '/admin/clients/soon-disabled')).statusCode).toBe(200);
    expect((await admin('GET', `/admin/clients/${web.id}`)).statusCode).toBe(200);
    expect((await admin('GET', '/admin/clients/nobody')).statusCode).toBe(404);
    expect((await admin('POST', '/admin/clients/soon-disabled/enable', 'wrong')).statusCode).toBe(401);
    const calls = (labels: Record<string, string>) => metric(app, 'latchkey_admin_requests_total', labels);
    expect(await calls({ route: '/admin/clients/:client_id', method: 'GET', status: '200' })).toBe(2);
    expect(await calls({ route: '/admin/clients/:client_id', method: 'GET', status: '404' })).toBe(1);
    expect(await calls({ route: '/admin/clients/:client_id/enable', method: 'POST', status: '401' })).toBe(1);
    const routes = (await app.context.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'latchkey_admin_requests_total')!.values.map((v) => v.labels.route);
    expect(routes.every((r) => typeof r === 'string' && r.startsWith('/admin') && !r.includes('soon-disabled') && !r.includes(web.id))).toBe(true);
    // Not an admin route: not counted here.
    await app.server.inject({ method: 'GET', url: '/.well-known/openid-configuration' });
    const after = (await app.context.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'latchkey_admin_requests_total')!.values;
    expect(after.map((v) => v.labels.route)).toEqual(routes);
    expect(after.reduce((sum, v) => sum + v.value, 0)).toBe(4);
  });

  it('signing keys: state="active" exported for every configured algorithm', async () => {
    const text = await app.context.metrics.registry.getSingleMetricAsString('latchkey_signing_keys');
    expect(text).toMatch(/latchkey_signing_keys\{state="active",alg="ES256"\} 1/);
  });
});

describe('revocation propagation across two instances sharing a store', () => {
  const toClose: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => { for (const c of toClose.reverse()) await c.close(); });

  it('each instance observes, from the NOTIFY, the time from the revocation to having applied it', async () => {
    const stores = await twoInstanceStores();
    toClose.push(stores);
    // B's clock runs 2 s ahead of A's: what B observes is exactly that lag, A (its own notification) 0.
    const clockA = new ManualClock('2030-01-01T00:00:00Z');
    const clockB = new ManualClock('2030-01-01T00:00:02Z');
    const a = await createTestApp({}, { store: stores.a, clock: clockA });
    toClose.push(a);
    const b = await createTestApp({}, { store: stores.b, clock: clockB });
    toClose.push(b);
    const created = await createClient(a.context, { grant_types: ['client_credentials'], scope: 'read' }, 'prop');
    const auth = basic('prop', created.clientSecret!);
    const post = (app: TestApp, url: string, params: Record<string, string>) =>
      app.server.inject({ method: 'POST', url, headers: { ...FORM_HEADERS, authorization: auth }, payload: form(params) });
    const token = (await post(a, '/token', { grant_type: 'client_credentials' })).json().access_token as string;
    const count = (app: TestApp) => metric(app, 'latchkey_revocation_propagation_seconds_count', { kind: 'access_token' });
    const sum = (app: TestApp) => metric(app, 'latchkey_revocation_propagation_seconds_sum', { kind: 'access_token' });
    expect([await count(a), await count(b)]).toEqual([0, 0]);

    expect((await post(a, '/revoke', { token })).statusCode).toBe(200);
    await eventually(async () => (await count(a)) === 1 && (await count(b)) === 1);
    expect([await sum(a), await sum(b)]).toEqual([0, 2]);
    expect((await post(b, '/introspect', { token })).json()).toEqual({ active: false });
    const text = await b.context.metrics.registry.getSingleMetricAsString('latchkey_revocation_propagation_seconds');
    expect(text).toContain('latchkey_revocation_propagation_seconds_bucket{le="1",kind="access_token"} 0');
    expect(text).toContain('latchkey_revocation_propagation_seconds_bucket{le="2.5",kind="access_token"} 1');
  });
});
