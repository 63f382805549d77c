import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/platform/observability/audit.js';
import { AuditEventRepository, type NewAuditEvent } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, LogCapture, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';

describe('per-client summaries of high-volume audit events', () => {
  it('writes one token.issued.summary row per client and minute once the minute is over, with exact counts, first/last jti and scopes', async () => {
    const clock = new ManualClock('2026-03-01T12:00:10Z');
    const logs = new LogCapture();
    const written: NewAuditEvent[] = [];
    const audit = createAuditLog(logs.logger, {
      clock, flushIntervalMs: 3600_000, excludeFromSink: ['token.issued:client_credentials'],
      sink: async (events) => { written.push(...events); },
    });
    const issue = (client: string, jti: string, scope?: string) =>
      audit.record('token.issued', { client_id: client, grant_type: 'client_credentials', jti, scope, ip: '10.0.0.1', client_secret: 'LEAKED-SECRET' });
    issue('svc-a', 'a1', 'api:read');
    clock.advance(20);
    issue('svc-b', 'b1');
    issue('svc-a', 'a2', 'api:read api:write');
    clock.advance(20);
    issue('svc-a', 'a3', 'api:read');
    clock.advance(30); // 12:01:20: the minute 12:00 is over
    issue('svc-a', 'a4');
    await audit.flush();
    expect(written.map((e) => ({ at: e.at.toISOString(), event: e.event, client_id: e.client_id, jti: e.jti, details: e.details }))).toEqual([
      {
        at: '2026-03-01T12:00:00.000Z', event: 'token.issued.summary', client_id: 'svc-a', jti: null,
        details: {
          grant_type: 'client_credentials', minute: '2026-03-01T12:00:00.000Z', count: 3,
          first_at: '2026-03-01T12:00:10.000Z', last_at: '2026-03-01T12:00:50.000Z', first_jti: 'a1', last_jti: 'a3',
          scope: 'api:read api:write', scopes: ['api:read', 'api:read api:write'],
        },
      },
      {
        at: '2026-03-01T12:00:00.000Z', event: 'token.issued.summary', client_id: 'svc-b', jti: null,
        details: {
          grant_type: 'client_credentials', minute: '2026-03-01T12:00:00.000Z', count: 1,
          first_at: '2026-03-01T12:00:30.000Z', last_at: '2026-03-01T12:00:30.000Z', first_jti: 'b1', last_jti: 'b1',
        },
      },
    ]);
    // The minute still running is written at close.
    await audit.close();
    expect(written.slice(2).map((e) => [e.client_id, e.details.count, e.details.first_jti])).toEqual([['svc-a', 1, 'a4']]);
    // Each issuance is in the log with its jti; the summaries too; the secret nowhere.
    expect(logs.lines.filter((l) => l.event === 'token.issued').map((l) => l.jti)).toEqual(['a1', 'b1', 'a2', 'a3', 'a4']);
    expect(logs.lines.filter((l) => l.event === 'token.issued.summary').map((l) => l.count)).toEqual([3, 1, 1]);
    expect(logs.text()).not.toContain('LEAKED-SECRET');
    expect(JSON.stringify(written)).not.toContain('LEAKED-SECRET');
  });

  it('counts under (other) beyond the key limit, so made-up client ids cannot grow memory or the table', async () => {
    const written: NewAuditEvent[] = [];
    const audit = createAuditLog(new LogCapture().logger, {
      clock: new ManualClock('2026-03-01T12:00:00Z'), flushIntervalMs: 3600_000, maxTallyKeys: 2, sink: async (events) => { written.push(...events); },
    });
    for (const client of ['c1', 'c2', 'c3', 'c4', 'c1', 'c5']) audit.tally('token.failed', { client_id: client, grant_type: 'client_credentials', error: 'invalid_client' });
    await audit.close();
    expect(written.map((e) => [e.event, e.client_id, e.details.count, e.details.error])).toEqual([
      ['token.failed.summary', 'c1', 2, 'invalid_client'],
      ['token.failed.summary', 'c2', 1, 'invalid_client'],
      ['token.failed.summary', '(other)', 3, 'invalid_client'],
    ]);
  });
});

