// What the by-hand benchmarks (bench/interactive.mjs, bench/sign-in-factors.mjs,
// bench/device-flow.mjs) share: the pinning of the load generator to core 1 and of the server to
// core 0, their common options, a few statistics, the server's CPU time from /proc, a browser
// with a cookie jar, a Latchkey server in a temporary DATA_DIR, and timed request loops.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The checkout: its dist/ is what the benches run. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The bench users' password and the bench clients' secret. */
export const PASSWORD = 'bench password bench password';
export const CLIENT_SECRET = 'benchsecret-benchsecret-benchsecret-0123';
export const FORM = 'application/x-www-form-urlencoded';

/** The machine's cores (--all: not the ones this, possibly already pinned, process may use). */
export const cores = Number(spawnSync('nproc', ['--all']).stdout?.toString().trim());

/**
 * With two cores or more, runs this script again pinned to core 1 (the load generator's core)
 * and exits with its status; in the pinned process (BENCH_PINNED set) or on one core, returns.
 */
export function pinToLoadCore() {
  if (process.env.BENCH_PINNED || !(cores >= 2)) return;
  const r = spawnSync('taskset', ['-c', '1', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, BENCH_PINNED: '1' } });
  process.exit(r.status ?? 1);
}

/** `[command, argv]` for spawn: `cmd` pinned to core 0 (the server's) when there are two cores or more. */
export const pinned = (cmd) => (cores >= 2 ? ['taskset', ['-c', '0', ...cmd]] : [cmd[0], cmd.slice(1)]);

/** Exits with a hint when dist/ is not built. */
export function requireBuild() {
  if (!existsSync(join(root, 'dist/src/cli.js'))) {
    console.error('build first: npm run build');
    process.exit(1);
  }
}

/**
 * The command line: --duration, --runs, --connections (defaults given by the script), repeatable
 * --env KEY=VALUE (extra environment for the server), and the script's own `options`.
 */
export function benchArgs({ duration, runs, connections }, options = {}) {
  return parseArgs({
    options: {
      duration: { type: 'string', default: duration },
      runs: { type: 'string', default: runs },
      connections: { type: 'string', default: connections },
      ...options,
      env: { type: 'string', multiple: true, default: [] },
    },
  }).values;
}

/** `['KEY=VALUE', …]` (the --env options) as an environment object. */
export const envPairs = (list) => Object.fromEntries(list.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
export const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `n` jobs, `parallel` at a time: `job(item)` for each of `items`. */
export async function each(items, parallel, job) {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => { while (next < items.length) await job(items[next++]); }));
}

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** A process's CPU time so far (all its threads: argon2 runs on libuv's pool), from /proc; NaN when unreadable. */
export function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14 and 15 of proc(5))
  } catch {
    return NaN;
  }
}

/**
 * Starts measuring how busy each core is; the function returned gives, over `seconds`, the
 * server's CPU share (`serverCpu`, of process `pid`) and this process's (`clientCpu`). A server
 * core well below ~95 % means the figure is not the server's ceiling (the load generator, at
 * ~100 %, or a neighbour on a shared machine held it back).
 */
export function cpuMeter(pid) {
  const [server0, client0] = [cpuSecondsOf(pid), process.cpuUsage()];
  return (seconds) => {
    const client = process.cpuUsage(client0);
    return { serverCpu: (cpuSecondsOf(pid) - server0) / seconds, clientCpu: (client.user + client.system) / 1e6 / seconds };
  };
}

/**
 * One loop per worker doing `step(worker)` until `seconds` have passed: completed steps per
 * second, their p99 in ms, the failed steps (the first one printed), and with `serverPid` the
 * cores' shares (cpuMeter).
 */
export async function loops(workers, seconds, step, serverPid) {
  const latencies = [];
  let errors = 0;
  const meter = serverPid === undefined ? () => ({}) : cpuMeter(serverPid);
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(workers.map(async (w) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try { await step(w); latencies.push(performance.now() - t0); } catch (err) { errors++; if (errors === 1) console.error(String(err)); }
    }
  }));
  return { rate: latencies.length / seconds, p99: quantile(latencies, 0.99), errors, ...meter(seconds) };
}

