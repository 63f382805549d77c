import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser, csrfOf } from '../support/browser.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { authorizeQuery, createUser, FAST_ARGON2, PASSWORD, pkce } from '../support/oidc.js';
import { codeFlow, REDIRECT, type TestClient } from '../support/refresh.js';
import { openTestStore } from '../support/store.js';

/** Makes every query fail with `failure()` while `down` — what the pg driver throws when the database is away. */
class FaultSwitch implements KyselyPlugin {
  failure: (() => Error) | undefined;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (this.failure) throw this.failure();
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

/** What pg, pg-pool and Node raise when the database cannot answer (src/platform/db/unavailable.ts). */
const FAILURES: Array<[string, () => Error]> = [
  ['connection refused (several addresses)', () => Object.assign(new AggregateError([Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })], ''), { code: 'ECONNREFUSED' })],
  ['administrator shutdown (57P01)', () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })],
  ['connection terminated', () => new Error('Connection terminated unexpectedly')],
  ['pool connect timeout', () => new Error('timeout exceeded when trying to connect')],
  ['starting up (57P03)', () => Object.assign(new Error('the database system is starting up'), { code: '57P03' })],
  ['disk full (53100)', () => Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' })],
  ['read-only standby after failover (25006)', () => Object.assign(new Error('cannot execute UPDATE in a read-only transaction'), { code: '25006' })],
];

const ADMIN = 'admin-token-0123456789abcdef0123456789abcdef';
const INITIAL = 'initial-access-token-0123456789abcdef012345';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('requests while the database cannot answer: 503 with Retry-After, never 500', () => {
  let app: TestApp;
  const fault = new FaultSwitch();
  let web: TestClient;
  let refreshToken: string;
  let accessToken: string;
  let browser: Browser;
  let csrf: string;

  beforeAll(async () => {
    const store = await openTestStore();
    app = await createTestApp({ ...FAST_ARGON2, ADMIN_TOKENS: ADMIN, INITIAL_ACCESS_TOKEN: INITIAL }, { store: { ...store, db: store.db.withPlugin(fault) } });
    const w = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' });
    web = { id: w.client.clientId, secret: w.clientSecret! };
    await createUser(app.context, 'alice');
    ({ refresh_token: refreshToken, access_token: accessToken } = await codeFlow(app, web, 'openid offline_access') as { refresh_token: string; access_token: string });
    browser = new Browser(app);
    csrf = csrfOf((await browser.request('GET', '/login')).body);
    afterAll(async () => { fault.failure = undefined; await app.close(); await store.close(); });
  });

  const clientRequest = (url: string, params: Record<string, string>) => app.server.inject({
    method: 'POST', url, headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) }, payload: form(params),
  });

  describe.each(FAILURES)('%s', (_, failure) => {
    beforeAll(() => { fault.failure = failure; });
    afterAll(() => { fault.failure = undefined; });

    it.each([
      ['refresh_token grant', () => clientRequest('/token', { grant_type: 'refresh_token', refresh_token: refreshToken })],
      ['authorization_code grant', () => clientRequest('/token', { grant_type: 'authorization_code', code: 'c'.repeat(43), redirect_uri: REDIRECT, code_verifier: pkce().verifier })],
      ['introspection of a user\'s access token (is the user still active?)', () => clientRequest('/introspect', { token: accessToken })],
      ['revocation of a refresh token', () => clientRequest('/revoke', { token: refreshToken })],
      ['userinfo', () => app.server.inject({ method: 'GET', url: '/userinfo', headers: { authorization: `Bearer ${accessToken}` } })],
      ['the admin API', () => app.server.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: `Bearer ${ADMIN}` } })],
      ['dynamic registration', () => app.server.inject({
        method: 'POST', url: '/register', headers: { 'content-type': 'application/json', authorization: `Bearer ${INITIAL}` }, payload: { redirect_uris: [REDIRECT] },
      })],
    ])('%s: 503 temporarily_unavailable (JSON) with Retry-After', async (_name, send) => {
      const res = await send();
      expect(res.statusCode, res.body).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; retry shortly' });
    });

    it.each([
      ['posting the sign-in form', () => app.server.inject({
        method: 'POST', url: '/login', headers: { ...FORM_HEADERS, accept: BROWSER_ACCEPT, cookie: browser.header() },
        payload: form({ csrf, login: 'alice', password: PASSWORD, return_to: '/' }),
      })],
      ['an authorization request of a client not in memory', () => app.server.inject({
        method: 'GET', headers: { accept: BROWSER_ACCEPT },
        url: `/authorize?${authorizeQuery({ response_type: 'code', client_id: 'not-cached-client', redirect_uri: REDIRECT, scope: 'openid', code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`,
      })],
    ])('%s from a browser: a 503 page with Retry-After', async (_name, send) => {
      const res = await send();
      expect(res.statusCode, res.body).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('<h1>Temporarily unavailable</h1>');
    });

    it('readiness says 503 naming the database; liveness stays 200', async () => {
      const ready = await app.server.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not_ready', checks: { database: 'failed' } });
      expect((await app.server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    });
  });

  it('logged the outage as warnings without a stack, never as a failed request', () => {
    const lines = app.logs.lines;
    expect(lines.filter((l) => l.msg === 'request failed')).toEqual([]);
    const warnings = lines.filter((l) => l.msg === 'database unavailable; answered 503');
    expect(warnings.length).toBe(FAILURES.length * 9);
    expect(warnings.every((l) => l.level === 40 && l.err === undefined)).toBe(true);
  });

  it('counts the token endpoint\'s 503s as temporarily_unavailable, not server_error', async () => {
    const values = (await app.context.metrics.registry.getSingleMetric('latchkey_tokens_issued_total')!.get()).values;
    const of = (outcome: string) => values.filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
    expect(of('temporarily_unavailable')).toBe(FAILURES.length * 2);
    expect(of('server_error')).toBe(0);
  });

  it('serves again as soon as the database answers: the refresh token it could not rotate rotates now', async () => {
    fault.failure = undefined;
    const res = await clientRequest('/token', { grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(res.statusCode, res.body).toBe(200);
    expect((await app.server.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});
