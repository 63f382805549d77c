import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { createAlice, instanceEnv, overHttp, pgBinDir, SERVICE, startCluster, WEB, type PgCluster } from '../support/fault.js';
import { PASSWORD } from '../support/oidc.js';
import { freePort, run, waitFor, type Running } from '../support/process.js';
import { codeFlow, refresh } from '../support/refresh.js';
import { Runbook, rows, samples } from '../support/runbooks.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

/**
 * Every runbook of docs/runbooks/, executed: a real `latchkey start` (embedded store, or a
 * PostgreSQL schema of its own when DATABASE_URL is set), the incident driven over HTTP, then the
 * runbook's marked steps run in order with bash exactly as written (test/support/runbooks.ts), and
 * the outcome checked — at the token endpoints, in the JWKS, and in the alert expressions the
 * runbook names, evaluated on the scraped /metrics.
 */

const ADMIN_SECRET = `admin-${randomBytes(24).toString('hex')}`;
const METRICS_SECRET = `metrics-${randomBytes(24).toString('hex')}`;
const INCIDENT = 'INC-25';
const THIEF_IP = '203.0.113.50';
const ATTACKER_IP = '203.0.113.9';
const INTRUDER_IP = '203.0.113.77';
const USER_IP = '198.51.100.7';

interface Server { base: string; port: number; env: Record<string, string>; proc: Running }

const schemas: string[] = [];
const servers: Server[] = [];

/** `latchkey start` on a given port (the same issuer across restarts); resolves once /readyz is 200. */
async function start(env: Record<string, string>, port?: number): Promise<Server> {
  const p = port ?? await freePort();
  const base = `http://127.0.0.1:${p}`;
  const proc = run(['start'], { ...env, ISSUER: base, PORT: String(p) });
  await Promise.race([
    waitFor(`${base}/readyz`, 60_000),
    proc.exited.then((code) => { throw new Error(`latchkey start exited (${code}): ${proc.stderr()}`); }),
  ]);
  const server = { base, port: p, env, proc };
  servers.push(server);
  return server;
}

async function stop(server: Server): Promise<void> {
  server.proc.child.kill('SIGTERM');
  expect(await server.proc.exited).toBe(0);
}

/** The environment of one deployment: its own store, the two clients of instanceEnv, admin and metrics credentials. */
function deployment(extra: Record<string, string> = {}, databaseUrl = onPostgres ? process.env.DATABASE_URL : undefined): Record<string, string> {
  const schema = databaseUrl && databaseUrl === process.env.DATABASE_URL ? uniqueSchema() : undefined;
  if (schema) schemas.push(schema);
  const env = instanceEnv(databaseUrl, {
    ...(schema ? { DATABASE_SCHEMA: schema } : {}),
    ADMIN_TOKENS: `oncall:${ADMIN_SECRET}`, METRICS_TOKEN: METRICS_SECRET, KEY_CHECK_INTERVAL: '1h', ...extra,
  });
  delete env.ISSUER;
  return env;
}

/** The variables every runbook uses. */
function operatorEnv(server: Server): Record<string, string> {
  return { LATCHKEY_URL: server.base, LATCHKEY_ADMIN_TOKEN: ADMIN_SECRET, LATCHKEY_METRICS_TOKEN: METRICS_SECRET, INCIDENT };
}

/** `server.inject()` over real HTTP from a given client address (X-Forwarded-For, with TRUST_PROXY=loopback). */
const from = (base: string, ip: string) => overHttp(base, { 'x-forwarded-for': ip });

async function clientCredentials(base: string, client: { id: string; secret: string }, ip?: string): Promise<Response> {
  return fetch(`${base}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded', ...(ip ? { 'x-forwarded-for': ip } : {}),
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
}

async function accessToken(base: string, client: { id: string; secret: string }, ip?: string): Promise<string> {
  const res = await clientCredentials(base, client, ip);
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function introspect(base: string, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${SERVICE.id}:${SERVICE.secret}`).toString('base64')}` },
    body: new URLSearchParams({ token }).toString(),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function admin(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${ADMIN_SECRET}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  expect(res.status, `${path}: ${res.status}`).toBeLessThan(300);
  return res.json();
}

async function metrics(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_SECRET}` } });
  expect(res.status).toBe(200);
  return res.text();
}

