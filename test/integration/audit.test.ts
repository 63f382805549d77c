import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { requestAuditFields } from '../../src/server/http/audit-fields.js';
import type { Store } from '../../src/platform/db/database.js';
import { migrate } from '../../src/platform/db/migrator.js';
import { createAuditLog } from '../../src/platform/observability/audit.js';
import { enforceAuditRetention } from '../../src/platform/observability/audit-retention.js';
import { createMetrics } from '../../src/platform/observability/metrics.js';
import { AuditEventRepository, type NewAuditEvent } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, LogCapture, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { openTestStore } from '../support/store.js';

describe('durable audit trail', () => {
  let app: TestApp;
  const clock = new ManualClock('2026-03-01T12:00:00Z');
  beforeAll(async () => {
    const probe = async (server: FastifyInstance) => {
      server.post('/probe', async (req) => {
        app.context.audit.record('token.issued', { client_id: 'billing', sub: 'billing', jti: 'jti-1', scope: 'api:read', client_secret: 'LEAKED-SECRET', ...requestAuditFields(req) });
        return { ok: true };
      });
    };
    app = await createTestApp({}, { clock, extraRoutes: [probe] });
  });
  afterAll(async () => { await app.close(); });

  it('writes an event to the log and the table, with the request id, ip and user agent the HTTP layer passes', async () => {
    await app.server.inject({ method: 'POST', url: '/probe', headers: { 'x-request-id': 'req-audit-1', 'user-agent': 'probe/1.0' } });
    await app.context.audit.flush();
    const rows = await new AuditEventRepository(app.context.store.db).query({ clientId: 'billing' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      event: 'token.issued', request_id: 'req-audit-1', client_id: 'billing', sub: 'billing', jti: 'jti-1',
      ip: '127.0.0.1', user_agent: 'probe/1.0', details: { scope: 'api:read' }, at: new Date('2026-03-01T12:00:00Z'),
    });
    const line = app.logs.lines.find((l) => l.event === 'token.issued')!;
    expect(line).toMatchObject({ request_id: 'req-audit-1', client_id: 'billing', jti: 'jti-1', audit: true });
    expect(app.logs.text()).not.toContain('LEAKED-SECRET');
    expect(JSON.stringify(rows)).not.toContain('LEAKED-SECRET');
  });

  it('filters by event, subject and time window', async () => {
    const repo = new AuditEventRepository(app.context.store.db);
    clock.advance(3600);
    app.context.audit.record('login.succeeded', { sub: 'user-1' });
    clock.advance(3600);
    app.context.audit.record('login.failed', { sub: 'user-1', reason: 'bad_password' });
    await app.context.audit.flush();
    expect((await repo.query({ sub: 'user-1' })).map((r) => r.event)).toEqual(['login.succeeded', 'login.failed']);
    expect((await repo.query({ sub: 'user-1', event: 'login.failed' })).map((r) => r.details)).toEqual([{ reason: 'bad_password' }]);
    expect((await repo.query({ since: new Date('2026-03-01T13:30:00Z') })).map((r) => r.event)).toEqual(['login.failed']);
    expect((await repo.query({ until: new Date('2026-03-01T13:30:00Z'), sub: 'user-1' })).map((r) => r.event)).toEqual(['login.succeeded']);
  });
});

