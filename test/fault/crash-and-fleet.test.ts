import { afterAll, describe, expect, it } from 'vitest';
import {
  alive, createAlice, familyViolationsIn, instanceEnv, overHttp, post, SERVICE, startInstance, WEB, type Instance,
} from '../support/fault.js';
import { codeFlow } from '../support/refresh.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

/**
 * Real processes killed with SIGKILL under refresh rotation load, and several started at the
 * same moment on one database. On the embedded store and, in CI's second leg, on PostgreSQL
 * (a schema of its own on DATABASE_URL).
 */
describe('kill -9 and a fleet starting at once', () => {
  const schemas: string[] = [];
  const running: Instance[] = [];
  const figures: string[] = [];
  afterAll(async () => {
    for (const i of running) if (alive(i)) { i.proc.child.kill('SIGKILL'); await i.proc.exited; }
    if (onPostgres) for (const s of schemas) await dropSchema(s);
    if (figures.length > 0) console.log(`fault figures:\n  ${figures.join('\n  ')}`);
  });

  function storeEnv(extra: Record<string, string> = {}): Record<string, string> {
    if (!onPostgres) return instanceEnv(undefined, extra);
    const schema = uniqueSchema();
    schemas.push(schema);
    return instanceEnv(process.env.DATABASE_URL!, { DATABASE_SCHEMA: schema, ...extra });
  }

  async function start(env: Record<string, string>): Promise<Instance> {
    const instance = await startInstance(env);
    running.push(instance);
    return instance;
  }

  const jwks = async (i: Instance) => ((await (await fetch(`${i.base}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();

  it('kill -9 under refresh rotation load, twice: every acknowledged rotation survives, no family is left inconsistent, keys are kept', async () => {
    const env = storeEnv();
    // The embedded store is one process's: the user first, then the server.
    await createAlice(env);
    let instance = await start(env);
    const kids = await jwks(instance);
    const tokens = await Promise.all([0, 1, 2, 3, 4, 5].map(async () => (await codeFlow(overHttp(instance.base), WEB, 'openid offline_access')).refresh_token!));

    for (let round = 1; round <= 2; round++) {
      // Six clients rotating their own family as fast as they can; each keeps the last token it was given (acknowledged).
      let stopping = false;
      let rotations = 0;
      const loops = tokens.map(async (_, n) => {
        while (!stopping) {
          try {
            const res = await post(instance.base, '/token', WEB, { grant_type: 'refresh_token', refresh_token: tokens[n]! });
            if (res.status !== 200) throw new Error(`refresh answered ${res.status}: ${await res.text()}`);
            tokens[n] = ((await res.json()) as { refresh_token: string }).refresh_token;
            rotations++;
          } catch (err) {
            if (!stopping) throw err;
          }
        }
      });
      await new Promise((r) => setTimeout(r, 1500));
      stopping = true;
      instance.proc.child.kill('SIGKILL');
      await Promise.all(loops);
      expect(await instance.proc.exited).toBe(null);

      const spawned = performance.now();
      instance = await start(env);
      const readyMs = Math.round(performance.now() - spawned);
      figures.push(`kill -9 round ${round} (${onPostgres ? 'postgres' : 'embedded'}): ${rotations} rotations acknowledged before it; process spawn → /readyz 200 in ${readyMs} ms (under tsx, compiling included)`);

      // The keys are the same keys (tokens issued before the crash still verify).
      expect(await jwks(instance)).toEqual(kids);
      // Every client's last acknowledged token still rotates: its rotation was durable (or, when
      // the crash took the answer of a later one, the grace window hands out that successor).
      for (let n = 0; n < tokens.length; n++) {
        const res = await post(instance.base, '/token', WEB, { grant_type: 'refresh_token', refresh_token: tokens[n]! });
        expect(res.status, await res.clone().text()).toBe(200);
        tokens[n] = ((await res.json()) as { refresh_token: string }).refresh_token;
      }
    }
    instance.proc.child.kill('SIGTERM');
    expect(await instance.proc.exited).toBe(0);
    expect(await familyViolationsIn(env)).toEqual([]);
  }, 180_000);

  it.runIf(onPostgres)('three instances started at the same moment on one new database: migrated once, one key, each sees the others\' tokens and revocations', async () => {
    const env = storeEnv({ LOG_LEVEL: 'info', ADMIN_TOKENS: 'fleet-admin-token-0123456789abcdef0123456789' });
    const fleet = await Promise.all([start(env), start(env), start(env)]);
    const migratedBy = fleet.filter((i) => i.proc.stdout().includes('"msg":"database migrated"'));
    expect(migratedBy).toHaveLength(1);
    const keySets = await Promise.all(fleet.map(jwks));
    // One key pair was created, not one per instance: the active key and the next one, published ahead.
    expect(keySets[0]).toHaveLength(2);
    expect(keySets[1]).toEqual(keySets[0]);
    expect(keySets[2]).toEqual(keySets[0]);

    // A client registered at one instance is served by the others at once.
    const created = await fetch(`${fleet[0]!.base}/admin/clients`, {
      method: 'POST', headers: { authorization: 'Bearer fleet-admin-token-0123456789abcdef0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'fleet', grant_types: ['client_credentials'], scope: 'api:read' }),
    });
    expect(created.status).toBe(201);
    const { client_id: id, client_secret: secret } = await created.json() as { client_id: string; client_secret: string };
    const issued = await post(fleet[1]!.base, '/token', { id, secret }, { grant_type: 'client_credentials', scope: 'api:read' });
    expect(issued.status).toBe(200);
    const { access_token: token } = await issued.json() as { access_token: string };

    // A token from one is active at another, and a revocation at a third is seen by both.
    expect(await (await post(fleet[2]!.base, '/introspect', SERVICE, { token })).json()).toMatchObject({ active: true, client_id: id });
    expect((await post(fleet[2]!.base, '/revoke', { id, secret }, { token })).status).toBe(200);
    for (const other of [fleet[0]!, fleet[1]!]) {
      await expect.poll(async () => ((await (await post(other.base, '/introspect', SERVICE, { token })).json()) as { active: boolean }).active, { timeout: 2_000 }).toBe(false);
    }
  }, 120_000);
});
