import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

/** The real process, as `latchkey` runs it, on a free loopback port; over real HTTP. */
const root = new URL('../../', import.meta.url).pathname;
const cli = join(root, 'src/cli.ts');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

interface Running { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> }

function run(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += String(d); });
  child.stderr!.on('data', (d) => { err += String(d); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(url: string, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return res;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function storeEnv(dataDir: string, schema: string): Record<string, string> {
  return onPostgres
    ? { DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: schema, KEY_ENCRYPTION_SECRET: 'e2e-key-encryption-secret-0123456789abcdef' }
    : { DATA_DIR: dataDir };
}

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
      expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok' } });
      expect(proc.stdout()).toContain(`Latchkey is running: ${issuer}`);
      const health = await fetch(`${issuer}/healthz`, { headers: { 'x-request-id': 'e2e-1' } });
      expect(health.headers.get('x-request-id')).toBe('e2e-1');

      if (!onPostgres) {
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