describe('token endpoint and introspection summaries', () => {
  let app: TestApp;
  const clock = new ManualClock('2026-03-01T12:00:05Z');
  let clientId: string;
  let secret: string;
  beforeAll(async () => {
    app = await createTestApp({}, { clock });
    const created = await createClient(app.context, { grant_types: ['client_credentials'], introspect_any_token: true }, 'svc-summary');
    clientId = created.client.clientId;
    secret = created.clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  const token = (payload: Record<string, string>, authorization?: string) => app.server.inject({
    method: 'POST', url: '/token', headers: { ...FORM_HEADERS, ...(authorization ? { authorization } : {}) }, payload: form(payload),
  });
  const jtiOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')).jti as string;

  it('stores client_credentials issuance, failures and introspection per client and minute, with exact counts and nothing secret', async () => {
    const issued: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const res = await token({ grant_type: 'client_credentials' }, basic(clientId, secret));
      expect(res.statusCode).toBe(200);
      issued.push(res.json().access_token);
    }
    for (let i = 0; i < 2; i += 1) expect((await token({ grant_type: 'client_credentials' }, basic(clientId, 'wrong-secret'))).statusCode).toBe(401);
    expect((await token({ grant_type: 'no_such_grant', client_id: 'claimed-client' })).json().error).toBe('unsupported_grant_type');
    const introspect = (t: string) => app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(clientId, secret) }, payload: form({ token: t }) });
    expect((await introspect(issued[0]!)).json().active).toBe(true);
    expect((await introspect('not-a-token')).json().active).toBe(false);
    expect((await introspect(issued[1]!)).json().active).toBe(true);

    clock.advance(60);
    await app.context.audit.flush();
    const rows = await new AuditEventRepository(app.context.store.db).query({ eventPrefix: 'token.', since: new Date('2026-03-01T12:00:00Z') });
    const summaries = rows.filter((r) => r.event.endsWith('.summary'));
    expect(summaries.map((r) => ({ event: r.event, client_id: r.client_id, at: r.at.toISOString(), count: r.details.count, grant_type: r.details.grant_type, error: r.details.error, outcomes: r.details.outcomes }))).toEqual([
      { event: 'token.issued.summary', client_id: clientId, at: '2026-03-01T12:00:00.000Z', count: 3, grant_type: 'client_credentials', error: undefined, outcomes: undefined },
      { event: 'token.failed.summary', client_id: clientId, at: '2026-03-01T12:00:00.000Z', count: 2, grant_type: 'client_credentials', error: 'invalid_client', outcomes: undefined },
      { event: 'token.failed.summary', client_id: 'claimed-client', at: '2026-03-01T12:00:00.000Z', count: 1, grant_type: 'unsupported', error: 'unsupported_grant_type', outcomes: undefined },
      { event: 'token.introspected.summary', client_id: clientId, at: '2026-03-01T12:00:00.000Z', count: 3, grant_type: undefined, error: undefined, outcomes: { active: 2, inactive: 1 } },
    ]);
    expect(summaries[0]!.details).toMatchObject({ first_jti: jtiOf(issued[0]!), last_jti: jtiOf(issued[2]!) });
    // No single client_credentials issuance row: the log has each jti.
    expect(rows.filter((r) => r.event === 'token.issued')).toEqual([]);
    expect(app.logs.lines.filter((l) => l.event === 'token.issued').map((l) => l.jti)).toEqual(issued.map(jtiOf));
    const stored = JSON.stringify(rows);
    for (const text of [secret, 'wrong-secret', ...issued]) {
      expect(stored).not.toContain(text);
      expect(app.logs.text()).not.toContain(text);
    }
  });
});
