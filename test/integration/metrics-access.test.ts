import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../../src/server/config.js';
import { createTestApp, type TestApp } from '../support/app.js';

const TOKEN = 'metrics-scraper-token-0123456789abcdefghij';
const OTHER = 'second-metrics-token-0123456789abcdefghijk';

describe('/metrics by default (neither METRICS_TOKEN nor METRICS_PORT)', () => {
  it('is not served on the public port: 404, the metrics stay unread', async () => {
    const app = await createTestApp();
    try {
      const res = await app.server.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', error_description: 'no route for GET /metrics' });
      expect((await app.server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('binds a METRICS_PORT listener to loopback unless METRICS_HOST says otherwise', () => {
    expect(loadConfig({ METRICS_PORT: '9464' }).metricsHost).toBe('127.0.0.1');
    expect(loadConfig({ METRICS_PORT: '9464', HOST: '0.0.0.0' }).metricsHost).toBe('127.0.0.1');
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' }).metricsHost).toBe('10.0.0.5');
  });
});

describe('/metrics behind a bearer token (METRICS_TOKEN)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ METRICS_TOKEN: `${TOKEN},${OTHER}` }); });
  afterAll(async () => { await app.close(); });

  const scrape = (authorization?: string) => app.server.inject({ method: 'GET', url: '/metrics', headers: authorization ? { authorization } : {} });

  it('answers a configured token, any of them', async () => {
    for (const token of [TOKEN, OTHER]) {
      const res = await scrape(`Bearer ${token}`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(res.body).toContain('# TYPE latchkey_http_request_duration_seconds histogram');
    }
  });

  it('refuses a missing, wrong or non-Bearer credential with 401 invalid_token and a Bearer challenge', async () => {
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, 'Bearer']) {
      const res = await scrape(authorization);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ error: 'invalid_token', error_description: 'a valid metrics token is required' });
      expect(res.headers['www-authenticate']).toBe('Bearer realm="latchkey-metrics", error="invalid_token"');
      expect(res.body).not.toContain('latchkey_');
    }
  });
});

describe('/metrics on a separate port (METRICS_PORT)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ METRICS_PORT: '0', METRICS_TOKEN: TOKEN });
    await app.server.listen({ port: 0, host: '127.0.0.1' });
    await app.metricsServer!.listen({ port: 0, host: app.context.config.host });
  });
  afterAll(async () => { await app.close(); });

  const url = (server: NonNullable<TestApp['metricsServer']>, path: string) => {
    const { port } = server.server.address() as { port: number };
    return `http://127.0.0.1:${port}${path}`;
  };

  it('serves /metrics on the metrics port only (with its token), not on the main port', async () => {
    await fetch(url(app.server, '/healthz'));
    const res = await fetch(url(app.metricsServer!, '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/latchkey_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_class="2xx"\} 1/);
    expect((await fetch(url(app.metricsServer!, '/metrics'))).status).toBe(401);
    const main = await fetch(url(app.server, '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(main.status).toBe(404);
    expect(await main.json()).toEqual({ error: 'not_found', error_description: 'no route for GET /metrics' });
  });

  it('serves the health probes there too (for probes on a private port), and nothing else', async () => {
    const healthz = await fetch(url(app.metricsServer!, '/healthz'));
    expect([healthz.status, await healthz.json()]).toEqual([200, { status: 'ok' }]);
    const readyz = await fetch(url(app.metricsServer!, '/readyz'));
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok', notifications: 'ok' } });
    expect((await fetch(url(app.metricsServer!, '/token'))).status).toBe(404);
    expect((await fetch(url(app.metricsServer!, '/.well-known/openid-configuration'))).status).toBe(404);
  });

  it('refuses METRICS_PORT equal to PORT', () => {
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9000' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9001' })).not.toThrow();
  });
});
