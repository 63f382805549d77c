#!/usr/bin/env node
// Sign-ins per second on one core, by factor, measured by hand (never from the test suite):
//
//   1. password only: an account without second factors, POST /login → 303 to return_to with a
//      session cookie (one request, one argon2id verification);
//   2. password + TOTP: POST /login → 303 to /login/factor, then POST /login/factor/totp with the
//      current code → 303 (two requests, one argon2id verification, one HMAC-SHA1 check and a
//      conditional UPDATE of the account's last used time step);
//   3. passkey alone, usernameless: POST /login/passkey/options, then POST /login/passkey with an
//      assertion of a software authenticator (bench/webauthn.mjs) → 200 {location} with a
//      session cookie (two requests, one ES256 verification, no argon2);
//   4. the reference: bare argon2.verify with the server's parameters, pinned to the server's
//      core, in the same run (a password sign-in can be no faster than its password check).
//
//   npm run bench:sign-in -- [--duration 10] [--runs 3] [--connections 8] [--totp-accounts auto]
//
// The server is pinned to core 0 and this load generator to core 1 (../shared/bench/README.md).
// Each loop is a browser with its own cookie jar: every sign-in replaces that browser's previous
// session, as when a person signs in again. The forms carry the CSRF cookie's value (it is
// renewed at each sign-in), the JSON endpoints take it as `csrf` in the body.
//
// TOTP: RFC 6238 §5.2 lets a code through once, so an account signs in with TOTP at most once per
// 30-s time step. The TOTP loops take accounts from a queue (least recently used first); a run
// starts when enough of them are usable for the rest of the time step (else at the next step),
// so the pool never runs dry; "pool waits" in the output counts the sign-ins that had to wait
// for the next step (then raise --totp-accounts). The pool size is derived from the bare argon2
// rate, an upper bound of the TOTP sign-in rate. The accounts are created in one process with the code of
// `latchkey users create` (that command takes ~2 s an account, each opening the store) and
// share one password hash; their TOTP and passkeys are enrolled through the pages, as a person
// does: sign in, GET /account/totp (the key in #totp-secret), POST /account/totp with a code;
// POST /account/passkeys/options, POST /account/passkeys with a 'none' attestation.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import {
  PASSWORD, bareArgon2, benchArgs, browser, csrfOf, each, expect, loops, median, passwordForm, pinToLoadCore, requireBuild, root,
  serverSetup, sleep, startServer, stopServer, waitReady,
} from './common.mjs';
import { SoftwareAuthenticator } from './webauthn.mjs';

const args = benchArgs({ duration: '10', runs: '3', connections: '8' }, { 'totp-accounts': { type: 'string', default: 'auto' } });
const DURATION = Number(args.duration);
const RUNS = Number(args.runs);
const CONNECTIONS = Number(args.connections);

pinToLoadCore();
requireBuild();

const PORT = 4410;
// WebAuthn needs a host name as RP ID: the issuer is http://localhost:PORT (clientDataJSON.origin
// must be exactly that), while the connections go to 127.0.0.1 (no name resolution per request).
const ORIGIN = `http://localhost:${PORT}`;
const BASE = `http://127.0.0.1:${PORT}`;
const STEP_MS = 30_000;
const { dir, env } = serverSetup('sign-in', {
  port: PORT, issuer: ORIGIN,
  vars: () => ({
    // The limiters stay on (their cost is part of the path); the limits are just out of reach.
    // LOGIN_RATE_LIMIT_PER_IP also limits /login/passkey*, /login/factor* and the enrolment pages.
    LOGIN_RATE_LIMIT_PER_IP: '10000000', LOGIN_RATE_LIMIT_PER_LOGIN: '10000000',
  }),
  overrides: args.env,
});
const stepOf = (ms) => Math.floor(ms / STEP_MS);

// ── The reference, on the server's core before the server starts: bare argon2id verifications ──
const argonResult = bareArgon2(env, DURATION);
console.error(`bare argon2id verify on core 0: ${argonResult.rate.toFixed(1)}/s, ${argonResult.perCpu.toFixed(1)} per CPU-second`);