/** One browser at `base`: a cookie jar over fetch (keep-alive connections, redirects not followed). */
export class Jar {
  cookies = new Map();
  constructor(base) { this.base = base; }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  /** The double-submit CSRF token: the cookie's value (renewed at every sign-in). */
  csrf() { return this.cookies.get('latchkey_csrf'); }
  /** A request with the jar's cookies and a form or JSON body; the answer's cookies go into the jar. */
  async go(method, path, { form, json, headers = {} } = {}) {
    const res = await fetch(`${this.base}${path}`, {
      method, redirect: 'manual',
      headers: {
        cookie: this.header(),
        ...(form ? { 'content-type': FORM } : {}), ...(json ? { 'content-type': 'application/json' } : {}), ...headers,
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}), ...(json ? { body: JSON.stringify(json) } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return { status: res.status, location: res.headers.get('location') ?? undefined, body: await res.text() };
  }
}
/** The CSRF token a page's form carries. */
export const csrfOf = (html) => /name="csrf" value="([^"]+)"/.exec(html)[1];
/** `res` when it has `status` and passes `check`; else an error naming `what`. */
export const expect = (what, res, status, check = () => true) => {
  if (res.status !== status || !check(res)) throw new Error(`${what}: ${res.status} ${res.location ?? ''} ${res.body.slice(0, 200)}`);
  return res;
};
/** A fresh browser at `base` with the sign-in page's CSRF cookie. */
export async function browser(base) {
  const jar = new Jar(base);
  expect('GET /login', await jar.go('GET', '/login'), 200);
  return jar;
}
/** The sign-in form posted by `jar` (the CSRF cookie's value in the form): the answer, unchecked. */
export const passwordForm = (jar, login) => jar.go('POST', '/login', { form: { csrf: jar.csrf(), login, password: PASSWORD, return_to: '/' } });
/** A fresh browser at `base` signed in as `login` (an account without second factors): one SSO session. */
export async function signedIn(base, login) {
  const jar = await browser(base);
  expect('POST /login', await passwordForm(jar, login), 303, (r) => r.location === '/');
  return jar;
}

/**
 * A temporary folder and the environment of a Latchkey server on `port` (DATA_DIR in that folder,
 * no demo data, LOG_LEVEL=warn), with the script's `vars(dir)`, then the --env `overrides` on top.
 */
export function serverSetup(name, { port, issuer = `http://127.0.0.1:${port}`, vars = () => ({}), overrides = [] }) {
  const dir = mkdtempSync(join(tmpdir(), `latchkey-bench-${name}-`));
  const env = {
    ...process.env, BENCH_PINNED: '', PORT: String(port), ISSUER: issuer, DATA_DIR: join(dir, 'data'), DEMO: 'false', LOG_LEVEL: 'warn',
    ...vars(dir), ...envPairs(overrides),
  };
  return { dir, env };
}

/** Runs `latchkey argv…` (dist/src/cli.js) with `env` and `input` on stdin, before the server owns the store; its stdout. */
export function latchkey(env, argv, input) {
  const r = spawnSync(process.execPath, [join(root, 'dist/src/cli.js'), ...argv], { cwd: root, env, input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`latchkey ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** `latchkey start` with `env`, pinned to core 0. */
export function startServer(env) {
  const [cmd, argv] = pinned([process.execPath, join(root, 'dist/src/cli.js'), 'start']);
  return spawn(cmd, argv, { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
}
/** Waits (up to a minute) for `base`/readyz to answer 200; throws when the server exits first. */
export async function waitReady(base, server) {
  for (const deadline = Date.now() + 60_000; ;) {
    try { if ((await fetch(`${base}/readyz`)).status === 200) return; } catch { /* not yet */ }
    if (Date.now() > deadline || server.exitCode !== null) throw new Error('server did not become ready');
    await sleep(100);
  }
}
/** Stops the server, waits for it to exit, and removes the temporary folder. */
export async function stopServer(server, dir) {
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The ceiling of a password sign-in: bare argon2id verifications for `seconds`, one at a time,
 * with the parameters of `env` (ARGON2_*), on the server's core. Their rate, rate per CPU-second,
 * p99 in ms, and the parameters { m, t, p }.
 */
export function bareArgon2(env, seconds) {
  const [cmd, argv] = pinned([process.execPath, '--input-type=module', '-e', `
    import argon2 from 'argon2';
    const m = Number(process.env.ARGON2_MEMORY_KIB ?? 19456), t = Number(process.env.ARGON2_TIME_COST ?? 2), p = Number(process.env.ARGON2_PARALLELISM ?? 1);
    const hash = await argon2.hash(${JSON.stringify(PASSWORD)}, { type: argon2.argon2id, memoryCost: m, timeCost: t, parallelism: p });
    const latencies = []; const cpu0 = process.cpuUsage(); const end = performance.now() + ${seconds * 1000};
    while (performance.now() < end) { const t0 = performance.now(); await argon2.verify(hash, ${JSON.stringify(PASSWORD)}); latencies.push(performance.now() - t0); }
    const cpu = process.cpuUsage(cpu0); const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    latencies.sort((a, b) => a - b);
    console.log(JSON.stringify({ rate: latencies.length / ${seconds}, perCpu: latencies.length / cpuSeconds, p99: latencies[Math.min(latencies.length - 1, Math.floor(0.99 * latencies.length))], params: { m, t, p } }));
  `]);
  const r = spawnSync(cmd, argv, { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}
