#!/usr/bin/env node
// The device authorization grant (RFC 8628), measured by hand (never from the test suite), in one
// run against one server, next to the token path's reference:
//
//   1. the reference: client_credentials tokens per second, as bench/run.mjs measures them (a
//      confidential client, client_secret_basic, one ES256 signature a token; autocannon);
//   2. pending polls per second at /token: grant_type=urn:ietf:params:oauth:grant-type:device_code
//      from a public client (client_id only), each answered 400 authorization_pending — one
//      indexed, locked UPDATE and no signature. Anything else counts as an error, slow_down too.
//      The same autocannon, the same connections, rounds interleaved with the reference; reported
//      as a share of it;
//   3. whole flows per approved device: POST /device_authorization → a signed-in browser posts
//      /device with the user code (the consent page) → POST /device/decision allow → the device's
//      next poll gets its tokens (access, refresh and ID token: two signatures and a new refresh
//      family). Completed flows per second and the p99 of a whole flow, --flow-connections flows
//      at a time (plain fetch loops), each on its own browser session.
//
//   npm run bench:device -- [--duration 8] [--runs 3] [--warmup 3] [--connections 50]
//                           [--flow-connections 8] [--codes auto]
//
// The server is pinned to core 0 and this load generator to core 1 (../shared/bench/README.md).
//
// Polling without slow_down: the server answers slow_down (and adds 5 s to that device's
// interval) when a device polls sooner than its interval after its previous poll. The bench runs
// with DEVICE_CODE_INTERVAL=1 and a pool of pending device codes (--codes; auto: three times the
// reference's warm-up rate, i.e. a second of polls at up to 3× the client_credentials rate): each
// request takes the code whose previous answer came back longest ago, and a code goes back to
// the pool only once its answer has arrived, becoming usable again its interval (+ 25 ms) after
// that answer — so the server sees it polled no sooner than its interval. When the oldest code
// is not yet usable, the poll is sent anyway and counted in "pool misses" (raise --codes).
//
// The flows' browsers sign in once each (POST /login with the CSRF cookie's value, as
// bench/sign-in-factors.mjs does) as one user created before the server starts; the forms carry
// the CSRF cookie's value (POST /device) or the page's (POST /device/decision).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import {
  CLIENT_SECRET, FORM, PASSWORD, benchArgs, cpuMeter, csrfOf, each, expect, latchkey, loops, median, pinToLoadCore, requireBuild,
  serverSetup, signedIn, sleep, startServer, stopServer, waitReady,
} from './common.mjs';

const args = benchArgs({ duration: '8', runs: '3', connections: '50' }, {
  warmup: { type: 'string', default: '3' },
  'flow-connections': { type: 'string', default: '8' },
  codes: { type: 'string', default: 'auto' },
});
const DURATION = Number(args.duration);
const RUNS = Number(args.runs);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const FLOW_CONNECTIONS = Number(args['flow-connections']);

pinToLoadCore();
requireBuild();

const PORT = 4420;
const BASE = `http://127.0.0.1:${PORT}`;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const INTERVAL = 1; // DEVICE_CODE_INTERVAL's least value: the smallest pool of codes
const CC_CLIENT = 'bench';
const DEVICE_CLIENT = 'bench-tv';
const DEVICE_SCOPE = 'openid profile offline_access';
const ccHeaders = { 'content-type': FORM, authorization: `Basic ${Buffer.from(`${CC_CLIENT}:${CLIENT_SECRET}`).toString('base64')}` };
const CC_BODY = 'grant_type=client_credentials&scope=api%3Aread&resource=urn%3Abench%3Aapi';

