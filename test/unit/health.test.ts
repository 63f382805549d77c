import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { healthRoutes } from '../../src/server/http/health.js';

describe('/readyz answers in bounded time', () => {
  it('a check that never answers (a connection attempt to a host that drops packets) fails after the timeout; the others still report', async () => {
    const app = Fastify();
    await app.register(healthRoutes, {
      timeoutMs: 200,
      checks: [
        { name: 'database', check: () => new Promise<never>(() => {}) },
        { name: 'signing_keys', check: async () => ({ ok: true }) },
      ],
    });
    const started = performance.now();
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not_ready', checks: { database: 'failed', signing_keys: 'ok' } });
    await app.close();
  }, 10_000);
});
