import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/http/server.js';
import { createAuditLog } from '../../src/platform/observability/audit.js';
import { createMetrics } from '../../src/platform/observability/metrics.js';
import { systemClock } from '../../src/platform/clock.js';
import { InvalidGrant } from '../../src/oauth/errors.js';
import { createTestApp, LogCapture, testConfig, type TestApp } from '../support/app.js';
import { openTestStore } from '../support/store.js';

describe('HTTP shell', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp(); });
  afterAll(async () => { await app.close(); });

  it('answers /healthz', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz when the database is reachable and migrated', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok', notifications: 'ok' } });
  });

  it('answers an unknown route with a 404 JSON error', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual({ error: 'not_found', error_description: 'no route for GET /nope' });
  });

  it('puts the security headers on every response', async () => {
    const res = await app.server.inject({ method: 'GET', url: '/healthz' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('echoes a sane incoming request id and generates one otherwise', async () => {
    const mine = await app.server.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'trace-42' } });
    expect(mine.headers['x-request-id']).toBe('trace-42');
    const generated = await app.server.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'bad id\u0000' } });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('writes one access-log line per request carrying the request id, without the query secrets', async () => {
    const before = app.logs.lines.length;
    await app.server.inject({ method: 'GET', url: '/nope?code=SECRETCODE&state=s', headers: { 'x-request-id': 'log-check-1' } });
    const lines = app.logs.lines.slice(before).filter((l) => l.request_id === 'log-check-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toBe('request completed');
    expect((lines[0]!.req as { url: string }).url).toBe('/nope?code=[Redacted]&state=s');
    expect(app.logs.text()).not.toContain('SECRETCODE');
  });

  it('writes no access-log line for a successful request by default (ACCESS_LOG=errors)', async () => {
    await app.server.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'quiet-1' } });
    expect(app.logs.lines.filter((l) => l.request_id === 'quiet-1')).toEqual([]);
  });

  it('writes one for every request with ACCESS_LOG=all, and none with off', async () => {
    for (const [mode, expected] of [['all', 1], ['off', 0]] as const) {
      const other = await createTestApp({ ACCESS_LOG: mode });
      try {
        await other.server.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': `mode-${mode}` } });
        expect(other.logs.lines.filter((l) => l.request_id === `mode-${mode}` && l.msg === 'request completed')).toHaveLength(expected);
      } finally {
        await other.close();
      }
    }
  });

  it('exports Prometheus metrics (served as test/integration/metrics-access.test.ts shows)', async () => {
    await app.server.inject({ method: 'GET', url: '/healthz' });
    const body = await app.context.metrics.registry.metrics();
    expect(body).toMatch(/latchkey_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_class="2xx"\} \d+/);
    expect(body).toContain('latchkey_process_resident_memory_bytes');
  });
});

describe('defensive defaults', () => {
  let server: FastifyInstance;
  let logs: LogCapture;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const store = await openTestStore();
    logs = new LogCapture();
    const probe = async (app: FastifyInstance) => {
      app.post('/echo', async (req) => ({ received: req.body }));
      app.get('/boom', async () => { throw new Error('database password is hunter2'); });
      app.get('/grant', async () => { throw new InvalidGrant('code expired', 'row 7'); });
      app.get('/page', async (_req, reply) => reply.type('text/html; charset=utf-8').send('<p>hi</p>'));
    };
    server = await buildServer(testConfig({ BODY_LIMIT: '2048' }), {
      store, logger: logs.logger, metrics: createMetrics({ defaultMetrics: false }), audit: createAuditLog(logs.logger, { clock: systemClock }),
      clock: systemClock,
      readiness: [{ name: 'keys', check: async () => ({ ok: false, detail: 'no active signing key' }) }],
      routes: [probe],
    });
    close = async () => { await server.close(); await store.close(); };
  });
  afterAll(async () => { await close(); });

  it('rejects a body over the limit with 413 JSON', async () => {
    const res = await server.inject({ method: 'POST', url: '/echo', payload: `a=${'x'.repeat(4096)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'request body is too large' });
  });

  it('rejects an unsupported content type with 415 JSON', async () => {
    const res = await server.inject({ method: 'POST', url: '/echo', payload: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'unsupported content type' });
  });

  it('rejects malformed JSON with 400 JSON', async () => {
    const res = await server.inject({ method: 'POST', url: '/echo', payload: '{"a":', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'malformed request' });
  });

  it('parses form bodies', async () => {
    const res = await server.inject({ method: 'POST', url: '/echo', payload: 'a=1&b=two', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.json()).toEqual({ received: { a: '1', b: 'two' } });
  });

  it('answers a thrown error with 500 JSON, no stack or message, logged once with the request id', async () => {
    const res = await server.inject({ method: 'GET', url: '/boom', headers: { 'x-request-id': 'boom-1' } });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'server_error', error_description: 'the server could not handle the request' });
    expect(res.body).not.toContain('hunter2');
    const errors = logs.lines.filter((l) => l.request_id === 'boom-1' && l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toBe('request failed');
  });

  it('answers a protocol error with its status and code', async () => {
    const res = await server.inject({ method: 'GET', url: '/grant' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'invalid_grant', error_description: 'code expired' });
  });

  it('answers /readyz with 503 naming the failing check', async () => {
    const res = await server.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not_ready', checks: { keys: 'no active signing key' } });
  });

  it('gives HTML a CSP that forbids framing', async () => {
    const res = await server.inject({ method: 'GET', url: '/page' });
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['x-frame-options']).toBe('DENY');
  });
});

describe('graceful shutdown', () => {
  it('drains an in-flight request, then refuses new connections', async () => {
    const store = await openTestStore();
    const logs = new LogCapture();
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => { entered = r; });
    const slow = async (app: FastifyInstance) => {
      app.get('/slow', async () => { entered(); await new Promise((r) => setTimeout(r, 300)); return { done: true }; });
    };
    const server = await buildServer(testConfig(), {
      store, logger: logs.logger, metrics: createMetrics({ defaultMetrics: false }), audit: createAuditLog(logs.logger, { clock: systemClock }),
      clock: systemClock, readiness: [], routes: [slow],
    });
    const address = await server.listen({ port: 0, host: '127.0.0.1' });
    try {
      const pending = fetch(`${address}/slow`);
      await inHandler;
      const closed = server.close();
      const res = await pending;
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ done: true });
      await closed;
      await expect(fetch(`${address}/healthz`)).rejects.toThrow();
    } finally {
      await store.close();
    }
  });
});
