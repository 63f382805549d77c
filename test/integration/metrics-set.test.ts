import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '../../src/users/user-store.js';
import { createPasswordHasher } from '../../src/users/passwords.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import { onPostgres } from '../support/store.js';

const PASSWORD = 'correct horse battery staple';

async function metricLines(app: TestApp): Promise<string[]> {
  return (await app.context.metrics.registry.metrics()).split('\n');
}

/** The value of one series, e.g. `latchkey_logins_total{outcome="success"}`; undefined when absent. */
async function sample(app: TestApp, series: string): Promise<number | undefined> {
  const line = (await metricLines(app)).find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics of sign-in, introspection, revocation and the database', () => {
  let app: TestApp;
  let secret: string;
  const clock = new ManualClock(new Date());
  beforeAll(async () => {
    app = await createTestApp({ ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' }, { clock });
    const hasher = await createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1, minLength: 12 });
    await new UserRepository(app.context.store.db).create({ username: 'alice', password_hash: await hasher.hash(PASSWORD) }, clock.now());
    secret = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'svc')).clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  async function signIn(password: string): Promise<number> {
    const page = await app.server.inject({ method: 'GET', url: '/login' });
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const cookie = (page.cookies as Array<{ name: string; value: string }>).map((c) => `${c.name}=${c.value}`).join('; ');
    const res = await app.server.inject({
      method: 'POST', url: '/login', headers: { ...FORM_HEADERS, cookie }, payload: form({ csrf, login: 'alice', password }),
    });
    return res.statusCode;
  }

  it('counts sign-ins by outcome: success, failure, throttled', async () => {
    expect(await signIn(PASSWORD)).toBe(303);
    // Five free failures for an account, the sixth starts the delay, the seventh is throttled.
    for (let i = 0; i < 6; i++) expect(await signIn('wrong password!')).toBe(401);
    expect(await signIn(PASSWORD)).toBe(429);
    const lines = await metricLines(app);
    expect(lines).toContain('latchkey_logins_total{outcome="success"} 1');
    expect(lines).toContain('latchkey_logins_total{outcome="failure"} 6');
    expect(lines).toContain('latchkey_logins_total{outcome="throttled"} 1');
  });

  it('observes the latency of every introspection, and counts revocations by kind', async () => {
    const token = (await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('svc', secret) }, payload: form({ grant_type: 'client_credentials' }),
    })).json().access_token as string;
    const introspect = (authorization: string) => app.server.inject({
      method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization }, payload: form({ token }),
    });
    expect((await introspect(basic('svc', secret))).json().active).toBe(true);
    expect((await introspect(basic('svc', 'wrong'))).statusCode).toBe(401);
    expect(await sample(app, 'latchkey_introspection_duration_seconds_count')).toBe(2);
    expect(await sample(app, 'latchkey_introspection_duration_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(await sample(app, 'latchkey_introspections_total{result="active",format="json"}')).toBe(1);

    const revoke = await app.server.inject({
      method: 'POST', url: '/revoke', headers: { ...FORM_HEADERS, authorization: basic('svc', secret) }, payload: form({ token }),
    });
    expect(revoke.statusCode).toBe(200);
    expect(await metricLines(app)).toContain('latchkey_revocations_total{kind="access_token"} 1');
  });

  it('times database queries by operation', async () => {
    const before = await sample(app, 'latchkey_db_query_duration_seconds_count{operation="delete"}') ?? 0;
    await app.context.store.db.deleteFrom('revoked_access_tokens').where('jti', '=', 'no-such-jti').execute();
    expect(await sample(app, 'latchkey_db_query_duration_seconds_count{operation="delete"}')).toBe(before + 1);
    expect(await sample(app, 'latchkey_db_query_duration_seconds_count{operation="select"}')).toBeGreaterThan(0);
  });

  it.runIf(onPostgres)('reports the PostgreSQL pool: connections, idle connections, waiting requests', async () => {
    const total = await sample(app, 'latchkey_db_pool_connections');
    const idle = await sample(app, 'latchkey_db_pool_idle_connections');
    expect(total).toBeGreaterThanOrEqual(1);
    expect(total).toBeLessThanOrEqual(5); // the test store's pool max
    expect(idle).toBeLessThanOrEqual(total!);
    expect(await sample(app, 'latchkey_db_pool_waiting_requests')).toBe(0);
  });

  it.runIf(!onPostgres)('has no pool gauges on the embedded store (one connection, no pool)', async () => {
    expect((await metricLines(app)).some((l) => l.startsWith('latchkey_db_pool_'))).toBe(false);
  });

  it('labels token issuance by grant and outcome only, by default', async () => {
    expect(await metricLines(app)).toContain('latchkey_tokens_issued_total{grant_type="client_credentials",outcome="success"} 1');
  });
});

describe('METRICS_PER_CLIENT', () => {
  let app: TestApp;
  let secret: string;
  beforeAll(async () => {
    app = await createTestApp({ METRICS_PER_CLIENT: 'true' });
    secret = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'billing')).clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  it('adds the authenticated client_id to token issuance, and - for every failure', async () => {
    const token = (authorization: string) => app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization }, payload: form({ grant_type: 'client_credentials' }),
    });
    expect((await token(basic('billing', secret))).statusCode).toBe(200);
    expect((await token(basic('billing', 'wrong'))).statusCode).toBe(401);
    expect((await token(basic('attacker-chosen-id', 'x'))).statusCode).toBe(401);
    const lines = await metricLines(app);
    expect(lines).toContain('latchkey_tokens_issued_total{grant_type="client_credentials",outcome="success",client_id="billing"} 1');
    expect(lines).toContain('latchkey_tokens_issued_total{grant_type="client_credentials",outcome="invalid_client",client_id="-"} 2');
    expect(lines.some((l) => l.includes('attacker-chosen-id'))).toBe(false);
  });

  it('adds the asking client_id to introspections: who introspects how much, and who is refused', async () => {
    const gateway = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'gateway')).clientSecret!;
    const token = (await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('billing', secret) }, payload: form({ grant_type: 'client_credentials' }),
    })).json().access_token as string;
    const introspect = (authorization: string) => app.server.inject({ method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization }, payload: form({ token }) });
    expect((await introspect(basic('billing', secret))).json().active).toBe(true);
    expect((await introspect(basic('gateway', gateway))).json()).toEqual({ active: false });
    const lines = await metricLines(app);
    expect(lines).toContain('latchkey_introspections_total{result="active",format="json",client_id="billing"} 1');
    expect(lines).toContain('latchkey_introspections_total{result="refused",format="json",client_id="gateway"} 1');
  });
});