/** Polls until the audit trail holds `n` events of the query (rows are written in batches, every second). */
async function auditEvents(base: string, query: string, n: number): Promise<any[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { events } = await admin(base, `/admin/audit?${query}`);
    if (events.length >= n || Date.now() > deadline) return events;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Whether the token verifies against the instance's JWKS as published now (a fresh key set each time). */
async function verifies(base: string, token: string): Promise<boolean> {
  try {
    await jwtVerify(token, createRemoteJWKSet(new URL(`${base}/jwks`), { cacheMaxAge: 0 }));
    return true;
  } catch {
    return false;
  }
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

afterAll(async () => {
  for (const s of servers) if (s.proc.child.exitCode === null && s.proc.child.signalCode === null) { s.proc.child.kill('SIGTERM'); await s.proc.exited; }
  for (const schema of schemas) await dropSchema(schema);
});

// One deployment for the incidents about clients, refresh tokens, accounts and the SLOs: each
// runbook acts on its own client or user, so they do not disturb one another.
describe('runbooks on a running deployment', { timeout: 180_000 }, () => {
  let server: Server;
  let aliceSub: string;
  const since = new Date(Date.now() - 60_000).toISOString();

  beforeAll(async () => {
    // Every issuance in the table (the leaked-secret step lists each jti); no grace window, so a
    // rotated refresh token presented again is a reuse at once.
    const env = deployment({ TRUST_PROXY: 'loopback', AUDIT_DB_EXCLUDE: 'none', REFRESH_TOKEN_GRACE_PERIOD: '0' });
    aliceSub = await createAlice(env); // embedded: before the server opens the store
    server = await start(env);
  }, 120_000);

  it('leaked-client-secret.md: the leaked secret is rotated and everything it got ends', async () => {
    const book = new Runbook('leaked-client-secret.md', { ...operatorEnv(server), SINCE: since, CLIENT_ID: 'billing' });
    const created = await admin(server.base, '/admin/clients', { method: 'POST', body: { client_id: 'billing', grant_types: ['client_credentials'], scope: 'api:read' } });
    const leaked = { id: 'billing', secret: created.client_secret as string };
    const stolen = [await accessToken(server.base, leaked, ATTACKER_IP), await accessToken(server.base, leaked, ATTACKER_IP)];
    const own = await accessToken(server.base, leaked);
    const jtis = [...stolen, own].map((t) => decodeJwt(t).jti);
    await auditEvents(server.base, 'client_id=billing&event=token.issued', 3);
    const before = await metrics(server.base);

    const got = rows((await book.run('what-it-got')).stdout);
    expect(got.map((r) => r[1])).toEqual(['token.issued', 'token.issued', 'token.issued']);
    expect(got.map((r) => r[3])).toEqual(jtis);
    expect(got.map((r) => r[2])).toEqual([ATTACKER_IP, ATTACKER_IP, '127.0.0.1']);
    book.set({ SUSPECT_IP: got.find((r) => r[2] !== '127.0.0.1')![2]! });

    expect(rows((await book.run('by-ip')).stdout).map((r) => r.slice(1, 3))).toEqual([['token.issued', 'billing'], ['token.issued', 'billing']]);

    const rotated = JSON.parse((await book.run('rotate-secret')).stdout) as Record<string, unknown>;
    expect(rotated).toMatchObject({ client_id: 'billing', families_revoked: 0, tokens_not_before: expect.any(String) });
    expect(rotated.client_secret).toEqual(expect.any(String));
    expect(rotated.client_secret).not.toBe(leaked.secret);

    book.set({ TOKEN: stolen[0]!, RS_CLIENT_ID: SERVICE.id, RS_CLIENT_SECRET: SERVICE.secret, OLD_SECRET: leaked.secret });
    expect((await book.run('confirm-inactive')).stdout.trim()).toBe('{"active":false}');
    for (const t of [stolen[1]!, own]) expect(await introspect(server.base, t)).toEqual({ active: false });
    expect((await book.run('old-secret-refused')).stdout).toBe('401\n');

    // The owner installs the new secret: its tokens are active — from the cutoff on (the next
    // whole second after the rotation: a token of that same second is refused too, README "Clients").
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(rotated.tokens_not_before as string) - Date.now() + 5)));
    const fresh = await accessToken(server.base, { id: 'billing', secret: rotated.client_secret as string });
    expect(await introspect(server.base, fresh)).toMatchObject({ active: true, client_id: 'billing' });

    const last = JSON.parse((await book.run('last-use')).stdout) as Record<string, unknown>;
    expect(last).toMatchObject({ client_id: 'billing', disabled: false, tokens_not_before: rotated.tokens_not_before });
    // A new deployment has no client unused for 90 days.
    expect((await book.run('stale-clients')).stdout).toBe('');

    // What the alerts read: the failed authentication with the old secret (LatchkeyClientAuthFailureSurge's
    // counter), the cutoff, and the cut tokens' introspection by reason.
    const after = await metrics(server.base);
    const sum = (text: string, name: string, labels: Record<string, string> = {}) => samples(text, name, labels).reduce((n, s) => n + s.value, 0);
    expect(sum(after, 'latchkey_client_auth_failures_total') - sum(before, 'latchkey_client_auth_failures_total')).toBe(1);
    expect(sum(after, 'latchkey_client_token_cutoffs_total')).toBe(1);
    expect(book.unrun()).toEqual([]);
  });

  it('stolen-refresh-token.md: the stolen grant is revoked, the user\'s other grants keep working', async () => {
    const book = new Runbook('stolen-refresh-token.md', { ...operatorEnv(server), SINCE: since });
    const device = from(server.base, USER_IP);
    // Three grants of alice's: A and C on a device the thief copied, B on another device.
    const a = await codeFlow(device, WEB, 'openid offline_access', 'alice', new Browser(device));
    const b = await codeFlow(device, WEB, 'openid offline_access', 'alice', new Browser(device));
    const c = await codeFlow(device, WEB, 'openid offline_access', 'alice', new Browser(device));
    const thief = from(server.base, THIEF_IP);
    const a2 = await refresh(thief, WEB, a.refresh_token!);
    expect(a2.statusCode).toBe(200);
    const c2 = await refresh(thief, WEB, c.refresh_token!);
    expect(c2.statusCode).toBe(200);
    const thiefC = c2.json() as { access_token: string; refresh_token: string };
    // The app on the copied device presents A's token the thief rotated: reuse, A is revoked.
    expect((await refresh(device, WEB, a.refresh_token!)).statusCode).toBe(400);
    const gidOf = (t: string) => decodeJwt(t).gid as string;
    await auditEvents(server.base, 'event=refresh.reuse_detected', 1);

    const reuse = rows((await book.run('reuse-events')).stdout);
    expect(reuse).toEqual([[expect.any(String), WEB.id, aliceSub, gidOf(a.access_token), USER_IP]]);
    book.set({ USER_SUB: reuse[0]![2]! });

    const grants = rows((await book.run('list-grants')).stdout);
    expect(grants).toHaveLength(3);
    const reused = grants.find((g) => g[0] === reuse[0]![3])!;
    expect(reused.slice(1, 3)).toEqual([WEB.id, 'revoked']);
    expect(reused[6]).toBe(THIEF_IP);
    book.set({ ATTACKER_IP: reused[6]! });

    await book.run('find-grant');
    expect(book.env.GRANT_ID).toBe(gidOf(c.access_token));
    expect(JSON.parse((await book.run('revoke-grant')).stdout)).toEqual({ grant_id: gidOf(c.access_token), client_id: WEB.id, sub: aliceSub, revoked: true });

    const states = Object.fromEntries(rows((await book.run('confirm-grants')).stdout).map((g) => [g[0], g[1]]));
    expect(states).toEqual({ [gidOf(a.access_token)]: 'revoked', [gidOf(b.access_token)]: 'active', [gidOf(c.access_token)]: 'revoked' });
    // The thief's copy of C is dead, refresh and access token; B refreshes on.
    expect((await refresh(thief, WEB, thiefC.refresh_token)).statusCode).toBe(400);
    expect(await introspect(server.base, thiefC.access_token)).toEqual({ active: false });
    expect((await refresh(device, WEB, b.refresh_token!)).statusCode).toBe(200);

    const activity = rows((await book.run('attacker-activity')).stdout);
    expect(activity.filter((r) => r[1] === 'refresh.rotated').map((r) => r.slice(2))).toEqual([[WEB.id, aliceSub], [WEB.id, aliceSub]]);
    expect(activity.every((r) => r[3] === aliceSub)).toBe(true);

    // LatchkeyRefreshTokenReuseSpike's counter: the one detection.
    expect(samples(await metrics(server.base), 'latchkey_refresh_reuse_detected_total').reduce((n, s) => n + s.value, 0)).toBe(1);
    expect(book.unrun()).toEqual([]);
  });

  it('compromised-account.md: new password, sessions and grants ended, factors reset', async () => {
    const book = new Runbook('compromised-account.md', { ...operatorEnv(server), SINCE: since, USER_LOGIN: 'carol', NEW_PASSWORD: randomBytes(18).toString('base64') });
    const carol = await admin(server.base, '/admin/users', { method: 'POST', body: { username: 'carol', password: PASSWORD } });
    const own = from(server.base, USER_IP);
    const intruder = from(server.base, INTRUDER_IP);
    await codeFlow(own, WEB, 'openid offline_access', 'carol', new Browser(own));
    const stolen = await codeFlow(intruder, WEB, 'openid offline_access', 'carol', new Browser(intruder));
    await auditEvents(server.base, `sub=${carol.sub}&event=login.succeeded`, 2);

    await book.run('user-sub');
    expect(book.env.USER_SUB).toBe(carol.sub);
    const signIns = rows((await book.run('sign-ins')).stdout);
    expect(signIns.map((r) => [r[1], r[2]])).toEqual([['login.succeeded', USER_IP], ['login.succeeded', INTRUDER_IP]]);
    book.set({ SUSPECT_IP: signIns.find((r) => r[2] !== USER_IP)![2]! });

    const byIp = rows((await book.run('by-ip')).stdout);
    expect(byIp.length).toBeGreaterThan(1);
    expect(byIp.every((r) => r[2] === carol.sub || r[2] === '-')).toBe(true);
    expect(byIp.map((r) => r[1])).toContain('login.succeeded');

    expect(JSON.parse((await book.run('set-password')).stdout)).toEqual({ sub: carol.sub, sessions_ended: 2, families_revoked: 2 });
    expect(JSON.parse((await book.run('reset-mfa')).stdout)).toMatchObject({ sessions_ended: 0 });
    expect((await book.run('list-sessions')).stdout).toBe('0\n');
    expect((await book.run('list-grants')).stdout).toBe('0\n');
    // The intruder's tokens are dead.
    expect((await refresh(intruder, WEB, stolen.refresh_token!)).statusCode).toBe(400);
    expect(await introspect(server.base, stolen.access_token)).toEqual({ active: false });
    expect(book.unrun()).toEqual([]);
  });

  it('slo-burn.md: the failing outcomes and the clients behind them', async () => {
    const book = new Runbook('slo-burn.md', { ...operatorEnv(server), SINCE: since });
    const before = await metrics(server.base);
    for (let i = 0; i < 3; i++) expect((await refresh(from(server.base, USER_IP), WEB, `no-such-token-${i}`)).statusCode).toBe(400);
    for (let i = 0; i < 2; i++) expect((await clientCredentials(server.base, { id: 'nosuch', secret: 'x'.repeat(32) })).status).toBe(401);

    const failing = (await book.run('issued-by-outcome')).stdout;
    const count = (text: string, labels: Record<string, string>) => samples(text, 'latchkey_tokens_issued_total', labels).reduce((n, s) => n + s.value, 0);
    expect(count(failing, { grant_type: 'refresh_token', outcome: 'invalid_grant' }) - count(before, { grant_type: 'refresh_token', outcome: 'invalid_grant' })).toBe(3);
    expect(count(failing, { grant_type: 'client_credentials', outcome: 'invalid_client' }) - count(before, { grant_type: 'client_credentials', outcome: 'invalid_client' })).toBe(2);
    expect(count(failing, { outcome: 'success' })).toBe(0);
    // The token_issuance SLO's error ratio (server_error + temporarily_unavailable over all) is 0: no burn alert.
    expect(count(failing, { outcome: 'server_error' }) + count(failing, { outcome: 'temporarily_unavailable' })).toBe(0);

    const latency = samples((await book.run('token-latency')).stdout, 'latchkey_token_request_duration_seconds_bucket');
    const byGrant = (le: string) => Object.fromEntries(latency.filter((s) => s.labels.le === le).map((s) => [s.labels.grant_type!, s.value])) as Record<string, number>;
    expect(Object.keys(byGrant('+Inf')).sort()).toEqual(Object.keys(byGrant('0.25')).sort());
    for (const [grant, total] of Object.entries(byGrant('+Inf'))) expect(byGrant('0.25')[grant]).toBeLessThanOrEqual(total);
    expect(byGrant('+Inf').client_credentials).toBeGreaterThan(0);

    const intro = (await book.run('introspection')).stdout;
    // The leaked-secret runbook introspected three tokens its cutoff ended.
    expect(samples(intro, 'latchkey_introspections_inactive_total', { reason: 'client_cutoff' }).map((s) => s.value)).toEqual([3]);

    // token.failed.summary rows are written once their minute is over, or at shutdown: stop and
    // start the instance (same store, same address) rather than wait for the minute.
    const totalInvalidGrant = count(failing, { grant_type: 'refresh_token', outcome: 'invalid_grant' });
    await stop(server);
    server = await start(server.env, server.port);
    const failed = rows((await book.run('failed-by-client')).stdout);
    const n = (client: string, grant: string, error: string) => failed.filter((r) => r[0] === client && r[1] === grant && r[2] === error).map((r) => Number(r[3]));
    expect(n(WEB.id, 'refresh_token', 'invalid_grant')).toEqual([totalInvalidGrant]);
    expect(n('nosuch', 'client_credentials', 'invalid_client')).toEqual([2]);
    expect(n('billing', 'client_credentials', 'invalid_client')).toEqual([1]);
    expect(book.unrun()).toEqual([]);
  });

  it('outage.md: the steps on a healthy instance (the database outage itself: next test, PostgreSQL only)', async () => {
    const book = new Runbook('outage.md', operatorEnv(server));
    const ready = (await book.run('readyz')).stdout;
    expect(ready).toMatch(/\nHTTP 200\n$/);
    expect(JSON.parse(ready.split('\n')[0]!)).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok', notifications: 'ok' } });
    expect((await book.run('healthz')).stdout).toBe('{"status":"ok"}\nHTTP 200\n');
    expect((await book.run('probe-database')).stdout).toBe('200 retry-after=\n');
    const errors = (await book.run('error-metrics')).stdout;
    expect(samples(errors, 'latchkey_http_errors_total').filter((s) => s.labels.status?.startsWith('5'))).toEqual([]);
    expect(samples(errors, 'latchkey_audit_events_dropped_total').map((s) => s.value)).toEqual([0]);
    expect(JSON.parse((await book.run('wait-ready')).stdout)).toMatchObject({ status: 'ready' });
    expect(book.unrun()).toEqual([]);
  });
});

