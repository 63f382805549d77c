import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, consentForm, csrfOf } from '../support/browser.js';
import { ManualClock } from '../support/clock.js';
import { createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { onPostgres, openTestStore } from '../support/store.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const N = 20;
const ROUNDS = 3;

/**
 * One device code polled many times at once (RFC 8628 §3.5 answered by one locked UPDATE per
 * poll, src/capabilities/device-authorization/device-store.ts): on the embedded store and, with
 * DATABASE_URL, on PostgreSQL where the polls run side by side on a pool of connections.
 */
describe(`parallel polls of one device code (${onPostgres ? 'PostgreSQL' : 'embedded'})`, () => {
  let app: TestApp;
  let store: Awaited<ReturnType<typeof openTestStore>>;
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  beforeAll(async () => {
    store = await openTestStore();
    // One person approves every round's device: their code entries must not run out (DEVICE_USER_CODE_ATTEMPTS).
    app = await createTestApp({ ...FAST_ARGON2, DEVICE_USER_CODE_ATTEMPTS: '1000' }, { store, clock });
    await createClient(app.context, {
      client_name: 'TV app', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], scope: 'openid offline_access',
    }, 'tv');
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); await store.close(); });

  const post = (body: Record<string, string>, url = '/token') => app.server.inject({ method: 'POST', url, headers: FORM_HEADERS, payload: form(body) });
  const start = async () => (await post({ client_id: 'tv', scope: 'openid offline_access' }, '/device_authorization')).json() as { device_code: string; user_code: string };
  const poll = (deviceCode: string) => post({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' });
  const approve = async (userCode: string) => {
    const b = new Browser(app);
    await b.signIn('alice', PASSWORD);
    const page = await b.request('GET', '/device');
    const consent = await b.request('POST', '/device', { csrf: csrfOf(page.body), user_code: userCode });
    const done = await b.request('POST', '/device/decision', { ...consentForm(consent.body, 'allow'), user_code: userCode });
    expect(done.statusCode).toBe(200);
  };
  const outcomes = (responses: Array<{ statusCode: number; json(): any }>) => {
    const counts: Record<string, number> = {};
    for (const r of responses) {
      const key = r.statusCode === 200 ? '200' : `${r.statusCode} ${r.json().error}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  };

  it(`after approval, ${N} polls at once (${ROUNDS} rounds): exactly one gets the tokens, one refresh family`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const d = await start();
      await approve(d.user_code);
      const answers = await Promise.all(Array.from({ length: N }, () => poll(d.device_code)));
      expect(outcomes(answers)).toEqual({ 200: 1, '400 invalid_grant': N - 1 });
      const row = await app.context.store.db.selectFrom('device_authorizations').select(['status', 'grant_id'])
        .where('user_code', '=', d.user_code.replace('-', '')).executeTakeFirstOrThrow();
      expect(row.status).toBe('redeemed');
      expect(await app.context.store.db.selectFrom('refresh_families').select('id').where('id', '=', row.grant_id!).execute()).toHaveLength(1);
      clock.advance(60);
    }
  });

  it(`before approval, ${N} polls at the same instant: one authorization_pending, ${N - 1} slow_down, and every one of them added its 5 s`, async () => {
    const d = await start();
    const answers = await Promise.all(Array.from({ length: N }, () => poll(d.device_code)));
    expect(outcomes(answers)).toEqual({ '400 authorization_pending': 1, '400 slow_down': N - 1 });
    // The pacing is this instance's (PollPacer): the next poll, still too soon, names the grown interval.
    const next = await poll(d.device_code);
    expect(next.json()).toEqual({ error: 'slow_down', error_description: `polling too fast: wait at least ${5 + 5 * N} seconds between requests` });
  });

  it.runIf(onPostgres)('polls queued behind a lock on the row (another instance\'s poll in flight): still exactly one 200', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const d = await start();
      await approve(d.user_code);
      const holder = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await holder.connect();
      try {
        await holder.query(`set search_path to "${store.schema}"`);
        await holder.query('begin');
        await holder.query('select 1 from device_authorizations where user_code = $1 for update', [d.user_code.replace('-', '')]);
        const pending = Array.from({ length: 4 }, () => poll(d.device_code));
        // Let the polls reach the row and wait on its lock, then release it: they proceed together.
        await new Promise((r) => setTimeout(r, 300));
        await holder.query('commit');
        expect(outcomes(await Promise.all(pending))).toEqual({ 200: 1, '400 invalid_grant': 3 });
      } finally {
        await holder.end();
      }
    }
  });
});
