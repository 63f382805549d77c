import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { App } from '../../src/server/app.js';
import { runCli } from '../../src/cli.js';
import { AuditEventRepository, type NewAuditEvent } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';
import { eventually } from '../support/clients.js';

const ADMIN = 'admin-credential-0123456789-abcdefghijklmnop';

const event = (at: string, name: string, fields: Partial<NewAuditEvent> = {}): NewAuditEvent => ({
  at: new Date(at), event: name, request_id: null, client_id: null, sub: null, ip: null, user_agent: null, jti: null, details: {}, ...fields,
});

/** The events an on-call searches: different IPs, agents, grants and scopes. */
const EVENTS: NewAuditEvent[] = [
  event('2026-04-01T10:00:00Z', 'token.issued', { client_id: 'web', jti: 'e1', ip: '10.0.0.7', user_agent: 'Mozilla/5.0 (X11) Firefox/140', details: { grant_type: 'authorization_code', scope: 'openid api:read api:write' } }),
  event('2026-04-01T10:01:00Z', 'token.issued', { client_id: 'svc', jti: 'e2', ip: '10.0.0.8', user_agent: 'curl/8.5.0', details: { grant_type: 'client_credentials', scope: 'api:readonly' } }),
  event('2026-04-01T10:02:00Z', 'token.revoked', { client_id: 'web', jti: 'e3', ip: '10.0.0.7', user_agent: 'curl/8.5.0', details: { scope: 'api:read' } }),
  event('2026-04-01T10:03:00Z', 'login_x.failed', { sub: 'u1', jti: 'e4', ip: '10.0.0.70', user_agent: 'Mozilla/5.0 (Mac) Safari' }),
  event('2026-04-01T10:04:00Z', 'loginax.failed', { sub: 'u2', jti: 'e5', ip: '10.0.0.7' }),
  event('2026-04-01T10:05:00Z', 'tokens.listed', { jti: 'e6', details: { grant_type: 'authorization_code' } }),
];
const DAY = 'since=2026-04-01T00:00:00Z&until=2026-04-02T00:00:00Z';

/** Each filter alone, exact (no near miss), and combined; the same cases for the API and the CLI. */
const CASES: Array<[Record<string, string>, string[]]> = [
  [{ ip: '10.0.0.7' }, ['e1', 'e3', 'e5']],
  [{ user_agent: 'curl/' }, ['e2', 'e3']],
  [{ user_agent: 'Mozilla/5.0' }, ['e1', 'e4']],
  [{ user_agent: 'mozilla' }, []],
  [{ grant_type: 'authorization_code' }, ['e1', 'e6']],
  [{ grant_type: 'client_credentials' }, ['e2']],
  [{ scope: 'api:read' }, ['e1', 'e3']],
  [{ scope: 'api:readonly' }, ['e2']],
  [{ scope: 'api' }, []],
  [{ event_prefix: 'token.' }, ['e1', 'e2', 'e3']],
  [{ event_prefix: 'token' }, ['e1', 'e2', 'e3', 'e6']],
  [{ event_prefix: 'login_' }, ['e4']],
  [{ ip: '10.0.0.7', event_prefix: 'token.', scope: 'api:read', user_agent: 'curl' }, ['e3']],
  [{ grant_type: 'authorization_code', event_prefix: 'token.', ip: '10.0.0.7' }, ['e1']],
];

describe('GET /admin/audit filters', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ ADMIN_TOKENS: ADMIN });
    await new AuditEventRepository(app.context.store.db).insertMany(EVENTS);
  });
  afterAll(async () => { await app.close(); });
  const get = (query: string) => app.server.inject({ method: 'GET', url: `/admin/audit?${DAY}&${query}`, headers: { authorization: `Bearer ${ADMIN}` } });

  it('filters by ip, user agent substring, grant type, scope token and event prefix, alone and combined', async () => {
    for (const [filter, expected] of CASES) {
      const res = await get(new URLSearchParams(filter).toString());
      expect(res.statusCode, JSON.stringify(filter)).toBe(200);
      expect((res.json() as { events: Array<{ jti: string }> }).events.map((e) => e.jti), JSON.stringify(filter)).toEqual(expected);
    }
  });

  it('refuses a scope with a space and an event prefix that is not one', async () => {
    for (const [query, description] of [
      ['scope=api%20openid', 'scope: must be one scope token (no spaces)'],
      ['event_prefix=%25', 'event_prefix: must be the start of an event name such as token.'],
      ['ip=', 'ip: must not be empty'],
    ]) {
      const res = await get(query!);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: 'invalid_request', error_description: description });
    }
  });
});