const { dir, env } = serverSetup('device', {
  port: PORT,
  vars: (dir) => ({
    CLIENTS_FILE: join(dir, 'clients.json'), BENCH_CLIENT_SECRET: CLIENT_SECRET,
    DEVICE_CODE_INTERVAL: String(INTERVAL), DEVICE_CODE_TTL: '3600',
    // The limiters stay on (their cost is part of the path); the limits are just out of reach.
    TOKEN_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_IP: '10000000', DEVICE_AUTHORIZATION_RATE_LIMIT_PER_IP: '10000000',
    LOGIN_RATE_LIMIT_PER_IP: '10000000', LOGIN_RATE_LIMIT_PER_LOGIN: '10000000',
  }),
  overrides: args.env,
});
writeFileSync(env.CLIENTS_FILE, JSON.stringify({
  clients: [
    // bench/run.mjs's client.
    {
      client_id: CC_CLIENT, client_secret_env: 'BENCH_CLIENT_SECRET', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'], scope: 'api:read', resources: ['urn:bench:api'],
    },
    // A TV app or a CLI: public (RFC 8628 §5.6), refresh tokens with offline_access.
    { client_id: DEVICE_CLIENT, client_name: 'Bench TV', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], scope: DEVICE_SCOPE },
  ],
}));

// The user, before the server owns the embedded store.
const cli = (argv, input) => latchkey(env, argv, input);
cli(['migrate']);
cli(['users', 'create', '--username', 'bench', '--password-stdin'], `${PASSWORD}\n`);

const server = startServer(env);

/** The device's side: no cookies, a form, a JSON answer. */
async function device(path, form) {
  const res = await fetch(`${BASE}${path}`, { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams(form).toString() });
  return { status: res.status, body: await res.text() };
}
const startDevice = async () => JSON.parse(expect('POST /device_authorization', await device('/device_authorization', { client_id: DEVICE_CLIENT, scope: DEVICE_SCOPE }), 200).body);

