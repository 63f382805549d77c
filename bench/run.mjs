#!/usr/bin/env node
// Latchkey's benchmark: each scenario is measured against the ceiling (a bare Fastify route
// that parses the form, checks a Basic credential and signs one ES256 JWT) and the peer
// (node-oidc-provider) in the same invocation, as ../shared/bench/README.md prescribes:
// servers pinned to core 0, the load generator (this process, autocannon) to core 1, loopback,
// 50 connections, rounds interleaved across targets, median of the runs after a warm-up.
//
//   npm run bench                                # client_credentials and introspection, 3 runs of 8 s
//   npm run bench -- --scenario introspection_jwt  # introspection answered as a JWT (RFC 9701)
//   npm run bench -- --scenario client_credentials --runs 5 --duration 10
//   npm run bench -- --targets latchkey,ceiling  # a subset of targets
//   npm run bench -- --baseline ../before --targets ceiling,baseline,latchkey  # against another build (its dist/)
//
// Run by hand on a quiet machine; never from the test suite. Results print as a Markdown table.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { CLIENT_SECRET, envPairs, median, pinToLoadCore, pinned, requireBuild, root } from './common.mjs';

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'client_credentials,introspection' },
    targets: { type: 'string', default: 'ceiling,peer,latchkey' },
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    'log-level': { type: 'string', default: 'info' },
    // Extra environment for Latchkey, e.g. --env AUDIT_DB_EXCLUDE=token.issued (repeatable).
    env: { type: 'string', multiple: true, default: [] },
    // Another build of Latchkey (a checkout with dist/ built), measured in the same run as the
    // target `baseline`: a change on the token path against the build before it.
    baseline: { type: 'string' },
  },
});

// The load generator gets core 1 to itself; the servers get core 0.
pinToLoadCore();

const CLIENT_ID = 'bench';
const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
const form = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic };
const TOKEN_BODY = 'grant_type=client_credentials&scope=api%3Aread';

/** How to start each target and where its endpoints are. */
const targets = {
  ceiling: {
    port: 4100,
    command: () => [process.execPath, process.env.CEILING_SCRIPT ?? resolve(root, '../shared/bench/ceiling.mjs')],
    env: () => ({}),
    readyPath: null,
    token: { path: '/token', body: TOKEN_BODY },
    introspect: null, // the ceiling has no introspection endpoint
  },
  peer: {
    port: 4200,
    command: () => [process.execPath, join(root, 'bench/peer-oidc-provider.mjs')],
    env: () => ({ NODE_ENV: 'production' }),
    readyPath: '/.well-known/openid-configuration',
    token: { path: '/token', body: TOKEN_BODY },
    // node-oidc-provider introspects only its opaque tokens (see peer-oidc-provider.mjs).
    introspect: { path: '/token/introspection', tokenBody: `${TOKEN_BODY}&resource=urn%3Abench%3Aopaque` },
  },
  latchkey: latchkeyTarget(root, 4300),
  ...(args.baseline ? { baseline: latchkeyTarget(resolve(args.baseline), 4400) } : {}),
};

/** Latchkey built in `checkout`, on `port`. */
function latchkeyTarget(checkout, port) {
  return {
    port,
    command: () => [process.execPath, join(checkout, 'dist/src/cli.js'), 'start'],
    env: (dir) => {
      // The bench client comes from the declarative bootstrap file, its secret from the environment.
      const clientsFile = join(dir, 'clients.json');
      writeFileSync(clientsFile, JSON.stringify({
        clients: [{
          client_id: CLIENT_ID,
          client_secret_env: 'BENCH_CLIENT_SECRET',
          token_endpoint_auth_method: 'client_secret_basic',
          grant_types: ['client_credentials'],
          scope: 'api:read',
          resources: ['urn:bench:api'],
        }],
      }));
      return {
        DATA_DIR: join(dir, 'data'), CLIENTS_FILE: clientsFile, BENCH_CLIENT_SECRET: CLIENT_SECRET,
        ISSUER: `http://127.0.0.1:${port}`, LOG_LEVEL: args['log-level'],
        // The limiter stays on (its cost is part of the hot path); the limits are just out of reach.
        TOKEN_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_IP: '10000000',
        INTROSPECTION_RATE_LIMIT_PER_CLIENT: '10000000', INTROSPECTION_RATE_LIMIT_PER_IP: '10000000',
        ...envPairs(args.env),
      };
    },
    readyPath: '/readyz',
    token: { path: '/token', body: `${TOKEN_BODY}&resource=urn%3Abench%3Aapi` },
    introspect: { path: '/introspect', tokenBody: `${TOKEN_BODY}&resource=urn%3Abench%3Aapi` },
  };
}

