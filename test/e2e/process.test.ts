import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, run, storeEnv, waitFor } from '../support/process.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

describe('the latchkey process', () => {
  const schemas: string[] = [];
  afterAll(async () => { if (onPostgres) for (const s of schemas) await dropSchema(s); });

  it('starts, prints the issuer, answers /readyz over HTTP and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-e2e-'));
    const schema = uniqueSchema();
    schemas.push(schema);
    const issuer = `http://127.0.0.1:${port}`;
    const proc = run(['start'], { PORT: String(port), ISSUER: issuer, ...storeEnv(dataDir, schema) });
    try {
      const ready = await waitFor(`${issuer}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok', notifications: 'ok' } });
      expect(proc.stdout()).toContain(`Latchkey is running: ${issuer}`);
      const health = await fetch(`${issuer}/healthz`, { headers: { 'x-request-id': 'e2e-1' } });
      expect(health.headers.get('x-request-id')).toBe('e2e-1');

      if (!onPostgres) {
        // First start on the embedded store: the demo credentials, once, and the try-it page.
        const demo = /sign in as demo \/ ([A-Za-z0-9_-]{16}) /.exec(proc.stdout());
        expect(demo).not.toBeNull();
        expect(proc.stdout()).toContain(`open       ${issuer}/try`);
        const tryIt = await fetch(`${issuer}/try`, { redirect: 'manual' });
        expect(tryIt.status).toBe(303);
        expect(tryIt.headers.get('location')).toMatch(/^\/authorize\?response_type=code&client_id=latchkey-demo&/);
        // The password never reaches the log lines (only the banner shows it).
        const logLines = proc.stdout().split('\n').filter((l) => l.startsWith('{'));
        expect(logLines.join('\n')).not.toContain(demo![1]);
        // A second process must never open the same embedded store.
        const second = run(['migrate'], { DATA_DIR: dataDir });
        expect(await second.exited).toBe(2);
        expect(second.stderr()).toContain(`is in use by a running Latchkey server (pid ${proc.child.pid})`);
      }
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);
    expect(proc.stdout()).toContain('"event":"server.stopped"');
  });

  it('serves /metrics and the probes on METRICS_HOST:METRICS_PORT, and /metrics not on PORT', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const schema = uniqueSchema();
    schemas.push(schema);
    const issuer = `http://127.0.0.1:${port}`;
    // 127.0.0.2 is loopback too (127.0.0.0/8), but not HOST's address.
    const metrics = `http://127.0.0.2:${metricsPort}`;
    const proc = run(['start'], { PORT: String(port), ISSUER: issuer, METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.2', ...storeEnv(mkdtempSync(join(tmpdir(), 'latchkey-e2e-')), schema) });
    try {
      await waitFor(`${issuer}/readyz`);
      expect((await waitFor(`${metrics}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${metrics}/metrics`)).text()).toContain('latchkey_http_request_duration_seconds');
      expect((await fetch(`${issuer}/metrics`)).status).toBe(404);
      await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
      expect(proc.stdout()).toContain(`metrics:    ${metrics}/metrics (also /healthz, /readyz)`);
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);
  });

  it('stops before binding the port when the configuration is invalid, one line per problem', async () => {
    const port = await freePort();
    const proc = run(['start'], { PORT: String(port), ACCESS_TOKEN_TTL: 'forever', ISSUER: 'http://example.com' });
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toBe([
      'latchkey start: invalid configuration:',
      '  ISSUER: must use https (http is allowed only for localhost, 127.0.0.1 or [::1])',
      '  ACCESS_TOKEN_TTL: must be a duration such as 600, 90s, 10m, 12h or 30d (got "forever")',
      '',
    ].join('\n'));
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('migrates with `latchkey migrate`, then reports it is up to date', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-e2e-'));
    const schema = uniqueSchema();
    schemas.push(schema);
    const first = run(['migrate'], storeEnv(dataDir, schema));
    expect(await first.exited).toBe(0);
    const second = run(['migrate'], storeEnv(dataDir, schema));
    expect(await second.exited).toBe(0);
    expect(second.stdout()).toMatch(/^up to date \(\d+ migration\(s\) applied\)\n$/);
  });
});
