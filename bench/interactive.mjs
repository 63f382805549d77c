#!/usr/bin/env node
// The interactive side of Latchkey, measured by hand (never from the test suite):
//
//   1. password logins per second (POST /login, argon2id at the configured parameters), next to
//      the bare argon2.verify rate of the same parameters on the same core in the same run
//      (the ceiling: a login can be no faster than its password check);
//   2. complete authorize → token round trips per second for a signed-in user whose consent is
//      on record: GET /authorize with the SSO cookie (303 with a code), then POST /token
//      (authorization_code + PKCE), each round trip a fresh PKCE pair, state and nonce;
//   3. refresh grants per second: each connection rotates its own refresh token family
//      (grant_type=refresh_token, a new access token, ID token and refresh token each time).
//
//   npm run build && node bench/interactive.mjs [--duration 10] [--runs 3] [--connections 8]
//
// The server is pinned to core 0 and this load generator to core 1, as bench/run.mjs does.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '8' },
    'login-connections': { type: 'string', default: '4' },
    env: { type: 'string', multiple: true, default: [] },
  },
});

const cores = spawnSync('nproc', ['--all']).stdout?.toString().trim();
if (!process.env.BENCH_PINNED && Number(cores) >= 2) {
  const r = spawnSync('taskset', ['-c', '1', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, BENCH_PINNED: '1' } });
  process.exit(r.status ?? 1);
}
const pinned = (cmd) => (Number(cores) >= 2 ? ['taskset', ['-c', '0', ...cmd]] : [cmd[0], cmd.slice(1)]);
if (!existsSync(join(root, 'dist/src/cli.js'))) {
  console.error('build first: npm run build');
  process.exit(1);
}