/** What one request of each scenario is, for a target; null when the target cannot do it. */
const scenarios = {
  client_credentials: async (t, base) => ({ method: 'POST', url: `${base}${t.token.path}`, headers: form, body: t.token.body }),
  introspection: async (t, base) => {
    if (!t.introspect) return null;
    const res = await fetch(`${base}${t.token.path}`, { method: 'POST', headers: form, body: t.introspect.tokenBody });
    const { access_token } = await res.json();
    if (!access_token) throw new Error(`no token from ${base}`);
    return { method: 'POST', url: `${base}${t.introspect.path}`, headers: form, body: `token=${encodeURIComponent(access_token)}` };
  },
  // The same, answered as a signed JWT (RFC 9701): one ES256 signature per request.
  introspection_jwt: async (t, base) => {
    const request = await scenarios.introspection(t, base);
    return request && { ...request, headers: { ...form, accept: 'application/token-introspection+jwt' } };
  },
};

async function waitReady(url, child) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: server exited with ${child.exitCode}`);
    try {
      const res = await fetch(url, { method: url.endsWith('/token') ? 'POST' : 'GET' });
      if (res.status < 500) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function start(name) {
  const t = targets[name];
  const dir = mkdtempSync(join(tmpdir(), `latchkey-bench-${name}-`));
  const [cmd, argv] = pinned(t.command());
  const child = spawn(cmd, argv, { cwd: root, env: { ...process.env, BENCH_PINNED: '', PORT: String(t.port), ...t.env(dir) }, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${t.port}`;
  await waitReady(`${base}${t.readyPath ?? t.token.path}`, child);
  return { name, t, base, stop: () => { child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } };
}

const run = (request, duration) => new Promise((resolvePromise, reject) => {
  autocannon({ ...request, connections: Number(args.connections), duration, pipelining: 1 }, (err, result) => (err ? reject(err) : resolvePromise(result)));
});

requireBuild();

const names = args.targets.split(',').filter(Boolean);
const running = [];
try {
  for (const name of names) running.push(await start(name));
  const report = {};
  for (const scenario of args.scenario.split(',').filter(Boolean)) {
    const requests = {};
    for (const r of running) requests[r.name] = await scenarios[scenario](r.t, r.base);
    const samples = Object.fromEntries(running.map((r) => [r.name, []]));
    for (const r of running) if (requests[r.name]) await run(requests[r.name], Number(args.warmup));
    for (let round = 0; round < Number(args.runs); round++) {
      for (const r of running) {
        if (!requests[r.name]) continue;
        const res = await run(requests[r.name], Number(args.duration));
        samples[r.name].push({ rps: res.requests.average, p99: res.latency.p99, non2xx: res.non2xx + res.errors + res.timeouts });
        console.error(`${scenario} ${r.name} run ${round + 1}: ${res.requests.average.toFixed(0)} req/s, p99 ${res.latency.p99} ms, non-2xx ${res.non2xx}, errors ${res.errors}`);
      }
    }
    report[scenario] = Object.fromEntries(Object.entries(samples).filter(([, s]) => s.length).map(([n, s]) => [n, {
      rps: median(s.map((x) => x.rps)), p99: median(s.map((x) => x.p99)), non2xx: s.reduce((a, x) => a + x.non2xx, 0), runs: s.length,
    }]));
  }
  console.log(`\nNode ${process.version}, ${args.connections} connections, ${args.runs} × ${args.duration} s after ${args.warmup} s warm-up, servers on core 0, load on core 1, Latchkey LOG_LEVEL=${args['log-level']}${args.env.length ? ` ${args.env.join(' ')}` : ''}\n`);
  for (const [scenario, rows] of Object.entries(report)) {
    console.log(`### ${scenario}\n`);
    console.log('| target | req/s (median) | p99 ms | non-2xx | share of ceiling | × peer |');
    console.log('|---|---|---|---|---|---|');
    for (const [n, r] of Object.entries(rows)) {
      const share = rows.ceiling ? (r.rps / rows.ceiling.rps).toFixed(2) : '—';
      const vsPeer = rows.peer ? (r.rps / rows.peer.rps).toFixed(2) : '—';
      console.log(`| ${n} | ${r.rps.toFixed(0)} | ${r.p99} | ${r.non2xx} | ${share} | ${vsPeer} |`);
    }
    console.log('');
  }
  writeFileSync(join(tmpdir(), 'latchkey-bench-latest.json'), JSON.stringify(report, null, 2));
} finally {
  for (const r of running) r.stop();
}
