import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { openStore } from '../../src/platform/db/database.js';
import { codeFlow, REDIRECT } from './refresh.js';
import { FAST_ARGON2, PASSWORD } from './oidc.js';
import { freePort, latchkey, run, waitFor, type Running } from './process.js';

/**
 * Fault tests' parts: a PostgreSQL cluster of the test's own (so it can be restarted and
 * stopped without disturbing any other test file), real `latchkey start` processes on it, and
 * an HTTP stand-in for `server.inject()` so the sign-in helpers drive a real process.
 */

const exec = promisify(execFile);

/** The newest installed PostgreSQL's bin directory (Debian layout), if any. */
export function pgBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(a) - Number(b));
  return versions.length > 0 ? join(root, versions.at(-1)!, 'bin') : undefined;
}

export interface PgCluster {
  url: string;
  port: number;
  /** `pg_ctl stop` (fast: sessions are terminated, as in a restart or a failover). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** `pg_ctl restart -m fast`: returns when the server accepts connections again. */
  restart(): Promise<void>;
  /** `pg_ctl promote` of a standby: it becomes a primary (a failover). */
  promote(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A throwaway cluster on a free loopback port (initdb without fsync: seconds), or with
 * `standbyOf` a streaming standby of that cluster (pg_basebackup -R). As root, it runs as
 * `postgres`.
 */
export async function startCluster(options: { standbyOf?: PgCluster } = {}): Promise<PgCluster> {
  const bin = pgBinDir();
  if (!bin) throw new Error('no PostgreSQL installation under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-fault-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, Number((await exec('id', ['-u', 'postgres'])).stdout.trim()), Number((await exec('id', ['-g', 'postgres'])).stdout.trim()));
  const pg = async (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    await exec(cmd, argv, { timeout: 60_000 });
  };
  const port = await freePort();
  const data = join(dir, 'data');
  if (options.standbyOf) {
    await pg('pg_basebackup', ['-h', '127.0.0.1', '-p', String(options.standbyOf.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '--no-sync']);
  } else {
    await pg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  }
  const ctl = (action: string, ...extra: string[]) => pg('pg_ctl', [
    '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', ...extra, action,
    ...(action === 'stop' || action === 'promote' ? [] : ['-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`]),
  ]);
  await ctl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => ctl('stop', '-m', 'fast'),
    start: () => ctl('start'),
    restart: () => ctl('restart', '-m', 'fast'),
    promote: () => ctl('promote'),
    async destroy() {
      await ctl('stop', '-m', 'immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const SERVICE = { id: 'svc', secret: 'svc-secret-0123456789abcdef0123456789' };
export const WEB = { id: 'web', secret: 'web-secret-0123456789abcdef0123456789' };

/**
 * The environment of every instance and CLI run on one store (PostgreSQL at `databaseUrl`, or
 * the embedded store in a new data directory): one issuer (a fleet behind one
 * name: each instance accepts the others' tokens), two clients from a file, fast hashing, limits
 * out of reach.
 */
export function instanceEnv(databaseUrl: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-fault-'));
  const store: Record<string, string> = databaseUrl === undefined ? { DATA_DIR: join(dir, 'data') } : { DATABASE_URL: databaseUrl };
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(clientsFile, JSON.stringify({
    clients: [
      // Also a resource server: it introspects other clients' tokens.
      { client_id: SERVICE.id, client_secret_env: 'SVC_SECRET', grant_types: ['client_credentials'], scope: 'api:read', introspect_any_token: true },
      {
        client_id: WEB.id, client_secret_env: 'WEB_SECRET', grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [REDIRECT], scope: 'openid offline_access', skip_consent: true,
      },
    ],
  }));
  return {
    ISSUER: 'http://localhost', ...store, KEY_ENCRYPTION_SECRET: 'fault-test-key-encryption-secret-0123456789',
    CLIENTS_FILE: clientsFile, SVC_SECRET: SERVICE.secret, WEB_SECRET: WEB.secret, ...FAST_ARGON2,
    TOKEN_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_IP: '10000000',
    INTROSPECTION_RATE_LIMIT_PER_CLIENT: '10000000', INTROSPECTION_RATE_LIMIT_PER_IP: '10000000',
    REVOCATION_RATE_LIMIT_PER_CLIENT: '10000000', REVOCATION_RATE_LIMIT_PER_IP: '10000000',
    LOG_LEVEL: 'warn', DEMO: 'false',
    ...extra,
  };
}

export interface Instance { base: string; proc: Running; env: Record<string, string> }

/** `latchkey start` on a free port; resolves once /readyz answers 200. */
export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const full = { ISSUER: base, ...env, PORT: String(port) };
  const proc = run(['start'], full);
  await Promise.race([
    waitFor(`${base}/readyz`, 60_000),
    proc.exited.then((code) => { throw new Error(`instance exited (${code}) before ready: ${proc.stderr()}`); }),
  ]);
  return { base, proc, env: full };
}

/** Creates the user the sign-in helpers use (alice, PASSWORD) through the CLI; her `sub`, as it prints it. */
export async function createAlice(env: Record<string, string>): Promise<string> {
  const r = await latchkey(['users', 'create', '--username', 'alice', '--password-stdin'], env, PASSWORD);
  if (r.code !== 0) throw new Error(`users create failed: ${r.stderr}`);
  const sub = /^created user alice \(sub (\S+)\)$/m.exec(r.stdout)?.[1];
  if (!sub) throw new Error(`users create printed no sub: ${r.stdout}`);
  return sub;
}

/** Whether the process is still running (neither exited nor killed). */
export function alive(instance: Instance): boolean {
  return instance.proc.child.exitCode === null && instance.proc.child.signalCode === null;
}

interface InjectOptions { method: string; url: string; headers?: Record<string, string>; payload?: string }

/**
 * `server.inject()` over real HTTP, as much of it as test/support/browser.ts and refresh.ts use;
 * `extraHeaders` go on every request (e.g. X-Forwarded-For, to come from another address).
 */
export function overHttp(base: string, extraHeaders: Record<string, string> = {}): { server: FastifyInstance } {
  const inject = async (o: InjectOptions) => {
    const res = await fetch(base + o.url, { method: o.method, headers: { ...o.headers, ...extraHeaders }, body: o.payload, redirect: 'manual' });
    const body = await res.text();
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => { headers[name] = value; });
    const cookies = res.headers.getSetCookie().map((line) => {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const maxAge = attrs.map((a) => a.trim().toLowerCase()).find((a) => a.startsWith('max-age='));
      return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), ...(maxAge ? { maxAge: Number(maxAge.slice(8)) } : {}) };
    });
    return { statusCode: res.status, headers, body, cookies, json: () => JSON.parse(body) as unknown };
  };
  return { server: { inject } as unknown as FastifyInstance };
}

/** What one request came back as: a status, or `lost` (no HTTP answer at all). */
export type Outcome = number | 'lost';

/** A form POST with Basic client authentication. */
export async function post(base: string, path: string, client: { id: string; secret: string }, params: Record<string, string>): Promise<Response> {
  return fetch(base + path, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams(params).toString(),
  });
}

/** Tallies of outcomes, and every answer that was neither 200 nor a well-formed 503. */
export class Tally {
  readonly counts = new Map<string, number>();
  readonly unexpected: string[] = [];
  add(kind: string, outcome: Outcome): void {
    const key = `${kind} ${outcome}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  count(predicate: (kind: string, outcome: string) => boolean): number {
    let n = 0;
    for (const [key, value] of this.counts) {
      const [kind = '', outcome = ''] = key.split(' ');
      if (predicate(kind, outcome)) n += value;
    }
    return n;
  }
  toString(): string {
    return [...this.counts].sort().map(([k, v]) => `${k}: ${v}`).join(', ');
  }
}

/**
 * Checks a 503 is the documented answer: Retry-After, and a JSON `temporarily_unavailable`
 * (RFC 6749 §5.2); returns a description of what is wrong, or undefined.
 */
export async function unavailableProblem(res: Response): Promise<string | undefined> {
  const body = await res.text();
  if (res.headers.get('retry-after') !== '2') return `503 without Retry-After: 2 (${res.headers.get('retry-after')})`;
  if (!res.headers.get('content-type')?.startsWith('application/json')) return `503 not JSON: ${res.headers.get('content-type')}`;
  const parsed = JSON.parse(body) as { error?: string };
  return parsed.error === 'temporarily_unavailable' ? undefined : `503 with error ${parsed.error}`;
}

/**
 * Every refresh family's invariant, in SQL: a live family has exactly one active token, the
 * newest; generations are 0..n without gaps; a revoked family has no active token. Returns the
 * families that break it (empty when all hold).
 */
export const FAMILY_VIOLATIONS = `
  select f.id,
         count(*) filter (where t.state = 'active') as active,
         max(t.generation) as newest,
         count(*) as tokens,
         count(distinct t.generation) as generations,
         min(t.generation) as oldest,
         max(t.generation) filter (where t.state = 'active') as active_generation,
         f.revoked_at is not null as revoked
    from refresh_families f join refresh_tokens t on t.family_id = f.id
   group by f.id, f.revoked_at
  having (f.revoked_at is null and (count(*) filter (where t.state = 'active') <> 1
                                    or max(t.generation) filter (where t.state = 'active') <> max(t.generation)))
      or (f.revoked_at is not null and count(*) filter (where t.state = 'active') > 0)
      or count(*) <> count(distinct t.generation)
      or max(t.generation) - min(t.generation) + 1 <> count(*)`;

/** FAMILY_VIOLATIONS on the store an instance environment names (embedded: only while no server has it open). */
export async function familyViolationsIn(env: Record<string, string>): Promise<unknown[]> {
  const store = await openStore(env.DATABASE_URL
    ? { databaseUrl: env.DATABASE_URL, ...(env.DATABASE_SCHEMA ? { schema: env.DATABASE_SCHEMA } : {}), poolMax: 1 }
    : { dataDir: env.DATA_DIR! });
  try {
    return (await sql.raw(FAMILY_VIOLATIONS).execute(store.db)).rows;
  } finally {
    await store.close();
  }
}

/** One request kind in a loop until `stop()`, tallying each answer; a 503 must be well-formed. */
export function loop(tally: Tally, kind: string, send: () => Promise<Response>, onOk?: (res: Response) => Promise<void>) {
  let running = true;
  const done = (async () => {
    while (running) {
      let outcome: Outcome;
      try {
        const res = await send();
        outcome = res.status;
        if (res.status === 200) await (onOk ? onOk(res) : res.arrayBuffer());
        else if (res.status === 503) {
          const problem = await unavailableProblem(res);
          if (problem) tally.unexpected.push(`${kind}: ${problem}`);
          await new Promise((r) => setTimeout(r, 50));
        } else {
          tally.unexpected.push(`${kind}: ${res.status} ${await res.text()}`);
        }
      } catch (err) {
        outcome = 'lost';
        tally.unexpected.push(`${kind}: no answer (${(err as Error).message})`);
        await new Promise((r) => setTimeout(r, 50));
      }
      tally.add(kind, outcome);
    }
  })();
  return { stop: async () => { running = false; await done; } };
}

/** Ten concurrent clients: client credentials, introspection and refresh rotation (each its own family). */
export async function load(target: Instance, tally: Tally) {
  const { access_token: accessToken } = await (await post(target.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })).json() as { access_token: string };
  const loops: Array<{ stop(): Promise<void> }> = [];
  for (let i = 0; i < 3; i++) loops.push(loop(tally, 'client_credentials', () => post(target.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })));
  for (let i = 0; i < 3; i++) loops.push(loop(tally, 'introspection', () => post(target.base, '/introspect', SERVICE, { token: accessToken })));
  const families = await Promise.all([0, 1, 2, 3].map(() => codeFlow(overHttp(target.base), WEB, 'openid offline_access')));
  for (const family of families) {
    let current = family.refresh_token!;
    loops.push(loop(tally, 'refresh', () => post(target.base, '/token', WEB, { grant_type: 'refresh_token', refresh_token: current }), async (res) => {
      current = ((await res.json()) as { refresh_token: string }).refresh_token;
    }));
  }
  return { stop: async () => { for (const l of loops) await l.stop(); } };
}

/** Polls until `probe` answers true; the milliseconds it took. */
export async function until(probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe().catch(() => false)) return Math.round(performance.now() - started);
    if (performance.now() - started > timeoutMs) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

