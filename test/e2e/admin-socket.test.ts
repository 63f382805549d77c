import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { overHttp } from '../support/fault.js';
import { freePort, latchkey, run, waitFor, type Running } from '../support/process.js';
import { onPostgres } from '../support/store.js';

const METRICS_TOKEN = 'metrics-token-of-the-admin-socket-e2e-0123456789';

/** `latchkey keys list` parsed: kid and state per row. */
function keyStates(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trim().split('\n').slice(1).map((line) => {
    const [kid, , state] = line.split(/\s+/);
    return [kid!, state!];
  }));
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function form(url: string, auth: string, params: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
  return await res.json() as Record<string, unknown>;
}

/** One admin counter of the server's /metrics: latchkey_admin_requests_total for a route, method and status. */
function adminCount(metrics: string, route: string, method: string, status = '200'): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`latchkey_admin_requests_total{route="${route}",method="${method}",status="${status}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe.skipIf(onPostgres)('the CLI beside a running embedded server, through its local admin socket', { timeout: 300_000 }, () => {
  const running: Running[] = [];
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
  });

  it('acts on the running server: keys, users, tokens, clients — audited as local-socket, counted in its metrics', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lk-sock-'));
    const env = { DATA_DIR: dataDir, DEMO: 'false', KEY_CHECK_INTERVAL: '1h', ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', METRICS_TOKEN };
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const server = run(['start'], { ...env, PORT: String(port), ISSUER: issuer });
    running.push(server);
    await waitFor(`${issuer}/readyz`);
    const socket = join(dataDir, 'admin.sock');
    await expect.poll(() => existsSync(socket)).toBe(true);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(server.stdout()).toContain(`admin:      ${socket} (local socket`);

    // Over TCP the admin API stays as it was: without ADMIN_TOKENS it is not there, with or without a bearer.
    expect((await fetch(`${issuer}/admin/keys`)).status).toBe(404);
    expect((await fetch(`${issuer}/admin/users`, { headers: { authorization: 'Bearer local-socket' } })).status).toBe(404);

    // A second server on the same DATA_DIR still refuses.
    const second = run(['start'], { ...env, PORT: String(await freePort()) });
    running.push(second);
    expect(await second.exited).not.toBe(0);
    expect(second.stderr()).toContain(`is in use by a running Latchkey server (pid ${server.child.pid})`);
    expect(existsSync(socket)).toBe(true);

    // keys rotate and reactivate: the running server's JWKS and signing follow at once.
    const jwks = async () => ((await (await fetch(`${issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();
    const before = keyStates((await latchkey(['keys', 'list'], env)).stdout);
    const firstActive = Object.keys(before).find((k) => before[k] === 'active')!;
    const firstNext = Object.keys(before).find((k) => before[k] === 'next')!;
    const rotate = await latchkey(['keys', 'rotate'], env);
    expect(rotate.stderr).toBe('');
    expect(rotate.code).toBe(0);
    expect(rotate.stdout).toContain(`retired ES256 key ${firstActive} (published until the tokens it signed expire)\n`);
    expect(rotate.stdout).toContain(`activated ES256 key ${firstNext}`);
    const rotated = keyStates((await latchkey(['keys', 'list'], env)).stdout);
    expect(rotated[firstActive]).toBe('retired');
    expect(rotated[firstNext]).toBe('active');
    const newNext = Object.keys(rotated).find((k) => rotated[k] === 'next')!;
    expect(await jwks()).toEqual([firstActive, firstNext, newNext].sort());
    const reactivate = await latchkey(['keys', 'reactivate', firstActive], env);
    expect(reactivate).toMatchObject({ code: 0, stdout: `retired ES256 key ${firstNext} (published until the tokens it signed expire)\nre-activated ES256 key ${firstActive} (it signs again)\n` });
    expect(keyStates((await latchkey(['keys', 'list'], env)).stdout)[firstActive]).toBe('active');
    const refused = await latchkey(['keys', 'reactivate', 'no-such-kid'], env);
    expect(refused).toMatchObject({ code: 2, stderr: 'latchkey keys: not_found: no such signing key\n' });

    // users: create, sign in, set-password ends the session at once; the old password stops working.
    const create = await latchkey(['users', 'create', '--username', 'alice', '--password-stdin'], env, 'the first passphrase\n');
    expect(create.stderr).toBe('');
    expect(create.stdout).toMatch(/^created user alice \(sub [0-9a-f-]{36}\)\n$/);
    const browser = new Browser(overHttp(issuer));
    expect((await browser.signIn('alice', 'the first passphrase')).statusCode).toBe(303);
    const sessions = await latchkey(['users', 'sessions', 'alice', '--json'], env);
    expect(JSON.parse(sessions.stdout)).toHaveLength(1);
    const setPassword = await latchkey(['users', 'set-password', 'ALICE', '--password-stdin'], env, 'the second passphrase\n');
    expect(setPassword).toMatchObject({ code: 0, stdout: 'password of alice replaced\nsessions ended: 1, grants revoked: 0\n' });
    expect(JSON.parse((await latchkey(['users', 'sessions', 'alice', '--json'], env)).stdout)).toEqual([]);
    expect((await new Browser(overHttp(issuer)).signIn('alice', 'the first passphrase')).statusCode).not.toBe(303);
    expect((await new Browser(overHttp(issuer)).signIn('alice', 'the second passphrase')).statusCode).toBe(303);
    expect(await latchkey(['users', 'end-sessions', 'alice'], env)).toMatchObject({ code: 0, stdout: 'sessions ended: 1\n' });
    expect(JSON.parse((await latchkey(['users', 'sessions', 'alice', '--json'], env)).stdout)).toEqual([]);
    expect(await latchkey(['users', 'disable', 'nobody'], env)).toMatchObject({ code: 2, stderr: 'latchkey users: no user "nobody"\n' });

    // clients and tokens: revoke-jti, then rotate-secret --revoke-issued; introspection says inactive at once.
    const created = await latchkey(['clients', 'create', '--client-id', 'worker', '--grant-type', 'client_credentials', '--scope', 'api'], env);
    expect(created.code).toBe(0);
    let secret = (JSON.parse(created.stdout) as { client_secret: string }).client_secret;
    const token = async () => (await form(`${issuer}/token`, basic('worker', secret), { grant_type: 'client_credentials', scope: 'api' })).access_token as string;
    const active = async (t: string) => (await form(`${issuer}/introspect`, basic('worker', secret), { token: t })).active;
    const first = await token();
    const second2 = await token();
    expect(await active(first)).toBe(true);
    const jti = (JSON.parse(Buffer.from(first.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
    const revokeJti = await latchkey(['tokens', 'revoke-jti', jti, '--reason', 'leaked in a log'], env);
    expect(revokeJti.code).toBe(0);
    expect(JSON.parse(revokeJti.stdout)).toMatchObject({ jti });
    expect(await active(first)).toBe(false);
    expect(await active(second2)).toBe(true);
    const rotateSecret = await latchkey(['clients', 'rotate-secret', 'worker', '--revoke-issued'], env);
    expect(rotateSecret.code).toBe(0);
    const rotatedClient = JSON.parse(rotateSecret.stdout) as { client_id: string; client_secret: string; tokens_not_before: string; families_revoked: number };
    expect(rotatedClient).toMatchObject({ client_id: 'worker', families_revoked: 0 });
    expect(rotatedClient.client_secret).not.toBe(secret);
    expect(rotateSecret.stderr).toBe('The client_secret above is shown once; store it now.\n');
    secret = rotatedClient.client_secret;
    expect(await active(second2)).toBe(false);
    // A token issued after the cutoff's second is active (iat has whole seconds).
    await new Promise((r) => setTimeout(r, 1100));
    expect(await active(await token())).toBe(true);

    // The audit trail names the socket as the admin who acted.
    const audit = await latchkey(['audit', '--event-prefix', 'token.revoked', '--json'], env);
    expect(audit.code).toBe(0);
    const [revokedEvent] = (JSON.parse(audit.stdout) as { events: Array<Record<string, unknown>> }).events;
    expect(JSON.stringify(revokedEvent)).toContain('"admin":"local-socket"');
    expect(JSON.stringify(revokedEvent)).toContain(jti);
    const passwordSet = JSON.parse((await latchkey(['audit', '--event', 'user.password_set', '--json'], env)).stdout) as { events: Array<Record<string, unknown>> };
    expect(passwordSet.events).toHaveLength(1);
    expect(JSON.stringify(passwordSet.events[0])).toContain('"admin":"local-socket"');

    // ... and the server's own metrics registry counted every action.
    const metrics = await (await fetch(`${issuer}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(adminCount(metrics, '/admin/keys/rotate', 'POST')).toBe(1);
    expect(adminCount(metrics, '/admin/keys/:kid/reactivate', 'POST')).toBe(1);
    expect(adminCount(metrics, '/admin/keys/:kid/reactivate', 'POST', '404')).toBe(1);
    expect(adminCount(metrics, '/admin/users/:login/password', 'POST')).toBe(1);
    expect(adminCount(metrics, '/admin/users/:login/sessions', 'DELETE')).toBe(1);
    expect(adminCount(metrics, '/admin/tokens/revoke', 'POST')).toBe(1);
    expect(adminCount(metrics, '/admin/clients/:client_id/rotate-secret', 'POST')).toBe(1);

    // Stopped, the server removes its socket; the CLI then opens the store itself.
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
    const direct = await latchkey(['users', 'list'], env);
    expect(direct).toMatchObject({ code: 0 });
    expect(direct.stdout).toMatch(/^alice\t[0-9a-f-]{36}\t-\tactive\n$/);
  });
});