describe('audit buffering', () => {
  let store: Store;
  beforeAll(async () => { store = await openTestStore(); await migrate(store.db, migrations); });
  afterAll(async () => { await store.close(); });

  it('keeps events while the database refuses them and writes them once it accepts', async () => {
    const logs = new LogCapture();
    const repo = new AuditEventRepository(store.db);
    let down = true;
    const audit = createAuditLog(logs.logger, {
      clock: new ManualClock(), flushIntervalMs: 3600_000,
      sink: async (events) => { if (down) throw new Error('connection refused'); await repo.insertMany(events); },
    });
    audit.record('a.one', { sub: 's' });
    audit.record('a.two', { sub: 's' });
    await audit.flush();
    expect(logs.text()).toContain('audit events could not be written; will retry');
    down = false;
    await audit.close();
    expect((await repo.query({ sub: 's' })).map((r) => r.event)).toEqual(['a.one', 'a.two']);
  });

  it('sets aside an event the database refuses for its data, writes the rest of its batch and keeps going', async () => {
    const logs = new LogCapture();
    const metrics = createMetrics({ defaultMetrics: false });
    const repo = new AuditEventRepository(store.db);
    let invalidTime = false;
    const clock = { now: () => (invalidTime ? new Date(Number.NaN) : new Date()) };
    const statements: number[] = [];
    const audit = createAuditLog(logs.logger, {
      clock, registry: metrics.registry, flushIntervalMs: 3600_000,
      sink: async (events) => { statements.push(events.length); await repo.insertMany(events); },
    });
    audit.record('p.one', { sub: 'poison' });
    invalidTime = true;
    audit.record('p.bad', { sub: 'poison', request_id: 'req-bad' }); // no time: the NOT NULL column refuses it (SQLSTATE 23502)
    invalidTime = false;
    audit.record('p.two', { sub: 'poison' });
    await audit.flush();
    expect((await repo.query({ sub: 'poison' })).map((r) => r.event)).toEqual(['p.one', 'p.two']);
    expect(statements).toEqual([3, 1, 1, 1]);
    expect(logs.lines.find((l) => l.msg === 'audit event refused by the database; dropped (its log line remains)')).toMatchObject({ audit_event: 'p.bad', request_id: 'req-bad', err: { sqlstate: '23502' } });
    expect(logs.lines.find((l) => l.event === 'p.bad')).toMatchObject({ audit: true, sub: 'poison' });
    expect(await metrics.registry.getSingleMetricAsString('latchkey_audit_events_dropped_total')).toContain('latchkey_audit_events_dropped_total 1');
    // Nothing is left to retry, and later events are written as usual.
    audit.record('p.three', { sub: 'poison' });
    await audit.close();
    expect((await repo.query({ sub: 'poison' })).map((r) => r.event)).toEqual(['p.one', 'p.two', 'p.three']);
    expect(statements).toEqual([3, 1, 1, 1, 1]);
    expect(logs.text()).not.toContain('will retry');
  });

  it('keeps the rest of a refused batch for the retry when the database stops answering while it is set apart', async () => {
    const logs = new LogCapture();
    const written: string[] = [];
    const dataError = Object.assign(new Error('null value in column "at"'), { code: '23502' });
    let calls = 0;
    const audit = createAuditLog(logs.logger, {
      clock: new ManualClock(), flushIntervalMs: 3600_000,
      sink: async (events) => {
        calls += 1;
        if (calls === 1) throw dataError; // the batch of three
        if (calls === 2) { written.push(...events.map((e) => e.event)); return; } // the first alone
        if (calls === 3) throw new Error('connection refused'); // no SQLSTATE: unavailable
        written.push(...events.map((e) => e.event));
      },
    });
    for (const name of ['q.one', 'q.two', 'q.three']) audit.record(name);
    await audit.flush();
    expect(written).toEqual(['q.one']);
    expect(logs.lines.find((l) => l.msg === 'audit events could not be written; will retry')).toMatchObject({ err: { message: 'connection refused' }, buffered: 2 });
    await audit.close();
    expect(written).toEqual(['q.one', 'q.two', 'q.three']);
  });

  it('retries a batch refused as a duplicate key (a lagging id sequence), dropping nothing', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const written: string[] = [];
    let calls = 0;
    const audit = createAuditLog(new LogCapture().logger, {
      clock: new ManualClock(), registry: metrics.registry, flushIntervalMs: 3600_000,
      sink: async (events) => {
        calls += 1;
        if (calls === 1) throw Object.assign(new Error('duplicate key value violates unique constraint "audit_events_pkey"'), { code: '23505' });
        written.push(...events.map((e) => e.event));
      },
    });
    audit.record('d.one');
    audit.record('d.two');
    await audit.flush();
    expect(written).toEqual([]);
    await audit.close();
    expect(written).toEqual(['d.one', 'd.two']);
    expect(await metrics.registry.getSingleMetricAsString('latchkey_audit_events_dropped_total')).toContain('latchkey_audit_events_dropped_total 0');
  });

  it('keeps the events recorded while a batch is written, even when the full buffer dropped that batch\'s events meanwhile', async () => {
    const written: string[] = [];
    let release!: () => void;
    let first = true;
    const audit = createAuditLog(new LogCapture().logger, {
      clock: new ManualClock(), flushIntervalMs: 3600_000, maxBatch: 100, maxBuffered: 3,
      sink: async (events) => {
        if (first) { first = false; await new Promise<void>((r) => { release = r; }); }
        written.push(...events.map((e) => e.event));
      },
    });
    audit.record('t.1');
    audit.record('t.2');
    const flushing = audit.flush(); // writes [t.1, t.2] and waits
    for (const n of [3, 4, 5]) audit.record(`t.${n}`); // the buffer keeps the newest three: t.3, t.4, t.5
    release();
    await flushing;
    await audit.close();
    expect(written).toEqual(['t.1', 't.2', 't.3', 't.4', 't.5']);
  });

  it('logs but does not store the events AUDIT_DB_EXCLUDE names', async () => {
    const logs = new LogCapture();
    const written: NewAuditEvent[][] = [];
    const audit = createAuditLog(logs.logger, {
      clock: new ManualClock(), flushIntervalMs: 3600_000, excludeFromSink: ['token.issued'],
      sink: async (events) => { written.push(events); },
    });
    audit.record('token.issued', { client_id: 'svc' });
    audit.record('token.revoked', { client_id: 'svc' });
    await audit.close();
    // Stored per client and minute instead (the summary is written at close with the rest).
    expect(written.flat().map((e) => e.event)).toEqual(['token.revoked', 'token.issued.summary']);
    expect(logs.lines.map((l) => l.event)).toEqual(['token.issued', 'token.revoked', 'token.issued.summary']);
  });

  it('keeps an event:grant_type entry to that grant (the default excludes client_credentials issuance only)', async () => {
    const logs = new LogCapture();
    const written: NewAuditEvent[][] = [];
    const audit = createAuditLog(logs.logger, {
      clock: new ManualClock(), flushIntervalMs: 3600_000, excludeFromSink: ['token.issued:client_credentials'],
      sink: async (events) => { written.push(events); },
    });
    audit.record('token.issued', { client_id: 'svc', grant_type: 'client_credentials' });
    audit.record('token.issued', { client_id: 'web', grant_type: 'authorization_code' });
    audit.record('token.issued', { client_id: 'other' });
    await audit.close();
    expect(written.flat().map((e) => `${e.event}:${e.client_id}`)).toEqual(['token.issued:web', 'token.issued:other', 'token.issued.summary:svc']);
    expect(logs.lines.map((l) => l.client_id)).toEqual(['svc', 'web', 'other', 'svc']);
  });

  it('drops the oldest events beyond the buffer limit and counts them', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const written: NewAuditEvent[][] = [];
    const audit = createAuditLog(new LogCapture().logger, {
      clock: new ManualClock(), registry: metrics.registry, flushIntervalMs: 3600_000, maxBatch: 100, maxBuffered: 3,
      sink: async (events) => { written.push(events); },
    });
    for (const n of [1, 2, 3, 4, 5]) audit.record(`e${n}`);
    await audit.close();
    expect(written.flat().map((e) => e.event)).toEqual(['e3', 'e4', 'e5']);
    expect(await metrics.registry.getSingleMetricAsString('latchkey_audit_events_dropped_total')).toContain('latchkey_audit_events_dropped_total 2');
  });

  it('stores a NUL or an unpaired surrogate as U+FFFD instead of failing the batch', async () => {
    const repo = new AuditEventRepository(store.db);
    const base = { at: new Date(), request_id: null, sub: null, ip: null, user_agent: null, jti: null };
    await repo.insertMany([
      { ...base, event: 'odd.text', client_id: 'odd\u0000a', details: { reason: 'x\ud800y' } },
      { ...base, event: 'odd.text', client_id: 'odd\udc00b', details: { reason: 'fine \u{1F680}' } },
    ]);
    const rows = await repo.query({ event: 'odd.text' });
    expect(rows.map((r) => [r.client_id, r.details])).toEqual([['odd\uFFFDa', { reason: 'x\uFFFDy' }], ['odd\uFFFDb', { reason: 'fine \u{1F680}' }]]);
  });

  it('deletes events past the retention in batches and keeps the rest', async () => {
    const repo = new AuditEventRepository(store.db);
    const clock = new ManualClock('2026-01-01T00:00:00Z');
    const old = Array.from({ length: 25 }, (_, i) => ({ at: new Date(Date.UTC(2025, 0, 1, 0, i)), event: 'old', request_id: null, client_id: 'ret', sub: null, ip: null, user_agent: null, jti: null, details: {} }));
    await repo.insertMany([...old, { ...old[0]!, at: new Date('2025-12-31T00:00:00Z'), event: 'recent' }]);
    expect(await enforceAuditRetention(repo, clock, 30 * 86400, 10)).toBe(25);
    expect((await repo.query({ clientId: 'ret' })).map((r) => r.event)).toEqual(['recent']);
  });
});
