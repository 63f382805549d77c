import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, eventually, form, FORM_HEADERS, registryOf } from '../support/clients.js';
import { codeFlow, refresh, REDIRECT, type TestClient, type TokenBody } from '../support/refresh.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';

const SCOPE = 'openid profile offline_access api:read';

describe('refresh token families: rotation, grace window, reuse detection', () => {
  let app: TestApp;
  const clock = new ManualClock();
  let web: TestClient;
  let other: TestClient;
  let noRefresh: TestClient;
  let spa: TestClient;
  let aliceId: string;

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2 }, { clock });
    const w = await createClient(app.context, {
      client_name: 'Invoices', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      scope: SCOPE, refresh_token_idle_ttl: 600, refresh_token_absolute_ttl: 1800,
    });
    web = { id: w.client.clientId, secret: w.clientSecret! };
    // Also the resource server introspecting web's tokens (RFC 7662 §4: marked by the operator).
    const o = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], scope: SCOPE, introspect_any_token: true });
    other = { id: o.client.clientId, secret: o.clientSecret! };
    const n = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: SCOPE });
    noRefresh = { id: n.client.clientId, secret: n.clientSecret! };
    const s = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access', token_endpoint_auth_method: 'none' });
    spa = { id: s.client.clientId };
    aliceId = (await createUser(app.context, 'alice')).id;
  });
  afterAll(async () => { await app.close(); });

  const db = () => app.context.store.db;
  const tokensOf = (familyId: string) => db().selectFrom('refresh_tokens').select(['generation', 'state']).where('family_id', '=', familyId).orderBy('generation').execute();
  const familyOf = (familyId: string) => db().selectFrom('refresh_families').selectAll().where('id', '=', familyId).executeTakeFirstOrThrow();
  const introspect = async (token: string) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(other.id, other.secret!) }, payload: form({ token }),
  })).json() as { active: boolean };
  const userinfo = (token: string) => app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const values = (await app.context.metrics.registry.getSingleMetric(name)!.get()).values;
    return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  };
  const ok = async (res: Awaited<ReturnType<typeof refresh>>) => {
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as TokenBody;
  };
  const gid = (accessToken: string) => decodeJwt(accessToken).gid as string;

  describe('issuing the first refresh token', () => {
    it('issues one when offline_access is granted to a client registered for refresh_token; its family id is the access token gid', async () => {
      const body = await codeFlow(app, web, SCOPE);
      expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Object.keys(body).sort()).toEqual(['access_token', 'code', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type', 'verifier']);
      const family = await familyOf(gid(body.access_token));
      expect(family).toMatchObject({ client_id: web.id, user_id: aliceId, scope: SCOPE, revoked_at: null });
      expect(family.absolute_expires_at.getTime() - clock.now().getTime()).toBe(1800_000);
      expect(family.idle_expires_at.getTime() - clock.now().getTime()).toBe(600_000);
      expect(await tokensOf(family.id)).toEqual([{ generation: 1, state: 'active' }]);
      // Stored hashed only.
      const stored = await db().selectFrom('refresh_tokens').select('token_hash').where('family_id', '=', family.id).executeTakeFirstOrThrow();
      expect(Buffer.from(stored.token_hash).toString('hex')).toBe(createHash('sha256').update(body.refresh_token!).digest('hex'));
    });

    it('issues none without offline_access', async () => {
      const body = await codeFlow(app, web, 'openid profile');
      expect(body.refresh_token).toBeUndefined();
      expect(await db().selectFrom('refresh_families').select('id').where('id', '=', gid(body.access_token)).execute()).toEqual([]);
    });

    it('issues none to a client not registered for the refresh_token grant, even with offline_access', async () => {
      const body = await codeFlow(app, noRefresh, SCOPE);
      expect(body.refresh_token).toBeUndefined();
    });

    it('never issues one for client_credentials', async () => {
      const res = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(other.id, other.secret!) },
        payload: form({ grant_type: 'client_credentials', scope: 'api:read offline_access' }),
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).not.toHaveProperty('refresh_token');
    });

    it('gives public clients the shorter default lifetimes (RFC 9700 §4.14.2), confidential ones the longer defaults', async () => {
      const pub = await codeFlow(app, spa, 'openid offline_access');
      const conf = await codeFlow(app, other, SCOPE);
      const p = await familyOf(gid(pub.access_token));
      const c = await familyOf(gid(conf.access_token));
      const now = clock.now().getTime();
      expect([p.idle_expires_at.getTime() - now, p.absolute_expires_at.getTime() - now]).toEqual([7 * 86400_000, 30 * 86400_000]);
      expect([c.idle_expires_at.getTime() - now, c.absolute_expires_at.getTime() - now]).toEqual([14 * 86400_000, 90 * 86400_000]);
      // A public client refreshes with its client_id alone, and the family rotates as any other.
      const next = await ok(await refresh(app, spa, pub.refresh_token!));
      expect(next.refresh_token).not.toBe(pub.refresh_token);
    });
  });

  describe('rotation', () => {
    it('rotates through many generations: each refresh returns a new token, one active token per family, the same gid throughout', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      let current = first.refresh_token!;
      const seen = new Set([current]);
      for (let i = 0; i < 12; i++) {
        clock.advance(60);
        const body = await ok(await refresh(app, web, current));
        expect(body.token_type).toBe('Bearer');
        expect(body.scope).toBe(SCOPE);
        expect(gid(body.access_token)).toBe(familyId);
        expect(seen.has(body.refresh_token!)).toBe(false);
        seen.add(body.refresh_token!);
        current = body.refresh_token!;
      }
      const tokens = await tokensOf(familyId);
      expect(tokens).toHaveLength(13);
      expect(tokens.filter((t) => t.state === 'active')).toEqual([{ generation: 13, state: 'active' }]);
      // The idle expiry slid with each rotation; the absolute one did not move.
      const family = await familyOf(familyId);
      expect(family.idle_expires_at.getTime()).toBe(clock.now().getTime() + 600_000);
      expect(family.absolute_expires_at.getTime()).toBe(family.created_at.getTime() + 1800_000);
    });

    it('returns an ID token about the original authentication (OpenID Connect Core §12.2): same sub, aud, auth_time and sid, no nonce', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const original = decodeJwt(first.id_token!);
      clock.advance(120);
      const body = await ok(await refresh(app, web, first.refresh_token!));
      const renewed = decodeJwt(body.id_token!);
      expect(renewed).toMatchObject({ sub: aliceId, aud: web.id, auth_time: original.auth_time, sid: original.sid });
      expect(renewed.iat).toBe(original.iat! + 120);
      expect(renewed).not.toHaveProperty('nonce');
    });

    it('narrows the scope on request (RFC 6749 §6) without narrowing the family: the next refresh may ask for all of it again', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const narrow = await ok(await refresh(app, web, first.refresh_token!, { scope: 'api:read' }));
      expect(narrow.scope).toBe('api:read');
      expect(decodeJwt(narrow.access_token).scope).toBe('api:read');
      expect(narrow.id_token).toBeUndefined();
      const full = await ok(await refresh(app, web, narrow.refresh_token!));
      expect(full.scope).toBe(SCOPE);
    });

    it('drops from every refresh the scopes an administrator has since taken from the client', async () => {
      const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
      const client = { id: c.client.clientId, secret: c.clientSecret! };
      const first = await codeFlow(app, client, SCOPE);
      expect(first.scope).toBe(SCOPE);
      await registryOf(app.context).update(client.id, { scope: 'openid offline_access' }, { source: 'cli', merge: true });
      await eventually(async () => (await app.services.clients.get(client.id))?.metadata.scope === 'openid offline_access');
      const next = await ok(await refresh(app, client, first.refresh_token!));
      expect(next.scope).toBe('openid offline_access');
      expect(decodeJwt(next.access_token).scope).toBe('openid offline_access');
    });

    it('keeps to the resources the client still has registered, and refuses the grant once none is left', async () => {
      const [a, b] = ['https://a.example.com/api', 'https://b.example.com/api'];
      const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE, resources: [a, b] });
      const client = { id: c.client.clientId, secret: c.clientSecret! };
      const first = await codeFlow(app, client, SCOPE);
      expect(decodeJwt(first.access_token).aud).toBe(a);
      const registered = async (resources: string[]) => {
        await registryOf(app.context).update(client.id, { resources }, { source: 'cli', merge: true });
        await eventually(async () => JSON.stringify((await app.services.clients.get(client.id))?.metadata.resources) === JSON.stringify(resources));
      };
      await registered([b, a]);
      const second = await ok(await refresh(app, client, first.refresh_token!));
      expect(decodeJwt(second.access_token).aud).toBe(a);
      await registered([b]);
      const refused = await refresh(app, client, second.refresh_token!);
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toEqual({ error: 'invalid_grant', error_description: 'the resources of this grant are no longer registered for the client' });
      // Nothing changed: the presented token is still the family's active one.
      expect(await tokensOf(gid(first.access_token))).toEqual([{ generation: 1, state: 'rotated' }, { generation: 2, state: 'active' }]);
    });

    it('refuses to widen the scope with invalid_scope and leaves the token as it was', async () => {
      const first = await codeFlow(app, web, 'openid offline_access');
      const wider = await refresh(app, web, first.refresh_token!, { scope: 'openid offline_access api:read' });
      expect(wider.statusCode).toBe(400);
      expect(wider.json()).toMatchObject({ error: 'invalid_scope' });
      expect(await tokensOf(gid(first.access_token))).toEqual([{ generation: 1, state: 'active' }]);
      await ok(await refresh(app, web, first.refresh_token!));
    });

    it('refuses another client\'s refresh token with invalid_grant, changing nothing', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const stolen = await refresh(app, other, first.refresh_token!);
      expect(stolen.statusCode).toBe(400);
      expect(stolen.json()).toMatchObject({ error: 'invalid_grant', error_description: 'the refresh token was issued to another client' });
      expect((await familyOf(gid(first.access_token))).revoked_at).toBeNull();
      await ok(await refresh(app, web, first.refresh_token!));
    });

    it('answers unknown, malformed and missing refresh tokens with spec errors', async () => {
      expect((await refresh(app, web, 'A'.repeat(43))).json()).toMatchObject({ error: 'invalid_grant' });
      expect((await refresh(app, web, 'not a token')).json()).toMatchObject({ error: 'invalid_grant' });
      const missing = await app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) }, payload: form({ grant_type: 'refresh_token' }) });
      expect(missing.statusCode).toBe(400);
      expect(missing.json()).toMatchObject({ error: 'invalid_request' });
      const twice = await refresh(app, web, 'A'.repeat(43), { refresh_token: ['A'.repeat(43), 'B'.repeat(43)] });
      expect(twice.json()).toMatchObject({ error: 'invalid_request' });
    });

    it('refuses to refresh for a disabled user, rotating nothing', async () => {
      const { UserRepository } = await import('../../src/users/user-store.js');
      const carol = await createUser(app.context, 'carol');
      const first = await codeFlow(app, web, SCOPE, 'carol');
      const users = new UserRepository(db());
      await users.setDisabled(carol.id, true, clock.now());
      const res = await refresh(app, web, first.refresh_token!);
      expect(res.json()).toMatchObject({ error: 'invalid_grant', error_description: 'the user of this grant is no longer active' });
      expect(await tokensOf(gid(first.access_token))).toEqual([{ generation: 1, state: 'active' }]);
    });

    it('refuses a client not registered for the refresh_token grant with unauthorized_client', async () => {
      const res = await refresh(app, noRefresh, 'A'.repeat(43));
      expect(res.json()).toMatchObject({ error: 'unauthorized_client' });
    });
  });

  describe('lifetimes', () => {
    it('expires after the idle lifetime without a rotation', async () => {
      const first = await codeFlow(app, web, SCOPE);
      clock.advance(601);
      const res = await refresh(app, web, first.refresh_token!);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_grant' });
    });

    it('expires at the absolute lifetime however often it rotated; the last successor lives only until then', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      let current = first.refresh_token!;
      for (let elapsed = 0; elapsed < 1500; elapsed += 500) {
        clock.advance(500);
        current = (await ok(await refresh(app, web, current))).refresh_token!;
      }
      // 1500 s in: the successor's idle expiry (1500 + 600) is capped at the absolute 1800.
      const family = await familyOf(familyId);
      expect(family.idle_expires_at.getTime()).toBe(family.absolute_expires_at.getTime());
      clock.advance(300);
      const res = await refresh(app, web, current);
      expect(res.json()).toMatchObject({ error: 'invalid_grant' });
    });
  });

  describe('grace window and reuse detection', () => {
    it('a rotated token presented again within the window returns the same successor and a fresh access token, and revokes nothing', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      const a = await ok(await refresh(app, web, first.refresh_token!));
      clock.advance(20);
      const b = await ok(await refresh(app, web, first.refresh_token!));
      expect(b.refresh_token).toBe(a.refresh_token);
      expect(b.access_token).not.toBe(a.access_token);
      expect(await tokensOf(familyId)).toEqual([{ generation: 1, state: 'rotated' }, { generation: 2, state: 'active' }]);
      expect((await introspect(a.access_token)).active).toBe(true);
      // The family goes on from the one successor.
      const c = await ok(await refresh(app, web, b.refresh_token!));
      expect(gid(c.access_token)).toBe(familyId);
      await app.context.audit.flush();
      const events = app.logs.lines.filter((l) => l.event === 'refresh.rotated' && l.grant_id === familyId);
      expect(events.map((e) => [e.generation, e.grace])).toEqual([[2, false], [2, true], [3, false]]);
      expect(events[0]).toMatchObject({ client_id: web.id, sub: aliceId, scope: SCOPE });
      expect(JSON.stringify(events)).not.toContain(a.refresh_token);
    });

    it('N concurrent refreshes of one token all succeed with one and the same successor; the family does not branch', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      const results = await Promise.all(Array.from({ length: 8 }, () => refresh(app, web, first.refresh_token!)));
      const bodies = await Promise.all(results.map(ok));
      expect(new Set(bodies.map((b) => b.refresh_token)).size).toBe(1);
      expect(new Set(bodies.map((b) => b.access_token)).size).toBe(8);
      expect(await tokensOf(familyId)).toEqual([{ generation: 1, state: 'rotated' }, { generation: 2, state: 'active' }]);
    });

    it('reuse after the window revokes the family: invalid_grant, every access token inactive at introspection and userinfo, audit event and metric', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      const second = await ok(await refresh(app, web, first.refresh_token!));
      const before = await metric('latchkey_refresh_reuse_detected_total');
      expect((await introspect(second.access_token)).active).toBe(true);
      expect((await userinfo(first.access_token)).statusCode).toBe(200);

      clock.advance(31);
      const reuse = await refresh(app, web, first.refresh_token!);
      expect(reuse.statusCode).toBe(400);
      expect(reuse.json()).toMatchObject({ error: 'invalid_grant' });

      expect(await introspect(first.access_token)).toEqual({ active: false });
      expect(await introspect(second.access_token)).toEqual({ active: false });
      expect((await userinfo(second.access_token)).statusCode).toBe(401);
      // The successor the legitimate client holds is dead too.
      expect((await refresh(app, web, second.refresh_token!)).json()).toMatchObject({ error: 'invalid_grant' });
      const family = await familyOf(familyId);
      expect(family.revoked_reason).toBe('refresh_token_reused');
      expect((await tokensOf(familyId)).map((t) => t.state)).toEqual(['revoked', 'revoked']);
      expect(await metric('latchkey_refresh_reuse_detected_total')).toBe(before + 1);
      expect(await metric('latchkey_refresh_families_revoked_total', { reason: 'refresh_token_reused' })).toBeGreaterThanOrEqual(1);
      await app.context.audit.flush();
      expect(app.logs.lines.find((l) => l.event === 'refresh.reuse_detected' && l.grant_id === familyId)).toMatchObject({ client_id: web.id, sub: aliceId, generation: 1 });
      expect(app.logs.lines.find((l) => l.event === 'family.revoked' && l.grant_id === familyId)).toMatchObject({ reason: 'refresh_token_reused', revoked_by: 'reuse_detection' });
      const row = await db().selectFrom('audit_events').select(['event', 'client_id']).where('event', '=', 'refresh.reuse_detected').where('client_id', '=', web.id).executeTakeFirst();
      expect(row).toEqual({ event: 'refresh.reuse_detected', client_id: web.id });
    });

    it('replay after the successor itself rotated is reuse even within the window', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      const second = await ok(await refresh(app, web, first.refresh_token!));
      const third = await ok(await refresh(app, web, second.refresh_token!));
      clock.advance(5);
      const replay = await refresh(app, web, first.refresh_token!);
      expect(replay.json()).toMatchObject({ error: 'invalid_grant' });
      expect((await familyOf(familyId)).revoked_reason).toBe('refresh_token_reused');
      expect(await introspect(third.access_token)).toEqual({ active: false });
    });

    it('keeps the successor encrypted only until the window has passed (the cleanup job erases it) and only while it is the active token', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const familyId = gid(first.access_token);
      const second = await ok(await refresh(app, web, first.refresh_token!));
      const kept = await db().selectFrom('refresh_tokens').select(['generation', 'successor_ciphertext']).where('family_id', '=', familyId).orderBy('generation').execute();
      expect(kept[0]!.successor_ciphertext).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(kept[0]!.successor_ciphertext).not.toContain(second.refresh_token!);
      expect(kept[1]!.successor_ciphertext).toBeNull();
      // Rotating the successor erases the copy its predecessor kept.
      await ok(await refresh(app, web, second.refresh_token!));
      const after = await db().selectFrom('refresh_tokens').select(['generation', 'successor_ciphertext']).where('family_id', '=', familyId).orderBy('generation').execute();
      expect(after[0]!.successor_ciphertext).toBeNull();
      expect(after[1]!.successor_ciphertext).not.toBeNull();
      clock.advance(31);
      await app.services.runCleanup();
      const erased = await db().selectFrom('refresh_tokens').select('successor_ciphertext').where('family_id', '=', familyId).where('successor_ciphertext', 'is not', null).execute();
      expect(erased).toEqual([]);
    });
  });

  describe('revocation that cascades', () => {
    it('/revoke with a refresh token revokes its family and every access token of it (RFC 7009 §2.1)', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const second = await ok(await refresh(app, web, first.refresh_token!));
      const res = await app.server.inject({
        method: 'POST', url: '/revoke', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) },
        payload: form({ token: first.refresh_token!, token_type_hint: 'refresh_token' }),
      });
      expect(res.statusCode).toBe(200);
      expect(await introspect(second.access_token)).toEqual({ active: false });
      expect((await refresh(app, web, second.refresh_token!)).json()).toMatchObject({ error: 'invalid_grant' });
      const family = await familyOf(gid(first.access_token));
      expect(family.revoked_reason).toBe('revoked_by_client');
      await app.context.audit.flush();
      expect(app.logs.lines.find((l) => l.event === 'token.revoked' && l.grant_id === family.id)).toMatchObject({ kind: 'refresh_token', client_id: web.id });
      expect(app.logs.lines.find((l) => l.event === 'family.revoked' && l.grant_id === family.id)).toMatchObject({ revoked_by: 'client', reason: 'revoked_by_client' });
    });

    it('/revoke with another client\'s refresh token is refused and the family lives on', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const res = await app.server.inject({
        method: 'POST', url: '/revoke', headers: { ...FORM_HEADERS, authorization: basic(other.id, other.secret!) }, payload: form({ token: first.refresh_token! }),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
      await ok(await refresh(app, web, first.refresh_token!));
    });

    it('a public client revokes its own refresh token with its client_id', async () => {
      const first = await codeFlow(app, spa, 'openid offline_access');
      const res = await app.server.inject({ method: 'POST', url: '/revoke', headers: FORM_HEADERS, payload: form({ token: first.refresh_token!, client_id: spa.id }) });
      expect(res.statusCode).toBe(200);
      expect((await refresh(app, spa, first.refresh_token!)).json()).toMatchObject({ error: 'invalid_grant' });
    });

    it('a replayed authorization code also revokes the family born from it (RFC 6749 §4.1.2)', async () => {
      const first = await codeFlow(app, web, SCOPE);
      const second = await ok(await refresh(app, web, first.refresh_token!));
      const replay = await app.server.inject({
        method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) },
        payload: form({ grant_type: 'authorization_code', code: first.code, redirect_uri: REDIRECT, code_verifier: first.verifier }),
      });
      expect(replay.json()).toMatchObject({ error: 'invalid_grant' });
      expect((await refresh(app, web, second.refresh_token!)).json()).toMatchObject({ error: 'invalid_grant' });
      expect(await introspect(second.access_token)).toEqual({ active: false });
      expect((await familyOf(gid(first.access_token))).revoked_reason).toBe('authorization_code_replayed');
    });

    it('a family born after its code was replayed is born revoked', async () => {
      // The replay's revocation reached revoked_grants before the first redemption created the family.
      const repo = (await import('../../src/oauth/refresh-families/store.js')).RefreshTokenRepository;
      const grantId = '00000000-0000-4000-8000-000000000001';
      await db().insertInto('revoked_grants').values({ grant_id: grantId, client_id: web.id, reason: 'authorization_code_replayed', revoked_at: clock.now(), expires_at: new Date(clock.now().getTime() + 86400_000) }).execute();
      const started = await new repo(db()).startFamily({
        id: grantId, clientId: web.id, userId: aliceId, scope: SCOPE, audience: 'http://localhost:8080', sid: 's', authTime: clock.now(), amr: ['pwd'], acr: null,
        absoluteExpiresAt: new Date(clock.now().getTime() + 3600_000),
      }, Buffer.alloc(32, 7), new Date(clock.now().getTime() + 600_000), clock.now());
      expect(started).toEqual({ revoked: true });
      expect((await familyOf(grantId)).revoked_reason).toBe('authorization_code_replayed');
      expect(await tokensOf(grantId)).toEqual([{ generation: 1, state: 'revoked' }]);
    });
  });
});

describe('refresh tokens with the grace window off (REFRESH_TOKEN_GRACE_PERIOD=0)', () => {
  let app: TestApp;
  let web: TestClient;
  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, REFRESH_TOKEN_GRACE_PERIOD: '0' });
    const w = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
    web = { id: w.client.clientId, secret: w.clientSecret! };
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  it('treats any second use of a rotated token as reuse and keeps no successor', async () => {
    const first = await codeFlow(app, web, SCOPE);
    const familyId = decodeJwt(first.access_token).gid as string;
    const second = await refresh(app, web, first.refresh_token!);
    expect(second.statusCode).toBe(200);
    const kept = await app.context.store.db.selectFrom('refresh_tokens').select('successor_ciphertext').where('family_id', '=', familyId).where('successor_ciphertext', 'is not', null).execute();
    expect(kept).toEqual([]);
    const again = await refresh(app, web, first.refresh_token!);
    expect(again.json()).toMatchObject({ error: 'invalid_grant' });
    const family = await app.context.store.db.selectFrom('refresh_families').select('revoked_reason').where('id', '=', familyId).executeTakeFirstOrThrow();
    expect(family.revoked_reason).toBe('refresh_token_reused');
  });
});
