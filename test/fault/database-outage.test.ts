import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, csrfOf } from '../support/browser.js';
import {
  alive, createAlice, familyViolationsIn, instanceEnv, load, overHttp, pgBinDir, post, SERVICE, startCluster, startInstance,
  Tally, unavailableProblem, until, WEB, type Instance, type PgCluster,
} from '../support/fault.js';
import { codeFlow } from '../support/refresh.js';
import { onPostgres } from '../support/store.js';

/**
 * PostgreSQL restarted and stopped under load, with two real instances on it: no crash, no
 * 500, no request without an answer; 503 + Retry-After while the database is away; full
 * recovery (readiness, writes, NOTIFY between the instances) once it is back. Runs on the
 * PostgreSQL leg of CI, on a cluster of its own.
 */
describe.runIf(onPostgres && pgBinDir() !== undefined)('a PostgreSQL restart or outage under load', () => {
  let cluster: PgCluster;
  let a: Instance;
  let b: Instance;
  const figures: string[] = [];

  beforeAll(async () => {
    cluster = await startCluster();
    const env = instanceEnv(cluster.url);
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    await createAlice(env);
  }, 120_000);

  afterAll(async () => {
    for (const i of [a, b]) { if (i && alive(i)) { i.proc.child.kill('SIGTERM'); await i.proc.exited; } }
    await cluster?.destroy();
    if (figures.length > 0) console.log(`fault figures:\n  ${figures.join('\n  ')}`);
  });

  const ready = async (i: Instance) => (await fetch(`${i.base}/readyz`)).status === 200;

  const familyViolations = () => familyViolationsIn({ DATABASE_URL: cluster.url });


  it('survives `pg_ctl restart -m fast` under load: no crash, no 500, nothing lost, ready again within a second', async () => {
    const tally = new Tally();
    const running = await load(a, tally);
    await new Promise((r) => setTimeout(r, 1500));
    const restartStarted = performance.now();
    await cluster.restart();
    const back = performance.now();
    // The database is back: how long until this instance is ready and a refresh (a write) succeeds.
    const [readyMs, writeMs] = await Promise.all([
      until(() => ready(a)),
      until(async () => (await post(a.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })).status === 200 &&
        tally.count((k, o) => k === 'refresh' && o === '200') > 0),
    ]);
    const refreshesBefore = tally.count((k, o) => k === 'refresh' && o === '200');
    await until(async () => tally.count((k, o) => k === 'refresh' && o === '200') > refreshesBefore);
    const firstRefreshMs = Math.round(performance.now() - back);
    await new Promise((r) => setTimeout(r, 1000));
    await running.stop();
    figures.push(`restart: pg_ctl restart took ${Math.round(back - restartStarted)} ms; after it: /readyz 200 in ${readyMs} ms, first refresh rotation in ≤ ${Math.max(firstRefreshMs, writeMs)} ms; answers: ${tally}`);

    expect(alive(a) && alive(b), a.proc.stderr() + b.proc.stderr()).toBe(true);
    expect(tally.unexpected).toEqual([]);
    expect(tally.count((_, o) => o === '500' || o === 'lost')).toBe(0);
    expect(tally.count((k, o) => k === 'refresh' && o === '200')).toBeGreaterThan(0);
    expect(await familyViolations()).toEqual([]);
  }, 90_000);

  it('answers 503 + Retry-After (JSON for clients, HTML for browsers) while PostgreSQL is stopped, and recovers without a restart', async () => {
    // A browser on the sign-in page before the outage, to post the form during it.
    const browser = new Browser(overHttp(a.base));
    const csrf = csrfOf((await browser.request('GET', '/login')).body);
    const { refresh_token: refreshToken } = await codeFlow(overHttp(a.base), WEB, 'openid offline_access');
    const { access_token: accessToken } = await (await post(a.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })).json() as { access_token: string };

    const tally = new Tally();
    const running = await load(a, tally);
    await new Promise((r) => setTimeout(r, 500));
    await cluster.stop();
    try {
      // Refresh needs the database: 503 with Retry-After and temporarily_unavailable.
      const refresh = await post(a.base, '/token', WEB, { grant_type: 'refresh_token', refresh_token: refreshToken! });
      expect(refresh.status).toBe(503);
      expect(await unavailableProblem(refresh)).toBeUndefined();
      // A browser posting the sign-in form gets a page, not JSON.
      const signIn = await fetch(`${a.base}/login`, {
        method: 'POST',
        headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'content-type': 'application/x-www-form-urlencoded', cookie: browser.header() },
        body: new URLSearchParams({ csrf, login: 'alice', password: 'whatever it is', return_to: '/' }).toString(),
      });
      expect(signIn.status).toBe(503);
      expect(signIn.headers.get('retry-after')).toBe('2');
      expect(signIn.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await signIn.text()).toContain('Temporarily unavailable');
      // What needs no database keeps working: stateless access tokens and their introspection.
      expect((await post(a.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })).status).toBe(200);
      const introspection = await post(a.base, '/introspect', SERVICE, { token: accessToken });
      expect(await introspection.json()).toMatchObject({ active: true, client_id: SERVICE.id });
      // Not ready, naming the database.
      const readyz = await fetch(`${a.base}/readyz`);
      expect(readyz.status).toBe(503);
      expect(await readyz.json()).toMatchObject({ status: 'not_ready', checks: { database: 'failed' } });
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await cluster.start();
    }
    const back = performance.now();
    const readyMs = await until(() => ready(a));
    const refreshMs = await until(async () => (await post(a.base, '/token', WEB, { grant_type: 'refresh_token', refresh_token: refreshToken! })).status === 200);
    const loopRefreshes = tally.count((k, o) => k === 'refresh' && o === '200');
    await until(async () => tally.count((k, o) => k === 'refresh' && o === '200') > loopRefreshes);
    await running.stop();
    figures.push(`outage: after start: /readyz 200 in ${readyMs} ms, first refresh 200 in ${Math.round(performance.now() - back)} ms (direct probe ${refreshMs} ms); answers: ${tally}`);

    expect(alive(a) && alive(b), a.proc.stderr() + b.proc.stderr()).toBe(true);
    expect(tally.unexpected).toEqual([]);
    expect(tally.count((_, o) => o === '500' || o === 'lost')).toBe(0);
    // While it was down, refresh rotations were answered 503 (the loops ran throughout).
    expect(tally.count((k, o) => k === 'refresh' && o === '503')).toBeGreaterThan(0);
    expect(await ready(b)).toBe(true);
    expect(await familyViolations()).toEqual([]);
  }, 90_000);

  it('hears the other instance again after the outage: a revocation at one is seen by the other through NOTIFY', async () => {
    // Both instances reconnected their LISTEN connection (readiness says so) ...
    expect(await until(() => ready(b))).toBeLessThan(30_000);
    const { access_token: token } = await (await post(a.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })).json() as { access_token: string };
    expect(await (await post(b.base, '/introspect', SERVICE, { token })).json()).toMatchObject({ active: true });
    // ... so a revocation at A reaches B well before its periodic reload (30 s).
    expect((await post(a.base, '/revoke', SERVICE, { token })).status).toBe(200);
    const seenMs = await until(async () => ((await (await post(b.base, '/introspect', SERVICE, { token })).json()) as { active: boolean }).active === false, 10_000);
    figures.push(`notify: a revocation at A seen at B after ${seenMs} ms`);
    // The periodic reload could only have done it by chance (once in 30 s); NOTIFY does it at once.
    expect(seenMs).toBeLessThan(2_000);
  }, 60_000);
});