describe('outage.md with the database away', { timeout: 120_000 }, () => {
  const canCluster = onPostgres && pgBinDir() !== undefined;
  let cluster: PgCluster | undefined;
  afterAll(async () => { await cluster?.destroy(); });

  it.skipIf(!canCluster)('readyz names the database, 503 with Retry-After, the server errors counted, ready again by itself', async () => {
    cluster = await startCluster();
    const server = await start(deployment({}, cluster.url));
    const book = new Runbook('outage.md', operatorEnv(server));
    await cluster.stop();

    const ready = (await book.run('readyz')).stdout;
    expect(ready).toMatch(/\nHTTP 503\n$/);
    const body = JSON.parse(ready.split('\n')[0]!) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('not_ready');
    expect(body.checks.database).not.toBe('ok');
    expect(body.checks.signing_keys).toBe('ok');
    expect((await book.run('healthz')).stdout).toBe('{"status":"ok"}\nHTTP 200\n');
    expect((await book.run('probe-database')).stdout).toBe('503 retry-after=2\n');
    // LatchkeyServerErrors reads latchkey_http_errors_total{status=~"5.."}: the probe's 503 is there.
    const errors = samples((await book.run('error-metrics')).stdout, 'latchkey_http_errors_total').filter((s) => s.labels.status === '503');
    expect(errors.reduce((n, s) => n + s.value, 0)).toBeGreaterThanOrEqual(1);

    await cluster.start();
    expect(JSON.parse((await book.run('wait-ready', 130_000)).stdout)).toMatchObject({ status: 'ready', checks: { database: 'ok' } });
    expect(book.unrun()).toEqual([]);
  });

  it.skipIf(canCluster)('skipped: the database outage needs a PostgreSQL cluster of the test\'s own', () => {
    console.warn('runbooks: outage.md with the database away runs only with DATABASE_URL and a local PostgreSQL installation (test/support/fault.ts startCluster); its steps ran above on a healthy instance');
  });
});

