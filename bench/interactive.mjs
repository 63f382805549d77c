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
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CLIENT_SECRET, Jar, PASSWORD, bareArgon2, benchArgs, csrfOf, latchkey, loops, median, pinToLoadCore, requireBuild, serverSetup,
  signedIn, startServer, stopServer, waitReady,
} from './common.mjs';

const args = benchArgs({ duration: '10', runs: '3', connections: '8' }, { 'login-connections': { type: 'string', default: '4' } });
pinToLoadCore();
requireBuild();

const PORT = 4400;
const BASE = `http://127.0.0.1:${PORT}`;
const CLIENT_ID = 'bench-web';
const REDIRECT = 'https://app.example.com/cb';
const { dir, env } = serverSetup('interactive', {
  port: PORT,
  vars: (dir) => ({
    CLIENTS_FILE: join(dir, 'clients.json'), BENCH_CLIENT_SECRET: CLIENT_SECRET,
    // The limiters stay on (their cost is part of the path); the limits are just out of reach.
    LOGIN_RATE_LIMIT_PER_IP: '10000000', LOGIN_RATE_LIMIT_PER_LOGIN: '10000000', AUTHORIZE_RATE_LIMIT_PER_IP: '10000000',
    AUTHORIZE_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_CLIENT: '10000000', TOKEN_RATE_LIMIT_PER_IP: '10000000',
  }),
  overrides: args.env,
});
writeFileSync(env.CLIENTS_FILE, JSON.stringify({
  clients: [{ client_id: CLIENT_ID, client_secret_env: 'BENCH_CLIENT_SECRET', client_name: 'Bench', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile email offline_access' }],
}));

const cli = (argv, input) => latchkey(env, argv, input);
// The users, before the server owns the embedded store.
cli(['migrate']);
for (let i = 0; i < Number(args['login-connections']); i++) cli(['users', 'create', '--username', `bench${i}`, '--password-stdin'], `${PASSWORD}\n`);
cli(['users', 'create', '--username', 'bench', '--password-stdin'], `${PASSWORD}\n`);

const server = startServer(env);

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
  return loops(workers, seconds, step);
}

try {
  await waitReady(BASE, server);
  // Consent on record: the first request shows the page, the user allows once.
  const user = await signedIn(BASE, 'bench');
  const first = await user.go('GET', authorizePath('openid profile email offline_access').path);
  const action = /action="(\/interaction\/[^"]+)"/.exec(first.body)[1];
  const shownTo = /name="shown_to" value="([^"]+)"/.exec(first.body)[1];
  const allowed = await user.go('POST', action, { form: { csrf: csrfOf(first.body), shown_to: shownTo, decision: 'allow' } });
  if (allowed.status !== 303) throw new Error('consent failed');

  // The ceiling of a login: argon2id verifications per second with the server's parameters, on core 0.
  const argonResult = bareArgon2(env, Number(args.duration));

  const logins = [];
  const trips = [];
  const refreshes = [];
  for (let run = 0; run < Number(args.runs); run++) {
    const l = await load(Number(args['login-connections']), Number(args.duration),
      async (i) => { const jar = new Jar(BASE); await jar.go('GET', '/login'); return { jar, login: `bench${i}` }; },
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
  await stopServer(server, dir);
}