const PORT = 4400;
const BASE = `http://127.0.0.1:${PORT}`;
const CLIENT_ID = 'bench-web';
const CLIENT_SECRET = 'benchsecret-benchsecret-benchsecret-0123';
const REDIRECT = 'https://app.example.com/cb';
const PASSWORD = 'bench password bench password';
const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-interactive-'));
const extraEnv = Object.fromEntries(args.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const env = {
  ...process.env, BENCH_PINNED: '', PORT: String(PORT), ISSUER: BASE, DATA_DIR: join(dir, 'data'), DEMO: 'false', LOG_LEVEL: 'warn',
  CLIENTS_FILE: join(dir, 'clients.json'), BENCH_CLIENT_SECRET: CLIENT_SECRET,
  // The limiters stay on (their cost is part of the path); the limits are just out of reach.
  LOGIN_RATE_LIMIT_PER_IP: '10000000', LOGIN_RATE_LIMIT_PER_LOGIN: '10000000', AUTHORIZE_RATE_LIMIT_PER_IP: '10000000',
  AUTHORIZE_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_IP: '10000000', ...extraEnv,
};
writeFileSync(env.CLIENTS_FILE, JSON.stringify({
  clients: [{ client_id: CLIENT_ID, client_secret_env: 'BENCH_CLIENT_SECRET', client_name: 'Bench', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile email offline_access' }],
}));

const cli = (argv, input) => {
  const r = spawnSync(process.execPath, [join(root, 'dist/src/cli.js'), ...argv], { env, input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`latchkey ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
// The users, before the server owns the embedded store.
cli(['migrate']);
for (let i = 0; i < Number(args['login-connections']); i++) cli(['users', 'create', '--username', `bench${i}`, '--password-stdin'], `${PASSWORD}\n`);
cli(['users', 'create', '--username', 'bench', '--password-stdin'], `${PASSWORD}\n`);

const [cmd, argv] = pinned([process.execPath, join(root, 'dist/src/cli.js'), 'start']);
const server = spawn(cmd, argv, { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

/** One browser: a cookie jar over fetch (keep-alive connections, redirects not followed). */
class Jar {
  cookies = new Map();
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  async go(method, path, { form, headers = {} } = {}) {
    const res = await fetch(`${BASE}${path}`, {
      method, redirect: 'manual',
      headers: { cookie: this.header(), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return { status: res.status, location: res.headers.get('location') ?? undefined, body: await res.text() };
  }
}
const csrfOf = (html) => /name="csrf" value="([^"]+)"/.exec(html)[1];

async function signIn(jar, login) {
  const page = await jar.go('GET', '/login');
  const res = await jar.go('POST', '/login', { form: { csrf: csrfOf(page.body), login, password: PASSWORD, return_to: '/' } });
  if (res.status !== 303) throw new Error(`sign-in failed: ${res.status}`);
}

function authorizePath(scope = 'openid profile email') {
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT, scope, state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'), code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  });
  return { path: `/authorize?${q}`, verifier };
}

const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
async function roundTrip(jar, scope) {
  const { path, verifier } = authorizePath(scope);
  const auth = await jar.go('GET', path);
  const code = auth.location && new URL(auth.location).searchParams.get('code');
  if (auth.status !== 303 || !code) throw new Error(`authorize: ${auth.status} ${auth.location}`);
  const token = await jar.go('POST', '/token', {
    headers: { authorization: basic },
    form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
  });
  if (token.status !== 200 || !token.body.includes('id_token')) throw new Error(`token: ${token.status} ${token.body}`);
  return JSON.parse(token.body);
}

/** One refresh of a chain: the response's refresh token is the next one to present. */
async function refresh(chain) {
  const res = await chain.jar.go('POST', '/token', { headers: { authorization: basic }, form: { grant_type: 'refresh_token', refresh_token: chain.token } });
  const body = JSON.parse(res.body);
  if (res.status !== 200 || !body.refresh_token) throw new Error(`refresh: ${res.status} ${res.body}`);
  chain.token = body.refresh_token;
}

/** `connections` loops doing `step` until the deadline; completed count and latencies. */
async function load(connections, seconds, setup, step) {
  const workers = await Promise.all(Array.from({ length: connections }, (_, i) => setup(i)));
  const latencies = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(workers.map(async (w) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try { await step(w); latencies.push(performance.now() - t0); } catch (err) { errors++; if (errors === 1) console.error(String(err)); }
    }
  }));
  return { rate: latencies.length / seconds, p99: quantile(latencies, 0.99), errors };
}

try {
  for (const deadline = Date.now() + 60_000; ;) {
    try { if ((await fetch(`${BASE}/readyz`)).status === 200) break; } catch { /* not yet */ }
    if (Date.now() > deadline || server.exitCode !== null) throw new Error('server did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  // Consent on record: the first request shows the page, the user allows once.
  const user = new Jar();
  await signIn(user, 'bench');
  const first = await user.go('GET', authorizePath('openid profile email offline_access').path);
  const action = /action="(\/interaction\/[^"]+)"/.exec(first.body)[1];
  const shownTo = /name="shown_to" value="([^"]+)"/.exec(first.body)[1];
  const allowed = await user.go('POST', action, { form: { csrf: csrfOf(first.body), shown_to: shownTo, decision: 'allow' } });
  if (allowed.status !== 303) throw new Error('consent failed');

  // The ceiling of a login: argon2id verifications per second with the server's parameters, on core 0.
  const argon = spawnSync('taskset', ['-c', '0', process.execPath, '--input-type=module', '-e', `
    import argon2 from 'argon2';
    const m = Number(process.env.ARGON2_MEMORY_KIB ?? 19456), t = Number(process.env.ARGON2_TIME_COST ?? 2), p = Number(process.env.ARGON2_PARALLELISM ?? 1);
    const hash = await argon2.hash('bench password bench password', { type: argon2.argon2id, memoryCost: m, timeCost: t, parallelism: p });
    const end = performance.now() + ${Number(args.duration) * 1000}; let n = 0;
    while (performance.now() < end) { await argon2.verify(hash, 'bench password bench password'); n++; }
    console.log(JSON.stringify({ rate: n / ${Number(args.duration)}, params: { m, t, p } }));
  `], { cwd: root, env, encoding: 'utf8' });
  if (argon.status !== 0) throw new Error(argon.stderr);
  const argonResult = JSON.parse(argon.stdout);

  const logins = [];
  const trips = [];
  const refreshes = [];
  for (let run = 0; run < Number(args.runs); run++) {
    const l = await load(Number(args['login-connections']), Number(args.duration),
      async (i) => { const jar = new Jar(); await jar.go('GET', '/login'); return { jar, login: `bench${i}` }; },
      async (w) => {
        // The CSRF cookie is renewed at every sign-in: the form carries its current value (double submit).
        const res = await w.jar.go('POST', '/login', { form: { csrf: w.jar.cookies.get('latchkey_csrf'), login: w.login, password: PASSWORD, return_to: '/' } });
        if (res.status !== 303) throw new Error(`login ${res.status}`);
      });
    logins.push(l);
    console.error(`logins run ${run + 1}: ${l.rate.toFixed(1)}/s, p99 ${l.p99.toFixed(0)} ms, errors ${l.errors}`);
    const r = await load(Number(args.connections), Number(args.duration), async () => user, (jar) => roundTrip(jar));
    trips.push(r);
    console.error(`authorize→token run ${run + 1}: ${r.rate.toFixed(0)}/s, p99 ${r.p99.toFixed(1)} ms, errors ${r.errors}`);
    const f = await load(Number(args.connections), Number(args.duration),
      async () => ({ jar: user, token: (await roundTrip(user, 'openid profile email offline_access')).refresh_token }), refresh);
    refreshes.push(f);
    console.error(`refresh run ${run + 1}: ${f.rate.toFixed(0)}/s, p99 ${f.p99.toFixed(1)} ms, errors ${f.errors}`);
  }
  const p = argonResult.params;
  console.log(`\nNode ${process.version}, server on core 0, load on core 1, ${args.runs} × ${args.duration} s, argon2id m=${p.m} KiB t=${p.t} p=${p.p}\n`);
  console.log('| measurement | per second (median) | p99 ms | errors | reference |');
  console.log('|---|---|---|---|---|');
  console.log(`| password logins (POST /login, ${args['login-connections']} connections) | ${median(logins.map((x) => x.rate)).toFixed(1)} | ${median(logins.map((x) => x.p99)).toFixed(0)} | ${logins.reduce((a, x) => a + x.errors, 0)} | bare argon2id verify on the same core: ${argonResult.rate.toFixed(1)}/s |`);
  console.log(`| authorize → token round trips (${args.connections} connections) | ${median(trips.map((x) => x.rate)).toFixed(0)} | ${median(trips.map((x) => x.p99)).toFixed(1)} | ${trips.reduce((a, x) => a + x.errors, 0)} | two requests each: GET /authorize (303 + code), POST /token (access + ID token) |`);
  console.log(`| refresh grants (${args.connections} connections, a family each) | ${median(refreshes.map((x) => x.rate)).toFixed(0)} | ${median(refreshes.map((x) => x.p99)).toFixed(1)} | ${refreshes.reduce((a, x) => a + x.errors, 0)} | each a rotation: new access, ID and refresh token |`);
} finally {
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
