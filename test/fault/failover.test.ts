import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alive, createAlice, familyViolationsIn, instanceEnv, load, pgBinDir, post, SERVICE, startCluster, startInstance, Tally, until,
  type Instance, type PgCluster,
} from '../support/fault.js';
import { onPostgres } from '../support/store.js';

/**
 * A PostgreSQL failover under load: a primary and its streaming standby, Latchkey given both
 * in one DATABASE_URL with target_session_attrs=read-write; the primary is stopped and the
 * standby promoted. Runs on the PostgreSQL leg of CI, on clusters of its own.
 */
describe.runIf(onPostgres && pgBinDir() !== undefined)('a PostgreSQL failover (primary stopped, standby promoted)', () => {
  let primary: PgCluster;
  let standby: PgCluster;
  let instance: Instance;
  let env: Record<string, string>;

  beforeAll(async () => {
    primary = await startCluster();
    standby = await startCluster({ standbyOf: primary });
    // The standby first: the search must skip it (read-only) and pick the primary.
    const hosts = `127.0.0.1:${standby.port},127.0.0.1:${primary.port}`;
    env = instanceEnv(`postgres://postgres@${hosts}/postgres?target_session_attrs=read-write`);
    instance = await startInstance(env);
    await createAlice(env);
  }, 120_000);

  afterAll(async () => {
    if (instance && alive(instance)) { instance.proc.child.kill('SIGTERM'); await instance.proc.exited; }
    await standby?.destroy();
    await primary?.destroy();
  });

  it('moves to the promoted standby without a restart: no crash, no 500, nothing lost, 503 + Retry-After in between', async () => {
    const tally = new Tally();
    const running = await load(instance, tally);
    await new Promise((r) => setTimeout(r, 1000));
    const before = tally.count((k, o) => k === 'refresh' && o === '200');
    expect(before).toBeGreaterThan(0);

    const failedAt = performance.now();
    await primary.stop();
    await standby.promote();
    const promotedMs = Math.round(performance.now() - failedAt);
    const promoted = performance.now();
    const refreshed = tally.count((k, o) => k === 'refresh' && o === '200');
    const [readyMs, refreshMs] = await Promise.all([
      until(async () => (await fetch(`${instance.base}/readyz`)).status === 200),
      until(async () => tally.count((k, o) => k === 'refresh' && o === '200') > refreshed),
    ]);
    await new Promise((r) => setTimeout(r, 1000));
    await running.stop();
    console.log(`fault figures:\n  failover: primary stopped and standby promoted in ${promotedMs} ms; after it: /readyz 200 in ${readyMs} ms, first refresh rotation in ${refreshMs} ms (${Math.round(performance.now() - promoted)} ms total observed); answers: ${tally}`);

    expect(alive(instance), instance.proc.stderr()).toBe(true);
    expect(tally.unexpected).toEqual([]);
    expect(tally.count((_, o) => o === '500' || o === 'lost')).toBe(0);
    expect(tally.count((k, o) => k === 'refresh' && o === '200')).toBeGreaterThan(refreshed);
    expect(await familyViolationsIn({ DATABASE_URL: standby.url })).toEqual([]);
    // The log says where new connections went.
    expect(instance.proc.stdout()).toContain('"msg":"database: new connections go to another host"');
  }, 120_000);

  it('writes and NOTIFY work on the new primary: a client credentials token revoked, then inactive', async () => {
    const { access_token: token } = await (await post(instance.base, '/token', SERVICE, { grant_type: 'client_credentials', scope: 'api:read' })).json() as { access_token: string };
    expect((await post(instance.base, '/revoke', SERVICE, { token })).status).toBe(200);
    expect(await (await post(instance.base, '/introspect', SERVICE, { token })).json()).toEqual({ active: false });
  });
});
