import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRepository } from '../../src/oauth/clients/store.js';
import type { Store } from '../../src/platform/db/database.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS, registryOf } from '../support/clients.js';
import { DAY, ManualClock } from '../support/clock.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';
import { openTestStore } from '../support/store.js';

const ADMIN_NAME = 'ops-carol';
const ADMIN = 'admin-credential-0123456789-0123456789-incident';

function adminOf(app: TestApp) {
  return (method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown) => app.server.inject({
    method, url, headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
}

const clientCredentials = (app: TestApp, client: TestClient) => app.server.inject({
  method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret!) }, payload: form({ grant_type: 'client_credentials' }),
});

describe('a leaked client secret: rotate-secret with revoke_issued, revoke-issued, the tokens-not-before cutoff', () => {
  let app: TestApp;
  const clock = new ManualClock('2030-01-01T00:00:00.250Z');
  let m2m: TestClient;
  let web: TestClient;
  const admin = (...args: Parameters<ReturnType<typeof adminOf>>) => adminOf(app)(...args);

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, ADMIN_TOKENS: `${ADMIN_NAME}:${ADMIN}` }, { clock });
    const made = await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read' }, 'm2m');
    m2m = { id: 'm2m', secret: made.clientSecret! };
    const w = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' }, 'web');
    web = { id: 'web', secret: w.clientSecret! };
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  const introspect = async (caller: TestClient, token: string) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(caller.id, caller.secret!) }, payload: form({ token }),
  })).json() as { active: boolean };
  const userinfo = async (token: string) => (await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } })).statusCode;
  const events = async (name: string) => {
    await app.context.audit.flush();
    return app.logs.lines.filter((l) => l.event === name);
  };

  it('rotate-secret with revoke_issued: every earlier client_credentials token inactive, the old secret ends now, a later token active', async () => {
    const before = [(await clientCredentials(app, m2m)).json().access_token as string, (await clientCredentials(app, m2m)).json().access_token as string];
    for (const t of before) expect((await introspect(m2m, t)).active).toBe(true);

    const res = await admin('POST', '/admin/clients/m2m/rotate-secret', { revoke_issued: true, reason: 'secret pasted in a public gist, INC-77' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    // The cutoff is the next whole second: tokens are dated in seconds, so none issued in this one survives.
    expect(body).toMatchObject({ client_id: 'm2m', tokens_not_before: '2030-01-01T00:00:01.000Z', families_revoked: 0 });
    expect(body.client_secrets).toEqual([{ slot: 'current', expires_at: null }, { slot: 'previous', expires_at: '2030-01-01T00:00:00.250Z' }]);
    const rotated: TestClient = { id: 'm2m', secret: body.client_secret };

    expect((await clientCredentials(app, m2m)).statusCode).toBe(401); // the leaked secret: overlap 0 with revoke_issued
    for (const t of before) expect((await introspect(rotated, t)).active).toBe(false);

    clock.advance(1);
    const after = (await clientCredentials(app, rotated)).json().access_token as string;
    expect((await introspect(rotated, after)).active).toBe(true);
    for (const t of before) expect((await introspect(rotated, t)).active).toBe(false);
    m2m = rotated;

    const [rotatedEvent] = await events('client.secret_rotated');
    expect(rotatedEvent).toMatchObject({ client_id: 'm2m', admin: ADMIN_NAME, reason: 'secret pasted in a public gist, INC-77' });
    const revokedEvents = await events('client.tokens_revoked');
    expect(revokedEvents).toHaveLength(1);
    expect(revokedEvents[0]).toMatchObject({
      client_id: 'm2m', tokens_not_before: '2030-01-01T00:00:01.000Z', reason: 'secret pasted in a public gist, INC-77', families_revoked: 0, by: 'admin_api', admin: ADMIN_NAME,
    });
    expect(JSON.stringify(revokedEvents[0])).not.toContain(rotated.secret!);
  });

  it('revoke-issued: earlier access tokens inactive at /introspect and 401 at /userinfo, refresh tokens invalid_grant, later tokens live', async () => {
    const offline = await codeFlow(app, web, 'openid offline_access');
    // A token with no refresh family behind it (no offline_access): only the cutoff ends it.
    const online = await codeFlow(app, web, 'openid');
    expect(await userinfo(online.access_token)).toBe(200);
    expect((await introspect(web, offline.access_token)).active).toBe(true);

    expect((await admin('POST', '/admin/clients/web/revoke-issued', {})).statusCode).toBe(400); // a reason is required
    expect((await admin('POST', '/admin/clients/nobody/revoke-issued', { reason: 'x' })).statusCode).toBe(404);
    const res = await admin('POST', '/admin/clients/web/revoke-issued', { reason: 'client host compromised' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ client_id: 'web', tokens_not_before: '2030-01-01T00:00:02.000Z', families_revoked: 1 });

    expect((await introspect(web, offline.access_token)).active).toBe(false);
    expect((await introspect(web, online.access_token)).active).toBe(false);
    expect(await userinfo(online.access_token)).toBe(401);
    expect(await userinfo(offline.access_token)).toBe(401);
    const refused = await refresh(app, web, offline.refresh_token!);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toBe('invalid_grant');
    expect((await admin('GET', '/admin/clients/web')).json().tokens_not_before).toBe('2030-01-01T00:00:02.000Z');

    clock.advance(2);
    const later = await codeFlow(app, web, 'openid offline_access');
    expect(await userinfo(later.access_token)).toBe(200);
    expect((await introspect(web, later.access_token)).active).toBe(true);
    expect((await refresh(app, web, later.refresh_token!)).statusCode).toBe(200);
  });

  it('disabling and enabling the client revives no token issued before its cutoff', async () => {
    clock.advance(1);
    const old = await codeFlow(app, web, 'openid');
    const oldM2m = (await clientCredentials(app, m2m)).json().access_token as string;
    expect((await admin('POST', '/admin/clients/m2m/revoke-issued', { reason: 'second look' })).statusCode).toBe(200);
    expect((await admin('POST', '/admin/clients/web/revoke-issued', { reason: 'second look' })).statusCode).toBe(200);
    for (const id of ['m2m', 'web']) {
      expect((await admin('POST', `/admin/clients/${id}/disable`)).statusCode).toBe(200);
      expect((await admin('POST', `/admin/clients/${id}/enable`)).json().disabled).toBe(false);
    }
    expect((await introspect(m2m, oldM2m)).active).toBe(false);
    expect((await introspect(web, old.access_token)).active).toBe(false);
    expect(await userinfo(old.access_token)).toBe(401);
    clock.advance(1);
    const fresh = (await clientCredentials(app, m2m)).json().access_token as string;
    expect((await introspect(m2m, fresh)).active).toBe(true);
  });

  it('a cutoff never moves back, and a rotation without revoke_issued sets none', async () => {
    const current = (await admin('GET', '/admin/clients/m2m')).json().tokens_not_before as string;
    const res = await admin('POST', '/admin/clients/m2m/rotate-secret', { overlap_seconds: 0 });
    expect(res.statusCode).toBe(200);
    expect(res.json().tokens_not_before).toBe(current);
    expect(res.json().families_revoked).toBeUndefined();
    m2m = { id: 'm2m', secret: res.json().client_secret };
    expect((await admin('POST', '/admin/clients/m2m/rotate-secret', { revoke_issued: 'yes' })).statusCode).toBe(400);
  });

  it('refuses revoke_issued with an overlap: a leaked secret must not mint tokens after the cutoff', async () => {
    const before = (await admin('GET', '/admin/clients/m2m')).json();
    const res = await admin('POST', '/admin/clients/m2m/rotate-secret', { revoke_issued: true, overlap_seconds: 3600, reason: 'leaked' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'revoke_issued ends the old secret at once: overlap_seconds must be 0 or absent (a leaked secret must not mint tokens after the cutoff)' });
    // Nothing changed: the secret still works, no new cutoff.
    expect((await admin('GET', '/admin/clients/m2m')).json().tokens_not_before).toBe(before.tokens_not_before);
    expect((await clientCredentials(app, m2m)).statusCode).toBe(200);
  });
});

