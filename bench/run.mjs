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
//   npm run bench -- --scenario client_credentials,token_exchange,token_exchange_uncached,private_key_jwt,workload_identity --targets ceiling,latchkey
//                                                # service to service (Latchkey only: the ceiling and peer have none of these)
//
// Run by hand on a quiet machine; never from the test suite. Results print as a Markdown table.
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { createServer } from 'node:http';
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

// Service to service: the private_key_jwt client's key, and a local stand-in for a workload
// identity issuer (a Kubernetes API server) whose JWK set Latchkey fetches once, then caches.
const WORKLOAD_ISSUER_PORT = 4500;
const WORKLOAD_ISSUER = `http://127.0.0.1:${WORKLOAD_ISSUER_PORT}`;
const WORKLOAD_SUBJECT = 'system:serviceaccount:bench:api';
const keyPair = () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: { ...createPublicKey(privateKey).export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' } };
};
const clientKey = keyPair();
const workloadKey = keyPair();
const jwksServer = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ keys: [workloadKey.jwk] }));
});
await new Promise((r) => jwksServer.listen(WORKLOAD_ISSUER_PORT, '127.0.0.1', r));
jwksServer.unref();

/** An ES256 JWT (node:crypto: these pools are signed before the load starts, not during it). */
function signEs256({ privateKey, jwk }, claims) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })}.${part(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

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
  latchkey: latchkeyTarget(root, 4300, true),
  // An older build may know none of the service-to-service grants: only the bench client there.
  ...(args.baseline ? { baseline: latchkeyTarget(resolve(args.baseline), 4400, false) } : {}),
};

/** Latchkey built in `checkout`, on `port`; with `serviceToService`, the clients and issuer of those scenarios too. */
function latchkeyTarget(checkout, port, serviceToService) {
  return {
    port,
    command: () => [process.execPath, join(checkout, 'dist/src/cli.js'), 'start'],
    env: (dir) => {
      // The bench client comes from the declarative bootstrap file, its secret from the environment.
      const clientsFile = join(dir, 'clients.json');
      const bench = {
        client_id: CLIENT_ID,
        client_secret_env: 'BENCH_CLIENT_SECRET',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        scope: 'api:read',
        resources: ['urn:bench:api'],
      };
      // token-exchange: the service-to-service scenarios exchange the bench client's own tokens.
      writeFileSync(clientsFile, JSON.stringify({
        clients: !serviceToService ? [bench] : [{
          ...bench,
          grant_types: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
          resources: ['urn:bench:api', 'urn:bench:next'],
        }, {
          client_id: 'bench-pkjwt',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [clientKey.jwk] },
          grant_types: ['client_credentials'],
          scope: 'api:read',
          resources: ['urn:bench:api'],
        }, {
          client_id: 'bench-workload',
          token_endpoint_auth_method: 'workload_identity',
          workload_identity: { issuer: WORKLOAD_ISSUER, subject: WORKLOAD_SUBJECT },
          grant_types: ['client_credentials'],
          scope: 'api:read',
          resources: ['urn:bench:api'],
        }],
      }));
      const issuersFile = join(dir, 'trusted-issuers.json');
      writeFileSync(issuersFile, JSON.stringify({
        issuers: [{ name: 'bench-workloads', issuer: WORKLOAD_ISSUER, jwks_uri: `${WORKLOAD_ISSUER}/jwks`, audiences: [`http://127.0.0.1:${port}`], algorithms: ['ES256'] }],
      }));
      return {
        DATA_DIR: join(dir, 'data'), CLIENTS_FILE: clientsFile, BENCH_CLIENT_SECRET: CLIENT_SECRET,
        ...(serviceToService ? { TRUSTED_ISSUERS_FILE: issuersFile, OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' } : {}),
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
    serviceToService,
  };
}

/** As many request bodies as a target can use up in one scenario (warm-up and every run), made by `make(i)`. */
function pool(make) {
  const size = (Number(args.warmup) + Number(args.runs) * Number(args.duration)) * 9000;
  return Array.from({ length: size }, (_, i) => make(i));
}

/** A request whose body is the next of `bodies` each time: every assertion (jti) is used once. */
function rotating(url, headers, bodies) {
  let next = 0;
  return { method: 'POST', url, headers, requests: [{ setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }) }] };
}

const EXCHANGE = 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&resource=urn%3Abench%3Anext&subject_token=';
const ASSERTION_TYPE = 'urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer';

async function clientToken(t, base) {
  const res = await fetch(`${base}${t.token.path}`, { method: 'POST', headers: form, body: t.token.body });
  const { access_token } = await res.json();
  if (!access_token) throw new Error(`no token from ${base}`);
  return access_token;
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
  // RFC 8693: the client exchanges its own access token for another audience (delegation). One
  // subject token, as a service forwarding the token it was called with: its signature check is
  // remembered (the verified-token cache), so a request costs the checks and one signature.
  token_exchange: async (t, base) => {
    if (!t.serviceToService) return null;
    return { method: 'POST', url: `${base}${t.token.path}`, headers: form, body: `${EXCHANGE}${await clientToken(t, base)}` };
  },
  // The same with 20 000 different subject tokens in turn, twice the verified-token cache: every
  // request verifies its subject token's signature (one verification + one signature).
  token_exchange_uncached: async (t, base) => {
    if (!t.serviceToService) return null;
    const subjects = [];
    while (subjects.length < 20_000) subjects.push(...(await Promise.all(Array.from({ length: 50 }, async () => `${EXCHANGE}${await clientToken(t, base)}`))));
    return rotating(`${base}${t.token.path}`, form, subjects);
  },
  // client_credentials authenticated by private_key_jwt (RFC 7523 §2.2): a new assertion per request.
  private_key_jwt: async (t, base) => {
    if (!t.serviceToService) return null;
    const aud = base;
    const iat = Math.floor(Date.now() / 1000);
    const bodies = pool(() => `grant_type=client_credentials&client_id=bench-pkjwt&client_assertion_type=${ASSERTION_TYPE}&client_assertion=${signEs256(clientKey, { iss: 'bench-pkjwt', sub: 'bench-pkjwt', aud, iat, exp: iat + 600, jti: randomUUID() })}`);
    return rotating(`${base}${t.token.path}`, { 'content-type': 'application/x-www-form-urlencoded' }, bodies);
  },
  // client_credentials authenticated by a workload's token from a trusted issuer (its JWK set
  // fetched once and cached): a new token (jti) per request, like private_key_jwt above.
  workload_identity: async (t, base) => {
    if (!t.serviceToService) return null;
    const iat = Math.floor(Date.now() / 1000);
    const bodies = pool(() => `grant_type=client_credentials&client_id=bench-workload&client_assertion_type=${ASSERTION_TYPE}&client_assertion=${signEs256(workloadKey, { iss: WORKLOAD_ISSUER, sub: WORKLOAD_SUBJECT, aud: [base], iat, exp: iat + 600, jti: randomUUID() })}`);
    return rotating(`${base}${t.token.path}`, { 'content-type': 'application/x-www-form-urlencoded' }, bodies);
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
