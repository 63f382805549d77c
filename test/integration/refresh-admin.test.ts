import { userInfo } from 'node:os';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { createClient, form, FORM_HEADERS, basic } from '../support/clients.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';

const SCOPE = 'openid offline_access';
const ADMIN_NAME = 'ops-alice';
const ADMIN = 'admin-credential-0123456789-0123456789-abcdef';

describe('admin API: revoking every family of a user, a client, or a user+client pair', () => {
  let app: TestApp;
  let web: TestClient;
  let other: TestClient;
  let aliceId: string;
  let bobId: string;

  beforeAll(async () => {
    // A named credential (name:secret): the audit trail names who acted.
    app = await createTestApp({ ...FAST_ARGON2, ADMIN_TOKENS: `${ADMIN_NAME}:${ADMIN}` });
    const make = async () => {
      const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
      return { id: c.client.clientId, secret: c.clientSecret! };
    };
    web = await make();
    other = await make();
    aliceId = (await createUser(app.context, 'alice')).id;
    bobId = (await createUser(app.context, 'bob')).id;
  });
  afterAll(async () => { await app.close(); });

  const admin = (url: string, body: unknown, credential = ADMIN) => app.server.inject({
    method: 'POST', url, headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
  });
  const works = async (client: TestClient, token: string) => (await refresh(app, client, token)).statusCode === 200;
  const lastFamilyEvent = async () => {
    await app.context.audit.flush();
    return app.logs.lines.filter((l) => l.event === 'family.revoked').at(-1)!;
  };

  it('answers hostile admin input with 4xx, never a database error', async () => {
    const cases: Array<[string, unknown, number]> = [
      ['/admin/users/a%00b/revoke-tokens', { reason: 'r' }, 404],
      ['/admin/users/alice/revoke-tokens', { reason: 'r', client_id: 'a\u0000b' }, 400],
      ['/admin/users/alice/revoke-tokens', { reason: 'nul \u0000 in the reason' }, 400],
      ['/admin/clients/a%00b/revoke-tokens', { reason: 'r' }, 404],
    ];
    for (const [url, body, status] of cases) expect((await admin(url, body)).statusCode, url).toBe(status);
    const cursor = (at: string, id: string) => Buffer.from(JSON.stringify([at, id])).toString('base64url');
    for (const c of [cursor('2030-01-01T00:00:00Z', '9999999999999999999'), cursor('-010000-01-01T00:00:00Z', '1')]) {
      const res = await app.server.inject({ method: 'GET', url: `/admin/audit?cursor=${c}`, headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.statusCode).toBe(400);
    }
  });

  it('refuses without a reason, an unknown user, and without the admin credential', async () => {
    const noReason = await admin('/admin/users/alice/revoke-tokens', {});
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json()).toMatchObject({ error: 'invalid_request' });
    expect((await admin('/admin/users/nobody/revoke-tokens', { reason: 'x' })).statusCode).toBe(404);
    expect((await admin('/admin/clients/x/revoke-tokens', { reason: 'x' }, 'wrong-credential-0123456789-0123456789')).statusCode).toBe(401);
  });

  it('user+client pair: revokes that pair\'s families and access tokens, deletes the consent, leaves the rest, and is audited with who and why', async () => {
    const a1 = await codeFlow(app, web, SCOPE, 'alice');
    const a2 = await codeFlow(app, web, SCOPE, 'alice');
    const aOther = await codeFlow(app, other, SCOPE, 'alice');
    const bWeb = await codeFlow(app, web, SCOPE, 'bob');
    const res = await admin('/admin/users/alice/revoke-tokens', { client_id: web.id, reason: 'user withdrew consent by phone, ticket 4411' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ sub: aliceId, client_id: web.id, families_revoked: 2, consent_deleted: true });
    expect(await works(web, a1.refresh_token!)).toBe(false);
    expect(await works(web, a2.refresh_token!)).toBe(false);
    expect(await works(other, aOther.refresh_token!)).toBe(true);
    expect(await works(web, bWeb.refresh_token!)).toBe(true);
    const active = await app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) }, payload: form({ token: a1.access_token }) });
    expect(active.json()).toEqual({ active: false });
    const consents = await app.context.store.db.selectFrom('consents').select('client_id').where('user_id', '=', aliceId).execute();
    expect(consents).toEqual([{ client_id: other.id }]);
    const event = await lastFamilyEvent();
    expect(event).toMatchObject({
      of: 'user_client', sub: aliceId, client_id: web.id, families: 2, consent_deleted: true, reason: 'user withdrew consent by phone, ticket 4411',
      revoked_by: 'admin_api', admin: ADMIN_NAME, ip: '127.0.0.1',
    });
    expect((event.grant_ids as string[]).sort()).toEqual([decodeJwt(a1.access_token).gid, decodeJwt(a2.access_token).gid].sort());
    expect(JSON.stringify(app.logs.lines)).not.toContain(ADMIN);
  });

  it('user: revokes every family of the user (named by sub) across clients', async () => {
    const b1 = await codeFlow(app, web, SCOPE, 'bob');
    const b2 = await codeFlow(app, other, SCOPE, 'bob');
    const res = await admin(`/admin/users/${bobId}/revoke-tokens`, { reason: 'account compromised' });
    expect(res.json()).toMatchObject({ sub: bobId, families_revoked: 3 });
    expect(res.json()).not.toHaveProperty('consent_deleted');
    expect(await works(web, b1.refresh_token!)).toBe(false);
    expect(await works(other, b2.refresh_token!)).toBe(false);
    expect(await lastFamilyEvent()).toMatchObject({ of: 'user', sub: bobId, families: 3, reason: 'account compromised' });
    // Consent stays: only the pair revocation withdraws it.
    expect((await app.context.store.db.selectFrom('consents').select('client_id').where('user_id', '=', bobId).execute()).length).toBe(2);
  });

  it('client: revokes every family of the client and ends codes not yet redeemed', async () => {
    const a = await codeFlow(app, other, SCOPE, 'alice');
    const res = await admin(`/admin/clients/${other.id}/revoke-tokens`, { reason: 'client secret leaked' });
    expect(res.json()).toEqual({ client_id: other.id, families_revoked: 2 });
    expect(await works(other, a.refresh_token!)).toBe(false);
    expect(await lastFamilyEvent()).toMatchObject({ of: 'client', client_id: other.id, families: 2 });
  });

  it('a code issued before a revocation cannot start a family after it', async () => {
    // Issue a code (consent already given), revoke the pair's families, then redeem it.
    const { Browser } = await import('../support/browser.js');
    const { authorizeQuery, pkce, redirectParams, PASSWORD } = await import('../support/oidc.js');
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    await codeFlow(app, web, SCOPE, 'alice'); // consent again (it was withdrawn above)
    const p = pkce();
    const res = await b.request('GET', `/authorize?${authorizeQuery({ response_type: 'code', client_id: web.id, redirect_uri: REDIRECT, scope: SCOPE, code_challenge: p.challenge, code_challenge_method: 'S256' })}`);
    const code = redirectParams(res.headers.location).code!;
    await admin(`/admin/clients/${web.id}/revoke-tokens`, { reason: 'rotate everything' });
    const token = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) },
      payload: form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: p.verifier }),
    });
    expect(token.json()).toMatchObject({ error: 'invalid_grant' });
  });
});

