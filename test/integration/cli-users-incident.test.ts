import { userInfo } from 'node:os';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import type { App } from '../../src/server/app.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser } from '../support/oidc.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';

const SCOPE = 'openid offline_access';
const BY = `cli:${userInfo().username}`;

/** The incident commands from the CLI: set-password ending sessions and grants, sessions, grants, one grant, one jti. */
describe('latchkey users / tokens: the stolen-refresh-token and compromised-account steps', { timeout: 120_000 }, () => {
  const { open, setUp, tearDown } = sharedStoreForCli('latchkey-users-incident-');
  beforeAll(() => { setUp(); });
  afterAll(async () => { await tearDown(); });

  const introspect = async (app: App, client: TestClient, token: string) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret!) }, payload: form({ token }),
  })).json().active as boolean;
  const events = async (app: App, event: string) => (await new AuditEventRepository(app.context.store.db).query({})).filter((e) => e.event === event);

  it('lists grants, revokes one grant and one jti, leaving the others, audited with the OS user', async () => {
    let app = await open();
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE, skip_consent: true });
    const web = { id: c.client.clientId, secret: c.clientSecret! };
    await createUser(app.context, 'alice');
    const stolen = await codeFlow(app, web, SCOPE, 'alice');
    const kept = await codeFlow(app, web, SCOPE, 'alice');
    const third = await codeFlow(app, web, SCOPE, 'alice');
    await app.close();
    const stolenGid = decodeJwt(stolen.access_token).gid as string;

    const listed = await runCliCaptured(['tokens', 'grants', '--user', 'alice', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const grants = JSON.parse(listed.stdout) as Array<{ grant_id: string; state: string; client_id: string; created_ip: string | null }>;
    expect(grants.map((g) => g.grant_id).sort()).toEqual([stolen, kept, third].map((t) => decodeJwt(t.access_token).gid as string).sort());
    expect(grants.every((g) => g.state === 'active' && g.client_id === web.id && g.created_ip === '127.0.0.1')).toBe(true);
    expect((await runCliCaptured(['tokens', 'grants'])).code).toBe(2);

    expect((await runCliCaptured(['tokens', 'revoke-grant', stolenGid])).code).toBe(2); // no reason
    expect((await runCliCaptured(['tokens', 'revoke-grant', 'no-such-grant', '--reason', 'x'])).code).toBe(2);
    const revoked = await runCliCaptured(['tokens', 'revoke-grant', stolenGid, '--reason', 'replayed from elsewhere']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ grant_id: stolenGid, revoked: true });

    const jti = decodeJwt(third.access_token).jti as string;
    const denied = await runCliCaptured(['tokens', 'revoke-jti', jti, '--reason', 'leaked in a log', '--client', web.id]);
    expect(denied.code, denied.stderr).toBe(0);

    app = await open();
    try {
      expect((await refresh(app, web, stolen.refresh_token!)).statusCode).toBe(400);
      expect(await introspect(app, web, stolen.access_token)).toBe(false);
      expect((await refresh(app, web, kept.refresh_token!)).statusCode).toBe(200);
      expect(await introspect(app, web, third.access_token)).toBe(false);
      expect(await introspect(app, web, kept.access_token)).toBe(true);
      expect((await events(app, 'family.revoked')).map((e) => e.details)).toEqual([expect.objectContaining({ revoked_by: BY, grant_id: stolenGid, of: 'grant', reason: 'replayed from elsewhere' })]);
      expect((await events(app, 'token.revoked')).map((e) => e.details)).toEqual([expect.objectContaining({ revoked_by: BY, reason: 'leaked in a log' })]);
    } finally {
      await app.close();
    }
  });

  it('set-password ends sessions and revokes grants by default (audited); --keep-sessions --keep-tokens keeps them', async () => {
    let app = await open();
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE, skip_consent: true });
    const web = { id: c.client.clientId, secret: c.clientSecret! };
    const bob = await createUser(app.context, 'bob');
    const t1 = await codeFlow(app, web, SCOPE, 'bob');
    await app.close();

    // web has no backchannel_logout_uri: no client of the session is recorded to be told.
    const sessions = await runCliCaptured(['users', 'sessions', 'bob', '--json']);
    expect(sessions.code, sessions.stderr).toBe(0);
    expect(JSON.parse(sessions.stdout)).toEqual([expect.objectContaining({ sid: decodeJwt(t1.id_token!).sid, amr: ['pwd'], backchannel_logout_clients: [] })]);

    const kept = await runCliCaptured(['users', 'set-password', 'bob', '--keep-sessions', '--keep-tokens']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toContain('sessions ended: 0, grants revoked: 0');

    const set = await runCliCaptured(['users', 'set-password', 'bob']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('sessions ended: 1, grants revoked: 1');
    expect(JSON.parse((await runCliCaptured(['users', 'sessions', 'bob', '--json'])).stdout)).toEqual([]);

    app = await open();
    try {
      expect((await refresh(app, web, t1.refresh_token!)).statusCode).toBe(400);
      const audited = (await events(app, 'user.password_set')).map((e) => [e.sub, e.details.by, e.details.sessions_ended, e.details.families_revoked]);
      expect(audited).toEqual([[bob.id, BY, 0, 0], [bob.id, BY, 1, 1]]);
      expect((await events(app, 'session.ended_by_admin')).map((e) => e.details.by)).toEqual([BY]);
      // end-sessions: one by sid, then all (carl: bob's password is now a generated one).
      await createUser(app.context, 'carl');
      const b = await codeFlow(app, web, SCOPE, 'carl');
      await codeFlow(app, web, SCOPE, 'carl');
      await app.close();
      expect((await runCliCaptured(['users', 'end-sessions', 'carl', '--session', 'no-such-sid'])).code).toBe(2);
      const one = await runCliCaptured(['users', 'end-sessions', 'carl', '--session', decodeJwt(b.id_token!).sid as string]);
      expect(one.stdout).toContain('sessions ended: 1');
      const all = await runCliCaptured(['users', 'end-sessions', 'carl']);
      expect(all.stdout).toContain('sessions ended: 1');
      expect((await runCliCaptured(['users', 'end-sessions', 'carl'])).stdout).toContain('sessions ended: 0');
    } finally {
      await app.close().catch(() => undefined);
    }
  });
});