// One deployment for the key incidents, one after the other: a bad rotation rolled back, then a
// leaked key revoked and KEY_ENCRYPTION_SECRET changed with two restarts.
describe('runbooks for the signing keys', { timeout: 180_000 }, () => {
  let server: Server;
  const oldSecret = 'runbooks-old-key-encryption-secret-0123456789';
  const newSecret = 'runbooks-new-key-encryption-secret-9876543210';
  const svc = { id: SERVICE.id, secret: SERVICE.secret };
  let rolledBack: string;

  beforeAll(async () => {
    server = await start(deployment({ KEY_ENCRYPTION_SECRET: oldSecret }));
  }, 120_000);

  const activeByAlg = async () => Object.fromEntries(samples(await metrics(server.base), 'latchkey_signing_keys', { state: 'active' }).map((s) => [s.labels.alg, s.value]));

  it('bad-key-rotation.md: the previous key signs again, its tokens verify, a later rotation works', async () => {
    const book = new Runbook('bad-key-rotation.md', { ...operatorEnv(server), ALG: 'ES256' });
    const t1 = await accessToken(server.base, svc);
    const k1 = kidOf(t1)!;
    await admin(server.base, '/admin/keys/rotate', { method: 'POST', body: {} }); // the bad rotation
    const t2 = await accessToken(server.base, svc);
    const k2 = kidOf(t2)!;
    expect(k2).not.toBe(k1);

    const listed = Object.fromEntries(rows((await book.run('list-keys')).stdout).map((r) => [r[0], r[2]]));
    expect(listed[k1]).toBe('retired');
    expect(listed[k2]).toBe('active');
    await book.run('find-previous');
    expect(book.env.KID).toBe(k1);
    const transitions = (await book.run('reactivate')).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(transitions).toEqual([{ action: 'retired', kid: k2, alg: 'ES256' }, { action: 'reactivated', kid: k1, alg: 'ES256' }]);
    const published = rows((await book.run('check-jwks')).stdout).map((r) => r[0]);
    expect(published).toEqual(expect.arrayContaining([k1, k2]));

    // LatchkeyNoActiveSigningKey: min by (alg) (latchkey_signing_keys{state="active"}) < 1 is false.
    const active = samples((await book.run('check-metrics')).stdout, 'latchkey_signing_keys', { state: 'active' });
    expect(active.map((s) => [s.labels.alg, s.value])).toEqual([['ES256', 1]]);
    const t3 = await accessToken(server.base, svc);
    expect(kidOf(t3)).toBe(k1);
    for (const t of [t1, t2, t3]) expect(await verifies(server.base, t)).toBe(true);

    const again = (await book.run('rotate-again')).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const activated = again.find((t) => t.action === 'activated')!;
    expect(activated.kid).not.toBe(k1);
    const t4 = await accessToken(server.base, svc);
    expect(kidOf(t4)).toBe(activated.kid);
    for (const t of [t3, t4]) expect(await verifies(server.base, t)).toBe(true);
    rolledBack = k1;
    expect(book.unrun()).toEqual([]);
  });

  it('leaked-signing-key.md: the key is revoked (its tokens fail at once), the secret changed with two restarts, then a rotation', async () => {
    const book = new Runbook('leaked-signing-key.md', { ...operatorEnv(server), ALG: 'ES256' });
    const signed = await accessToken(server.base, svc);
    const leakedKid = kidOf(signed)!;
    expect(await verifies(server.base, signed)).toBe(true);

    expect(rows((await book.run('list-keys')).stdout).filter((r) => r[2] === 'active').map((r) => r[0])).toEqual([leakedKid]);
    await book.run('find-active');
    expect(book.env.KID).toBe(leakedKid);
    const transitions = (await book.run('revoke-key')).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(transitions[0]).toEqual({ action: 'revoked', kid: leakedKid, alg: 'ES256', previous_state: 'active' });
    expect(transitions.map((t) => t.action)).toEqual(['revoked', 'activated', 'created']);

    expect((await book.run('check-jwks')).stdout.split('\n')).not.toContain(leakedKid);
    expect(await verifies(server.base, signed)).toBe(false);
    expect(await introspect(server.base, signed)).toEqual({ active: false });
    const next = await accessToken(server.base, svc);
    expect(kidOf(next)).toBe(transitions[1]!.kid);
    expect(await verifies(server.base, next)).toBe(true);
    // LatchkeySigningKeyRevoked (increase of rotations{trigger="revoke"}) fires; LatchkeyNoActiveSigningKey does not.
    const scraped = (await book.run('check-metrics')).stdout;
    expect(samples(scraped, 'latchkey_signing_key_rotations_total', { trigger: 'revoke' }).map((s) => s.value)).toEqual([1]);
    expect(samples(scraped, 'latchkey_signing_keys', { state: 'active' }).map((s) => [s.labels.alg, s.value])).toEqual([['ES256', 1]]);

    // Step 5: restart with the new secret and the old one as KEY_ENCRYPTION_SECRET_PREVIOUS.
    await stop(server);
    server = await start({ ...server.env, KEY_ENCRYPTION_SECRET: newSecret, KEY_ENCRYPTION_SECRET_PREVIOUS: oldSecret }, server.port);
    const tables = Object.fromEntries(rows((await book.run('re-encrypt')).stdout).map((r) => [r[0], [Number(r[1]), Number(r[2])]]));
    // The keys that keep their private part: the re-activated and the replaced ones (retired), the active and the next.
    const kept = (await admin(server.base, '/admin/keys')).keys.filter((k: { state: string }) => ['next', 'active', 'retired'].includes(k.state)).length;
    expect(kept).toBeGreaterThanOrEqual(3);
    expect(tables.signing_keys).toEqual([kept, kept]);
    expect(tables.totp_factors).toEqual([0, 0]);

    // Step 7: restart without the previous secret: every key opens under the new one alone.
    const { KEY_ENCRYPTION_SECRET_PREVIOUS: _dropped, ...withoutPrevious } = server.env;
    await stop(server);
    server = await start(withoutPrevious, server.port);
    expect(JSON.parse((await book.run('ready-after-restart')).stdout)).toMatchObject({ status: 'ready', checks: { signing_keys: 'ok' } });
    expect(await verifies(server.base, next)).toBe(true);
    expect(await verifies(server.base, signed)).toBe(false);
    expect((await admin(server.base, '/admin/keys')).keys.find((k: { kid: string }) => k.kid === rolledBack)).toBeDefined();

    const rotated = (await book.run('rotate')).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const now = rotated.find((t) => t.action === 'activated')!.kid;
    const last = await accessToken(server.base, svc);
    expect(kidOf(last)).toBe(now);
    expect(await verifies(server.base, last)).toBe(true);
    expect(await activeByAlg()).toEqual({ ES256: 1 });
    expect(book.unrun()).toEqual([]);
  });
});
