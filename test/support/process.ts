import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { onPostgres } from './store.js';

/** The real process, as `latchkey` runs it, on a free loopback port; over real HTTP. */
const root = new URL('../../', import.meta.url).pathname;
const cli = join(root, 'src/cli.ts');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Running { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> }

/** `latchkey …` as a child process with piped stdout and stderr, which nothing reads yet. */
export function spawnLatchkey(args: string[], env: Record<string, string>, input?: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) child.stdin!.end(input);
  return child;
}

export function run(args: string[], env: Record<string, string>, input?: string): Running {
  const child = spawnLatchkey(args, env, input);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += String(d); });
  child.stderr!.on('data', (d) => { err += String(d); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

export async function waitFor(url: string, timeoutMs = 30_000): Promise<Response> {
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

export function storeEnv(dataDir: string, schema: string): Record<string, string> {
  return onPostgres
    ? { DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: schema, KEY_ENCRYPTION_SECRET: 'e2e-key-encryption-secret-0123456789abcdef' }
    : { DATA_DIR: dataDir };
}


/** Runs a command to its end. */
export async function latchkey(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = run(args, env, input);
  const code = await proc.exited;
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}