// ── The accounts, before the server owns the embedded store ──
const TOTP_ACCOUNTS = args['totp-accounts'] === 'auto'
  ? Math.ceil(argonResult.rate * Math.min(DURATION, 30) * 1.25) + 2 * CONNECTIONS
  : Number(args['totp-accounts']);
const names = {
  password: Array.from({ length: CONNECTIONS }, (_, i) => `pw${i}`),
  totp: Array.from({ length: TOTP_ACCOUNTS }, (_, i) => `totp${i}`),
  passkey: Array.from({ length: CONNECTIONS }, (_, i) => `pk${i}`),
};
const dist = (p) => JSON.stringify(pathToFileURL(join(root, 'dist/src', p)).href);
const seed = spawnSync(process.execPath, ['--input-type=module', '-e', `
  import { configOrExit } from ${dist('cli/config-errors.js')};
  import { withCliStore } from ${dist('cli/store.js')};
  import { UserRepository } from ${dist('users/user-store.js')};
  import { createPasswordHasher } from ${dist('users/passwords.js')};
  const config = configOrExit();
  const hash = await (await createPasswordHasher({ ...config.argon2, minLength: config.passwordMinLength })).hash(${JSON.stringify(PASSWORD)});
  await withCliStore(config, async (store) => {
    const users = new UserRepository(store.db);
    for (const username of JSON.parse(process.env.BENCH_USERNAMES)) {
      await users.create({ username, profile: { preferred_username: username }, password_hash: hash }, new Date());
    }
  });
`], { cwd: root, env: { ...env, BENCH_USERNAMES: JSON.stringify(Object.values(names).flat()) }, encoding: 'utf8' });
if (seed.status !== 0) throw new Error(`seeding the accounts: ${seed.stderr}`);

const server = startServer(env);

/** Signed in: the account page answers 200 (not 303 to /login or to /login/factor). */
async function assertSignedIn(jar, what) {
  expect(`${what}: GET / after the sign-in`, await jar.go('GET', '/'), 200);
}

/** `connections` loops doing `step` until the deadline; completed count and latencies, and how busy each core was. */
async function load(connections, seconds, setup, step, beforeStart = async () => {}) {
  const workers = await Promise.all(Array.from({ length: connections }, (_, i) => setup(i)));
  await beforeStart();
  return loops(workers, seconds, step, server.pid);
}

/**
 * The TOTP accounts, least recently used first. An account whose last code was of the current
 * time step waits for the next one (counted in `waits`): the server would call its code replayed.
 */
class TotpPool {
  queue = [];
  waits = 0;
  async take() {
    for (;;) {
      const a = this.queue.shift();
      if (a && a.lastStep < stepOf(Date.now())) return a;
      if (a) this.queue.unshift(a);
      this.waits++;
      await sleep(STEP_MS - (Date.now() % STEP_MS) + 50);
    }
  }
  give(a) { this.queue.push(a); }
  allFresh() { const now = stepOf(Date.now()); return this.queue.every((a) => a.lastStep < now); }
}