describe('last-used times and the stale-client listing', () => {
  let store: Store;
  let app: TestApp;
  // The clock starts at the real time, so the database's created_at and the clock agree.
  const clock = new ManualClock(new Date(Math.floor(Date.now() / 1000) * 1000 - 1000));
  const t0 = clock.now();
  const clients: Record<string, TestClient> = {};
  const admin = (...args: Parameters<ReturnType<typeof adminOf>>) => adminOf(app)(...args);

  beforeAll(async () => {
    store = await openTestStore();
    app = await createTestApp({ ADMIN_TOKENS: `${ADMIN_NAME}:${ADMIN}` }, { clock, store });
    for (const id of ['long-ago', 'recent', 'never']) {
      clients[id] = { id, secret: (await createClient(app.context, { grant_types: ['client_credentials'] }, id)).clientSecret! };
    }
  });
  afterAll(async () => {
    await store.close();
  });

  it('records a use in memory, not in the database, until the flush writes the batch', async () => {
    for (let i = 0; i < 3; i++) expect((await clientCredentials(app, clients['long-ago']!)).statusCode).toBe(200);
    expect(app.services.clientUsage.size).toBe(1);
    expect((await admin('GET', '/admin/clients/long-ago')).json().last_used_at).toBeNull();
    await app.services.clientUsage.flush();
    expect(app.services.clientUsage.size).toBe(0);
    expect((await admin('GET', '/admin/clients/long-ago')).json().last_used_at).toBe(t0.toISOString());
  });

  it('a failed authentication is no use', async () => {
    expect((await clientCredentials(app, { id: 'never', secret: 'x'.repeat(43) })).statusCode).toBe(401);
    expect(app.services.clientUsage.size).toBe(0);
  });

  it('lists exactly the clients unused since a time, never-used ones counted from their creation', async () => {
    clock.advance(100 * DAY);
    expect((await clientCredentials(app, clients.recent!)).statusCode).toBe(200);
    // The listing writes this instance's pending uses first.
    const stale = await admin('GET', '/admin/clients?unused_for=90d');
    expect(stale.statusCode).toBe(200);
    const body = stale.json() as { unused_since: string; clients: Array<{ client_id: string; last_used_at: string | null; created_at: string }> };
    expect(body.unused_since).toBe(new Date(t0.getTime() + 10 * DAY * 1000).toISOString());
    expect(body.clients.map((c) => c.client_id).sort()).toEqual(['long-ago', 'never']);
    const never = body.clients.find((c) => c.client_id === 'never')!;
    expect(never.last_used_at).toBeNull();
    expect(Date.parse(never.created_at)).toBeGreaterThanOrEqual(t0.getTime());
    expect(body.clients.find((c) => c.client_id === 'long-ago')!.last_used_at).toBe(t0.toISOString());
    expect((await admin('GET', '/admin/clients/recent')).json().last_used_at).toBe(clock.now().toISOString());

    const since = (await admin('GET', `/admin/clients?unused_since=${encodeURIComponent(clock.now().toISOString())}`)).json();
    expect(since.clients.map((c: { client_id: string }) => c.client_id).sort()).toEqual(['long-ago', 'never']);
    const none = (await admin('GET', `/admin/clients?unused_since=${encodeURIComponent(t0.toISOString())}`)).json();
    expect(none.clients).toEqual([]);
    for (const bad of ['unused_for=soon', 'unused_since=yesterday', 'unused_for=1d&unused_since=2030-01-01']) {
      const res = await admin('GET', `/admin/clients?${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
  });

  it('writes the uses still pending when the server closes', async () => {
    clock.advance(60);
    expect((await clientCredentials(app, clients.never!)).statusCode).toBe(200);
    await app.close();
    const stored = await new ClientRepository(store.db, store.notifier).find('never');
    expect(stored!.lastUsedAt!.toISOString()).toBe(clock.now().toISOString());
  });
});

describe('a per-client rate-limit override (rate_limits)', () => {
  let app: TestApp;
  const admin = (...args: Parameters<ReturnType<typeof adminOf>>) => adminOf(app)(...args);
  beforeAll(async () => {
    app = await createTestApp({ ADMIN_TOKENS: `${ADMIN_NAME}:${ADMIN}`, TOKEN_RATE_LIMIT_PER_CLIENT: '5', RATE_LIMIT_WINDOW: '1h' });
  });
  afterAll(async () => { await app.close(); });

  it('limits a client at its own limit while another is held only to the server\'s', async () => {
    const limited = { id: 'limited', secret: (await createClient(app.context, { grant_types: ['client_credentials'] }, 'limited')).clientSecret! };
    const other = { id: 'other', secret: (await createClient(app.context, { grant_types: ['client_credentials'] }, 'other')).clientSecret! };
    const patched = await admin('PATCH', '/admin/clients/limited', { rate_limits: { token: 2 } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().rate_limits).toEqual({ token: 2 });

    expect((await clientCredentials(app, limited)).statusCode).toBe(200);
    expect((await clientCredentials(app, limited)).statusCode).toBe(200);
    const refused = await clientCredentials(app, limited);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    for (let i = 0; i < 5; i++) expect((await clientCredentials(app, other)).statusCode).toBe(200);
    expect((await clientCredentials(app, other)).statusCode).toBe(429); // the server's TOKEN_RATE_LIMIT_PER_CLIENT

    // Raised above the server's limit: the override, not the default, applies.
    expect((await admin('PATCH', '/admin/clients/other', { rate_limits: { token: 8 } })).statusCode).toBe(200);
    expect((await clientCredentials(app, other)).statusCode).toBe(200);
    expect((await clientCredentials(app, other)).statusCode).toBe(200);
    expect((await clientCredentials(app, other)).statusCode).toBe(429);
  });

  it('refuses a malformed override, and Dynamic Client Registration refuses any', async () => {
    for (const bad of [{ token: 0 }, { token: 1.5 }, { tokens: 3 }, {}]) {
      const res = await admin('PATCH', '/admin/clients/limited', { rate_limits: bad });
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.json().error).toBe('invalid_client_metadata');
    }
    await expect(registryOf(app.context).create({ redirect_uris: [REDIRECT], rate_limits: { token: 100000 } }, { source: 'registration' }))
      .rejects.toThrow('rate_limits: may only be set by an administrator');
  });
});