describe('latchkey audit: filters, --server and --follow', () => {
  const store = sharedStoreForCli('latchkey-audit-');
  let app: App;
  let url: string;
  beforeAll(async () => {
    store.setUp({ ADMIN_TOKENS: `oncall:${ADMIN}` });
    app = await store.open();
    await new AuditEventRepository(app.context.store.db).insertMany(EVENTS);
    url = await app.server.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
    delete process.env.LATCHKEY_ADMIN_TOKEN;
    await store.tearDown();
  });

  const args = (filter: Record<string, string>) => Object.entries(filter).flatMap(([k, v]) => [`--${k.replace('_', '-')}`, v]);
  const jtis = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { jti: string }).jti);
  const day = ['--since', '2026-04-01T00:00:00Z', '--until', '2026-04-02T00:00:00Z'];

  it('--server reads through GET /admin/audit with LATCHKEY_ADMIN_TOKEN, with every filter', async () => {
    delete process.env.LATCHKEY_ADMIN_TOKEN;
    expect(await runCliCaptured(['audit', '--server', url])).toMatchObject({ code: 2, stdout: '' });
    process.env.LATCHKEY_ADMIN_TOKEN = 'wrong-credential-0123456789-abcdefghijklmnop';
    const refused = await runCliCaptured(['audit', '--server', url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('invalid_token');
    process.env.LATCHKEY_ADMIN_TOKEN = ADMIN;
    // The credential never goes over plain http to another host.
    const remote = await runCliCaptured(['audit', '--server', 'http://id.example.com']);
    expect(remote).toMatchObject({ code: 2, stdout: '' });
    expect(remote.stderr).toContain('--server: must be https (http only on a loopback host)');
    for (const [filter, expected] of CASES) {
      const res = await runCliCaptured(['audit', '--server', url, ...day, ...args(filter)]);
      expect(res.code, JSON.stringify(filter)).toBe(0);
      expect(jtis(res.stdout), JSON.stringify(filter)).toEqual(expected);
    }
    const page = await runCliCaptured(['audit', '--server', url, ...day, '--limit', '2', '--json']);
    expect(JSON.parse(page.stdout)).toMatchObject({ events: [{ jti: 'e1' }, { jti: 'e2' }], next_cursor: expect.any(String) });
  });

  it('--follow prints an event recorded after it started, and stops cleanly on SIGINT', async () => {
    process.env.LATCHKEY_ADMIN_TOKEN = ADMIN;
    let stdout = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => { stdout += String(chunk); return true; });
    try {
      const running = runCli(['audit', '--server', url, '--follow', '--event-prefix', 'incident.', '--ip', '192.0.2.9']);
      await new Promise((r) => setTimeout(r, 300));
      app.context.audit.record('incident.probe', { ip: '192.0.2.9', jti: 'followed', client_secret: 'LEAKED-SECRET' });
      app.context.audit.record('incident.probe', { ip: '192.0.2.10', jti: 'other-ip' });
      app.context.audit.record('other.probe', { ip: '192.0.2.9', jti: 'other-event' });
      await app.context.audit.flush();
      await eventually(() => stdout.includes('"followed"'), 10_000);
      process.emit('SIGINT');
      expect(await running).toBe(0);
      expect(jtis(stdout)).toEqual(['followed']);
      expect(stdout).not.toContain('LEAKED-SECRET');
    } finally {
      out.mockRestore();
    }
  });

  it('filters the store directly too (no server owning it), and --follow refuses --until, --limit and --json', async () => {
    await app.close();
    for (const [filter, expected] of CASES) {
      const res = await runCliCaptured(['audit', ...day, ...args(filter)]);
      expect(res.code, JSON.stringify(filter)).toBe(0);
      expect(jtis(res.stdout), JSON.stringify(filter)).toEqual(expected);
    }
    expect(await runCliCaptured(['audit', '--follow', '--json'])).toEqual({ code: 2, stdout: '', stderr: 'latchkey audit: --follow: not with --json\n' });
    expect(await runCliCaptured(['audit', '--follow', '--until', '2026-04-02T00:00:00Z'])).toMatchObject({ code: 2, stderr: 'latchkey audit: --follow: not with --until\n' });
    app = await store.open();
  });
});