/** One approved device, start to tokens: four requests. */
async function flow(jar) {
  const d = await startDevice();
  const consent = expect('POST /device', await jar.go('POST', '/device', { form: { csrf: jar.csrf(), user_code: d.user_code } }), 200, (r) => r.body.includes('A device is asking'));
  const csrf = csrfOf(consent.body);
  const shownTo = /name="shown_to" value="([^"]+)"/.exec(consent.body)[1];
  expect('POST /device/decision', await jar.go('POST', '/device/decision', { form: { csrf, user_code: d.user_code, shown_to: shownTo, decision: 'allow' } }), 200,
    (r) => r.body.includes('Device connected'));
  const tokens = expect('poll after approval', await device('/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: DEVICE_CLIENT }), 200);
  const t = JSON.parse(tokens.body);
  if (!t.access_token || !t.refresh_token || !t.id_token) throw new Error(`poll after approval: not all three tokens: ${Object.keys(t).join(', ')}`);
}

/** `connections` fetch loops doing `step` until the deadline; completed count and latencies, and how busy each core was. */
const load = (workers, seconds, step) => loops(workers, seconds, step, server.pid);

/**
 * The pending device codes, least recently answered first. A code is usable `interval` seconds
 * (+ 25 ms) after its previous answer arrived: the server saw that poll before the answer left,
 * and sees the next one after it is sent, so never sooner than the interval.
 */
class CodePool {
  queue = [];
  head = 0;
  taken = new Set();
  misses = 0;
  add(code) { this.queue.push({ code, interval: INTERVAL, readyAt: 0 }); }
  take() {
    if (this.head > 4096 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
    const c = this.queue[this.head++];
    if (c.readyAt > performance.now()) this.misses++;
    this.taken.add(c);
    return c;
  }
  give(c, margin = 25) {
    c.readyAt = performance.now() + c.interval * 1000 + margin;
    this.taken.delete(c);
    this.queue.push(c);
  }
  /**
   * After a run: the codes taken and never answered (built but not sent, or in flight — the
   * server may still be working through those): usable again only after a wide margin.
   */
  reclaim() { for (const c of this.taken) this.give(c, 5000); }
}

const autocannonRun = (opts, seconds) => new Promise((resolvePromise, reject) => {
  autocannon({ url: `${BASE}/token`, connections: CONNECTIONS, duration: seconds, pipelining: 1, ...opts }, (err, result) => (err ? reject(err) : resolvePromise(result)));
});

async function clientCredentials(seconds) {
  const meter = cpuMeter(server.pid);
  const res = await autocannonRun({ method: 'POST', headers: ccHeaders, body: CC_BODY }, seconds);
  if (res.non2xx + res.errors + res.timeouts) console.error(`client_credentials: non-2xx ${res.non2xx}, errors ${res.errors}, timeouts ${res.timeouts}, status codes ${JSON.stringify(res.statusCodeStats)}`);
  return { rate: res.requests.average, p99: res.latency.p99, errors: res.non2xx + res.errors + res.timeouts, ...meter(seconds) };
}

async function pendingPolls(pool, seconds) {
  let ok = 0;
  let errors = 0;
  let firstError;
  const missesBefore = pool.misses;
  const meter = cpuMeter(server.pid);
  const res = await autocannonRun({
    requests: [{
      method: 'POST', path: '/token', headers: { 'content-type': FORM },
      setupRequest: (req, context) => {
        const c = pool.take();
        context.code = c;
        req.body = `grant_type=${encodeURIComponent(DEVICE_GRANT)}&device_code=${c.code}&client_id=${DEVICE_CLIENT}`;
        return req;
      },
      onResponse: (status, body, context) => {
        const c = context.code;
        context.code = undefined;
        if (status === 400 && body.includes('"error":"authorization_pending"')) ok++;
        else {
          errors++;
          firstError ??= `${status} ${body.slice(0, 200)}`;
          // slow_down: the server grew this device's interval; keep to the new one.
          const grown = /wait at least (\d+) seconds/.exec(body);
          if (grown && c) c.interval = Number(grown[1]);
        }
        if (c) pool.give(c);
      },
    }],
  }, seconds);
  pool.reclaim();
  if (firstError) console.error(`first poll error: ${firstError}`);
  // Every response went through onResponse: its count of authorization_pending is the rate.
  return {
    rate: ok / seconds, p99: res.latency.p99, errors: errors + res.errors + res.timeouts, misses: pool.misses - missesBefore,
    ...meter(seconds),
  };
}

try {
  await waitReady(BASE, server);

  // ── Warm-up of the reference; its rate sizes the pool of pending codes ──
  const warm = await clientCredentials(WARMUP);
  if (warm.errors) {
    const res = await fetch(`${BASE}/token`, { method: 'POST', headers: ccHeaders, body: CC_BODY });
    throw new Error(`client_credentials warm-up: ${warm.errors} errors, e.g. ${res.status} ${(await res.text()).slice(0, 200)}`);
  }
  const CODES = args.codes === 'auto' ? Math.ceil(3 * warm.rate * INTERVAL) + 2 * CONNECTIONS : Number(args.codes);
  const pool = new CodePool();
  const t0 = performance.now();
  await each(Array.from({ length: CODES }), 16, async () => pool.add((await startDevice()).device_code));
  console.error(`client_credentials warm-up ${warm.rate.toFixed(0)}/s; ${CODES} pending device codes made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // ── Each kind shown once: a pending poll answers authorization_pending, a flow ends with three tokens ──
  const probe = await device('/token', { grant_type: DEVICE_GRANT, device_code: (await startDevice()).device_code, client_id: DEVICE_CLIENT });
  expect('a pending poll', probe, 400, (r) => JSON.parse(r.body).error === 'authorization_pending');
  const browsers = await Promise.all(Array.from({ length: FLOW_CONNECTIONS }, () => signedIn(BASE, 'bench')));
  await flow(browsers[0]);
  await sleep(INTERVAL * 1000 + 100); // the codes polled by no one yet are usable at once; made sure for all
  await pendingPolls(pool, WARMUP);
  await load(browsers, WARMUP, flow);

  const cpu = (x) => `server core ${(100 * x.serverCpu).toFixed(0)} %, load generator ${(100 * x.clientCpu).toFixed(0)} %`;
  const results = { cc: [], polls: [], flows: [] };
  for (let run = 0; run < RUNS; run++) {
    const c = await clientCredentials(DURATION);
    results.cc.push(c);
    console.error(`client_credentials, run ${run + 1}: ${c.rate.toFixed(0)}/s, p99 ${c.p99} ms, errors ${c.errors}, ${cpu(c)}`);
    const p = await pendingPolls(pool, DURATION);
    results.polls.push(p);
    console.error(`pending polls, run ${run + 1}: ${p.rate.toFixed(0)}/s, p99 ${p.p99} ms, errors ${p.errors}, pool misses ${p.misses}, ${cpu(p)}`);
    const f = await load(browsers, DURATION, flow);
    results.flows.push(f);
    console.error(`device flows, run ${run + 1}: ${f.rate.toFixed(0)}/s, p99 ${f.p99.toFixed(1)} ms, errors ${f.errors}, ${cpu(f)}`);
  }

  const rate = (xs) => median(xs.map((x) => x.rate));
  const p99 = (xs) => median(xs.map((x) => x.p99));
  const errors = (xs) => xs.reduce((a, x) => a + x.errors, 0);
  // Per CPU-second of the server: the same as per second when its core was all its own, and the
  // steadier figure when a neighbour took part of it.
  const perCpu = (xs) => median(xs.map((x) => x.rate / x.serverCpu));
  const busy = (xs) => `${(100 * median(xs.map((x) => x.serverCpu))).toFixed(0)} % / ${(100 * median(xs.map((x) => x.clientCpu))).toFixed(0)} %`;
  // Shares paired by round (the reference and the polls measured seconds apart), then the median.
  const paired = (xs, f) => median(xs.map((x, i) => f(x, results.cc[i])));
  const [cc, polls, flows] = [rate(results.cc), rate(results.polls), rate(results.flows)];
  const misses = results.polls.reduce((n, x) => n + x.misses, 0);
  console.log(`\nNode ${process.version}, server on core 0, load on core 1, ${RUNS} × ${DURATION} s after ${WARMUP} s warm-up, rounds interleaved; `
    + `autocannon ${CONNECTIONS} connections; ${FLOW_CONNECTIONS} concurrent flows (fetch); DEVICE_CODE_INTERVAL=${INTERVAL}, ${CODES} pending codes\n`);
  console.log('| measure | per second (median) | p99 ms | errors | server core / load core busy | per server CPU-second | against client_credentials |');
  console.log('|---|---|---|---|---|---|---|');
  console.log(`| client_credentials tokens (confidential client, client_secret_basic; the reference) | ${cc.toFixed(0)} | ${p99(results.cc)} | ${errors(results.cc)} | ${busy(results.cc)} | ${perCpu(results.cc).toFixed(0)} | 1.00 |`);
  console.log(`| pending polls (public client, 400 authorization_pending) | ${polls.toFixed(0)} | ${p99(results.polls)} | ${errors(results.polls)} | ${busy(results.polls)} | ${perCpu(results.polls).toFixed(0)} | `
    + `${paired(results.polls, (p, c) => p.rate / c.rate).toFixed(2)} (per CPU-second ${paired(results.polls, (p, c) => (p.rate / p.serverCpu) / (c.rate / c.serverCpu)).toFixed(2)}) |`);
  console.log(`| approved devices, whole flow (4 requests: /device_authorization, POST /device, /device/decision, the poll that takes 3 tokens) | ${flows.toFixed(0)} | ${p99(results.flows).toFixed(1)} | ${errors(results.flows)} | ${busy(results.flows)} | ${perCpu(results.flows).toFixed(0)} | `
    + `one flow costs ${paired(results.flows, (f, c) => (c.rate / c.serverCpu) / (f.rate / f.serverCpu)).toFixed(1)} client_credentials tokens of server CPU |`);
  console.log(`\npending polls / client_credentials: ${(polls / cc).toFixed(2)} (medians), paired by round ${results.polls.map((p, i) => (p.rate / results.cc[i].rate).toFixed(2)).join(', ')}`);
  if (misses > 0) console.log(`${misses} polls took a code sooner than its interval allowed: the pool was too small, raise --codes`);
  if (Math.max(...results.flows.map((x) => x.clientCpu)) > 0.9) console.log('the load generator\'s core was ≥ 90 % busy during the flows: the flow figure may be the generator\'s limit, not the server\'s');
} finally {
  await stopServer(server, dir);
}