try {
  await waitReady(BASE, server);

  // ── Enrolment through the pages, once ──
  const t0 = performance.now();
  const pool = new TotpPool();
  await each(names.totp, Math.max(CONNECTIONS, 4), async (login) => {
    const jar = await browser(BASE);
    expect(`enrol ${login}: POST /login`, await passwordForm(jar, login), 303, (r) => r.location === '/');
    const page = expect(`enrol ${login}: GET /account/totp`, await jar.go('GET', '/account/totp'), 200);
    const secret = /id="totp-secret">([^<]+)</.exec(page.body)[1].replace(/\s+/g, '');
    const csrf = csrfOf(page.body);
    const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    const now = Date.now();
    expect(`enrol ${login}: POST /account/totp`, await jar.go('POST', '/account/totp', { form: { csrf, code: totp.generate({ timestamp: now }), return_to: '/' } }), 303);
    pool.give({ login, totp, lastStep: stepOf(now) });
  });
  const authenticators = [];
  await each(names.passkey, CONNECTIONS, async (login) => {
    const jar = await browser(BASE);
    expect(`enrol ${login}: POST /login`, await passwordForm(jar, login), 303, (r) => r.location === '/');
    const options = JSON.parse(expect(`enrol ${login}: passkey options`, await jar.go('POST', '/account/passkeys/options', { json: { csrf: jar.csrf() } }), 200).body);
    const authenticator = new SoftwareAuthenticator({ origin: ORIGIN, rpId: new URL(ORIGIN).hostname });
    expect(`enrol ${login}: POST /account/passkeys`, await jar.go('POST', '/account/passkeys', { json: { csrf: jar.csrf(), response: authenticator.create(options), name: 'bench' } }), 200);
    authenticators.push(authenticator);
  });
  console.error(`enrolled ${names.totp.length} TOTP and ${names.passkey.length} passkey accounts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // ── One sign-in of each kind, each shown to end signed in ──
  const password = async (w) => {
    expect('POST /login', await passwordForm(w.jar, w.login), 303, (r) => r.location === '/');
  };
  const withTotp = async (w) => {
    const a = await pool.take();
    try {
      expect('POST /login', await passwordForm(w.jar, a.login), 303, (r) => r.location?.startsWith('/login/factor?'));
      const now = Date.now();
      a.lastStep = stepOf(now);
      expect('POST /login/factor/totp', await w.jar.go('POST', '/login/factor/totp', { form: { csrf: w.jar.csrf(), code: a.totp.generate({ timestamp: now }), return_to: '/' } }), 303);
    } finally {
      pool.give(a);
    }
  };
  const passkey = async (w) => {
    const options = JSON.parse(expect('POST /login/passkey/options', await w.jar.go('POST', '/login/passkey/options', { json: { csrf: w.jar.csrf() } }), 200).body);
    expect('POST /login/passkey', await w.jar.go('POST', '/login/passkey', { json: { csrf: w.jar.csrf(), response: w.authenticator.get(options), return_to: '/' } }), 200,
      (r) => JSON.parse(r.body).location === '/');
  };
  const setup = async (i) => ({ jar: await browser(BASE), login: names.password[i], authenticator: authenticators[i] });
  // A TOTP run starts at once when enough accounts are usable for what is left of this time
  // step at the bare argon2 rate (an upper bound); otherwise at the start of the next step.
  const totpStart = async () => {
    const now = Date.now();
    const left = Math.min(DURATION * 1000, STEP_MS - (now % STEP_MS));
    const usable = pool.queue.filter((x) => x.lastStep < stepOf(now)).length;
    if (usable >= 1.1 * argonResult.rate * (left / 1000) + CONNECTIONS) return;
    await sleep(STEP_MS - (now % STEP_MS) + 50);
  };
  for (const [what, step] of [['password', password], ['password + TOTP', withTotp], ['passkey', passkey]]) {
    const w = await setup(0);
    await step(w);
    await assertSignedIn(w.jar, what);
  }

  const cpu = (x) => `server core ${(100 * x.serverCpu).toFixed(0)} %, load generator ${(100 * x.clientCpu).toFixed(0)} %`;
  const results = { password: [], totp: [], passkey: [] };
  for (let run = 0; run < RUNS; run++) {
    const p = await load(CONNECTIONS, DURATION, setup, password);
    results.password.push(p);
    console.error(`password only, run ${run + 1}: ${p.rate.toFixed(1)}/s, p99 ${p.p99.toFixed(0)} ms, errors ${p.errors}, ${cpu(p)}`);
    const waitsBefore = pool.waits;
    const t = await load(CONNECTIONS, DURATION, setup, withTotp, totpStart);
    t.waits = pool.waits - waitsBefore;
    results.totp.push(t);
    console.error(`password + TOTP, run ${run + 1}: ${t.rate.toFixed(1)}/s, p99 ${t.p99.toFixed(0)} ms, errors ${t.errors}, pool waits ${t.waits}, ${cpu(t)}`);
    const k = await load(CONNECTIONS, DURATION, setup, passkey);
    results.passkey.push(k);
    console.error(`passkey, run ${run + 1}: ${k.rate.toFixed(0)}/s, p99 ${k.p99.toFixed(1)} ms, errors ${k.errors}, ${cpu(k)}`);
  }

  const rate = (xs) => median(xs.map((x) => x.rate));
  const p99 = (xs) => median(xs.map((x) => x.p99));
  const errors = (xs) => xs.reduce((a, x) => a + x.errors, 0);
  const [pw, tp, pk] = [rate(results.password), rate(results.totp), rate(results.passkey)];
  const a = argonResult.params;
  console.log(`\nNode ${process.version}, server on core 0, load on core 1, ${RUNS} × ${DURATION} s, ${CONNECTIONS} connections, argon2id m=${a.m} KiB t=${a.t} p=${a.p}, ${TOTP_ACCOUNTS} TOTP accounts\n`);
  // Sign-ins per CPU-second of the server: the same figure as per second when its core was all
  // its own (a quiet machine), and the steadier one when a neighbour took part of it.
  const perCpu = (xs) => median(xs.map((x) => x.rate / x.serverCpu));
  const [pwC, tpC, pkC] = [perCpu(results.password), perCpu(results.totp), perCpu(results.passkey)];
  const busy = (xs) => `${(100 * median(xs.map((x) => x.serverCpu))).toFixed(0)} % / ${(100 * median(xs.map((x) => x.clientCpu))).toFixed(0)} %`;
  const waits = results.totp.reduce((n, x) => n + x.waits, 0);
  console.log('| sign-in | per second (median) | p99 ms | errors | requests | server core / load core busy | per server CPU-second | notes |');
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| password only (POST /login → 303) | ${pw.toFixed(1)} | ${p99(results.password).toFixed(0)} | ${errors(results.password)} | 1 | ${busy(results.password)} | ${pwC.toFixed(1)} | ${(100 * pw / argonResult.rate).toFixed(0)} % of bare argon2id |`);
  console.log(`| password + TOTP (POST /login, POST /login/factor/totp) | ${tp.toFixed(1)} | ${p99(results.totp).toFixed(0)} | ${errors(results.totp)} | 2 | ${busy(results.totp)} | ${tpC.toFixed(1)} | ${(100 * tp / argonResult.rate).toFixed(0)} % of bare argon2id; pool waits ${waits} |`);
  console.log(`| passkey, usernameless (POST /login/passkey/options, POST /login/passkey) | ${pk.toFixed(0)} | ${p99(results.passkey).toFixed(1)} | ${errors(results.passkey)} | 2 | ${busy(results.passkey)} | ${pkC.toFixed(0)} | no argon2: one ES256 verification |`);
  console.log(`| reference: bare argon2id verify, same core, same run | ${argonResult.rate.toFixed(1)} | ${argonResult.p99.toFixed(0)} | – | – | – | ${argonResult.perCpu.toFixed(1)} | one at a time |`);
  console.log(`\npasskey / password: ${(pk / pw).toFixed(1)}× (per server CPU-second: ${(pkC / pwC).toFixed(1)}×)`);
  console.log(`TOTP overhead: ${(100 * (1 - tp / pw)).toFixed(1)} % fewer sign-ins per second than password only, ${(1000 / tp - 1000 / pw).toFixed(2)} ms more per sign-in`
    + ` (per server CPU-second: ${(100 * (1 - tpC / pwC)).toFixed(1)} %, ${(1000 / tpC - 1000 / pwC).toFixed(2)} ms of CPU)`);
  if (waits > 0) console.log(`${waits} TOTP sign-ins waited for a fresh time step: the pool was too small, raise --totp-accounts`);
} finally {
  await stopServer(server, dir);
}