/** `latchkey tokens …` in this process, with its stdout and stderr captured. */
const cli = (...args: string[]) => runCliCaptured(['tokens', ...args]);

describe('latchkey tokens revoke', () => {
  const { open, setUp, tearDown } = sharedStoreForCli('latchkey-tokens-');
  beforeAll(() => { setUp(); });
  afterAll(async () => { await tearDown(); });

  it('has --help and refuses without a reason or a target', async () => {
    expect((await cli('--help')).stdout).toContain('revoke --user USER --client CLIENT_ID --reason TEXT');
    expect((await cli('revoke', '--user', 'alice')).code).toBe(2);
    expect((await cli('revoke', '--reason', 'why')).code).toBe(2);
  });

  it('revokes a user+client pair\'s families, deletes the consent, and audits the OS user and the reason', async () => {
    let app = await open();
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
    const web = { id: c.client.clientId, secret: c.clientSecret! };
    const aliceId = (await createUser(app.context, 'alice')).id;
    const tokens = await codeFlow(app, web, SCOPE, 'alice');
    await app.close();

    const run = await cli('revoke', '--user', 'alice', '--client', web.id, '--reason', 'consent withdrawn, ticket 77');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ sub: aliceId, client_id: web.id, families_revoked: 1, consent_deleted: true });

    app = await open();
    try {
      expect((await refresh(app, web, tokens.refresh_token!)).json()).toMatchObject({ error: 'invalid_grant' });
      const events = await new AuditEventRepository(app.context.store.db).query({ clientId: web.id });
      // Named in full so that a failure here says which events were there (it failed once, unreproduced).
      expect(events.map((e) => e.event), run.stderr).toContain('family.revoked');
      const event = events.find((e) => e.event === 'family.revoked')!;
      expect(event.details).toMatchObject({ revoked_by: `cli:${userInfo().username}`, reason: 'consent withdrawn, ticket 77', of: 'user_client', families: 1 });
      expect(await app.context.store.db.selectFrom('consents').selectAll().where('user_id', '=', aliceId).execute()).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
