import { userInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/server/app.js';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import type { TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { codeFlow, refresh, REDIRECT, type TestClient } from '../support/refresh.js';

/** `latchkey clients …` in this process, with its stdout and stderr captured. */
const cli = (...args: string[]) => runCliCaptured(['clients', ...args]);

const clientCredentials = (app: App, client: TestClient) => app.server.inject({
  method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret!) }, payload: form({ grant_type: 'client_credentials' }),
});
const introspect = async (app: App, caller: TestClient, token: string) => (await app.server.inject({
  method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(caller.id, caller.secret!) }, payload: form({ token }),
})).json().active as boolean;
const userinfo = async (app: App, token: string) => (await app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${token}` } })).statusCode;

describe('latchkey clients: a leaked secret, stale clients and rate-limit overrides from the command line', () => {
  const { open, setUp, tearDown } = sharedStoreForCli('latchkey-client-incident-');
  beforeAll(() => { setUp(FAST_ARGON2); });
  afterAll(async () => { await tearDown(); });

  it('has --help naming the new subcommands and options, and refuses revoke-issued without a reason', async () => {
    const help = (await cli('--help')).stdout;
    for (const text of ['revoke-issued <client_id> --reason TEXT', '--revoke-issued', '--stale DURATION', '--rate-limit ENDPOINT=N']) expect(help).toContain(text);
    const noReason = await cli('revoke-issued', 'x');
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('revoke-issued needs --reason');
    expect((await cli('list', '--stale', 'soon')).code).toBe(2);
    expect((await cli('show', 'x', '--stale', '1d')).code).toBe(2);
  });

  it('rotate-secret --revoke-issued and revoke-issued: earlier tokens inactive, refresh invalid_grant, kept across disable/enable; later tokens live', async () => {
    let app = await open();
    const m2m: TestClient = { id: 'etl', secret: (await createClient(app.context, { grant_types: ['client_credentials'] }, 'etl')).clientSecret! };
    const web: TestClient = { id: 'portal', secret: (await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' }, 'portal')).clientSecret! };
    await createUser(app.context, 'alice');
    const m2mToken = (await clientCredentials(app, m2m)).json().access_token as string;
    const offline = await codeFlow(app as TestApp, web, 'openid offline_access');
    const online = await codeFlow(app as TestApp, web, 'openid');
    expect(await userinfo(app, online.access_token)).toBe(200);
    await app.close();

    const rotated = await cli('rotate-secret', 'etl', '--revoke-issued');
    expect(rotated.code, rotated.stderr).toBe(0);
    const rotatedBody = JSON.parse(rotated.stdout);
    expect(rotatedBody).toMatchObject({ client_id: 'etl', families_revoked: 0 });
    expect(rotatedBody.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotatedBody.tokens_not_before).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    const revoked = await cli('revoke-issued', 'portal', '--reason', 'portal host compromised, INC-9');
    expect(revoked.code, revoked.stderr).toBe(0);
    const revokedBody = JSON.parse(revoked.stdout);
    expect(revokedBody).toMatchObject({ client_id: 'portal', families_revoked: 1 });
    // Disabled and enabled again: the cutoff stays.
    expect((await cli('disable', 'portal')).code).toBe(0);
    expect(JSON.parse((await cli('enable', 'portal')).stdout)).toMatchObject({ disabled: false, tokens_not_before: revokedBody.tokens_not_before });

    app = await open();
    try {
      const newM2m: TestClient = { id: 'etl', secret: rotatedBody.client_secret };
      expect((await clientCredentials(app, m2m)).statusCode).toBe(401); // the leaked secret ended at once
      expect(await introspect(app, newM2m, m2mToken)).toBe(false);
      expect(await introspect(app, web, offline.access_token)).toBe(false);
      expect(await introspect(app, web, online.access_token)).toBe(false);
      expect(await userinfo(app, online.access_token)).toBe(401);
      expect((await refresh(app, web, offline.refresh_token!)).json()).toMatchObject({ error: 'invalid_grant' });

      // Tokens are dated in whole seconds: wait until the cutoff's second has begun (under a second).
      const cutoff = Math.max(Date.parse(rotatedBody.tokens_not_before), Date.parse(revokedBody.tokens_not_before));
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, cutoff - Date.now() + 5)));
      const fresh = (await clientCredentials(app, newM2m)).json().access_token as string;
      expect(await introspect(app, newM2m, fresh)).toBe(true);
      const later = await codeFlow(app as TestApp, web, 'openid');
      expect(await userinfo(app, later.access_token)).toBe(200);

      const events = await new AuditEventRepository(app.context.store.db).query({ clientId: 'portal' });
      const event = events.find((e) => e.event === 'client.tokens_revoked');
      expect(event?.details, events.map((e) => e.event).join()).toMatchObject({
        tokens_not_before: revokedBody.tokens_not_before, reason: 'portal host compromised, INC-9', families_revoked: 1, by: `cli:${userInfo().username}`,
      });
    } finally {
      await app.close();
    }
  });

  it('shows last_used_at once flushed, lists stale clients with --stale, and sets a rate-limit override', async () => {
    // Every client of this store was used (etl, portal) or created (…) moments ago: none is 90 days stale.
    const none = await cli('list', '--stale', '90d');
    expect(none.code, none.stderr).toBe(0);
    expect(JSON.parse(none.stdout)).toEqual([]);
    const shown = JSON.parse((await cli('show', 'etl')).stdout);
    expect(typeof shown.last_used_at).toBe('string'); // written when the server closed
    const all = JSON.parse((await cli('list', '--stale', '0')).stdout) as Array<{ client_id: string }>;
    expect(all.map((c) => c.client_id).sort()).toEqual(['etl', 'portal']);

    const limited = await cli('update', 'etl', '--rate-limit', 'token=3', '--rate-limit', 'introspection=50');
    expect(limited.code, limited.stderr).toBe(0);
    expect(JSON.parse(limited.stdout).rate_limits).toEqual({ token: 3, introspection: 50 });
    expect((await cli('update', 'etl', '--rate-limit', 'token=lots')).code).toBe(2);
    const unknown = await cli('update', 'etl', '--rate-limit', 'authorize=3');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('invalid_client_metadata');
  });
});
