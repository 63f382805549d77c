import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS, TestClock } from '../support/clients.js';

describe('client_credentials grant (RFC 6749 §4.4)', () => {
  let app: TestApp;
  const clock = new TestClock();
  let secret: string;
  let auth: string;

  beforeAll(async () => {
    app = await createTestApp({}, { clock });
    const created = await createClient(app.context, {
      grant_types: ['client_credentials'],
      scope: 'invoices:read invoices:write reports',
      default_scope: 'invoices:read',
      resources: ['https://api.example.com', 'https://reports.example.com/v1'],
      client_name: 'Billing',
    }, 'billing');
    secret = created.clientSecret!;
    auth = basic('billing', secret);
    await createClient(app.context, { grant_types: ['authorization_code'], redirect_uris: ['https://app.example.com/cb'] }, 'web-app');
  });
  afterAll(async () => { await app.close(); });

  const token = (params: Record<string, string | string[]>, authorization = auth) => app.server.inject({
    method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization }, payload: form(params),
  });

  it('issues an RFC 9068 access token with no-store headers and no refresh token', async () => {
    const res = await token({ grant_type: 'client_credentials', scope: 'invoices:write' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'invoices:write' });
    const header = decodeProtectedHeader(body.access_token);
    expect(header.typ).toBe('at+jwt');
    expect(header.alg).toBe('ES256');
    expect(header.kid).toBe(app.context.keys.signingKey().kid);
    const claims = decodeJwt(body.access_token);
    const now = Math.floor(clock.now().getTime() / 1000);
    expect(claims).toEqual({
      iss: 'http://localhost:8080', sub: 'billing', aud: 'https://api.example.com', client_id: 'billing',
      scope: 'invoices:write', iat: now, exp: now + 600, jti: expect.any(String),
    });
  });

  it('grants the default scopes when scope is omitted', async () => {
    const res = await token({ grant_type: 'client_credentials' });
    expect(res.json().scope).toBe('invoices:read');
  });

  it('grants all allowed scopes by default when the client registered no default_scope, and none when it has none', async () => {
    const twoScopes = (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'a b' }, 'two-scopes')).clientSecret!;
    expect((await token({ grant_type: 'client_credentials' }, basic('two-scopes', twoScopes))).json().scope).toBe('a b');
    const noScopes = await createClient(app.context, { grant_types: ['client_credentials'] }, 'no-scopes-2');
    const res = await token({ grant_type: 'client_credentials' }, basic('no-scopes-2', noScopes.clientSecret!));
    expect(res.statusCode).toBe(200);
    expect(res.json().scope).toBeUndefined();
    expect(decodeJwt(res.json().access_token).scope).toBeUndefined();
  });

  it('refuses a scope outside the allowed ones with invalid_scope', async () => {
    const res = await token({ grant_type: 'client_credentials', scope: 'invoices:read admin' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'invalid_scope', error_description: 'scope not allowed for this client: admin' });
  });

  it('refuses a malformed scope with invalid_scope', async () => {
    const res = await token({ grant_type: 'client_credentials', scope: 'invoices:read  reports' });
    expect(res.json().error).toBe('invalid_scope');
  });

  it('sets the audience from the resource parameter (RFC 8707)', async () => {
    const res = await token({ grant_type: 'client_credentials', resource: 'https://reports.example.com/v1' });
    expect(decodeJwt(res.json().access_token).aud).toBe('https://reports.example.com/v1');
    const two = await token({ grant_type: 'client_credentials', resource: ['https://reports.example.com/v1', 'https://api.example.com'] });
    expect(decodeJwt(two.json().access_token).aud).toEqual(['https://reports.example.com/v1', 'https://api.example.com']);
  });

  it('refuses an unregistered resource, a relative one and one with a fragment with invalid_target', async () => {
    for (const resource of ['https://other.example.com', '/relative', 'https://api.example.com#frag']) {
      const res = await token({ grant_type: 'client_credentials', resource });
      expect(res.statusCode, resource).toBe(400);
      expect(res.json().error, resource).toBe('invalid_target');
    }
  });

  it('uses the issuer as audience for a client with no registered resources', async () => {
    const created = await createClient(app.context, { grant_types: ['client_credentials'], scope: 'x' }, 'no-resources');
    const res = await token({ grant_type: 'client_credentials' }, basic('no-resources', created.clientSecret!));
    expect(decodeJwt(res.json().access_token).aud).toBe('http://localhost:8080');
  });

  it('answers unsupported_grant_type for a grant it does not serve, and invalid_request without grant_type', async () => {
    const res = await token({ grant_type: 'password', username: 'a', password: 'b' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('unsupported_grant_type');
    expect((await token({})).json().error).toBe('invalid_request');
  });

  it('answers unauthorized_client to a client not registered for client_credentials', async () => {
    const webSecret = (await createClient(app.context, { grant_types: ['authorization_code'], redirect_uris: ['https://a.example.com/cb'] }, 'web-2')).clientSecret!;
    const res = await token({ grant_type: 'client_credentials' }, basic('web-2', webSecret));
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('unauthorized_client');
  });

  it('refuses a repeated parameter with invalid_request (RFC 6749 §3.1)', async () => {
    const res = await token({ grant_type: 'client_credentials', scope: ['invoices:read', 'reports'] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'the scope parameter must not be repeated (RFC 6749 §3.1)' });
  });

  it('refuses a JSON body with invalid_request', async () => {
    const res = await app.server.inject({ method: 'POST', url: '/token', headers: { authorization: auth }, payload: { grant_type: 'client_credentials' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_request');
  });

  it('uses the per-client access token lifetime', async () => {
    const created = await createClient(app.context, { grant_types: ['client_credentials'], access_token_ttl: 60 }, 'short-lived');
    const res = await token({ grant_type: 'client_credentials' }, basic('short-lived', created.clientSecret!));
    expect(res.json().expires_in).toBe(60);
  });

  it('counts issued tokens by grant type and outcome, and records token.issued without the token', async () => {
    const res = await token({ grant_type: 'client_credentials' });
    const metrics = await app.context.metrics.registry.metrics();
    expect(metrics).toMatch(/latchkey_tokens_issued_total\{grant_type="client_credentials",outcome="success"\} \d+/);
    expect(metrics).toMatch(/latchkey_tokens_issued_total\{grant_type="client_credentials",outcome="invalid_scope"\} \d+/);
    expect(metrics).toMatch(/latchkey_tokens_issued_total\{grant_type="unsupported",outcome="unsupported_grant_type"\} 1/);
    expect(metrics).toMatch(/latchkey_token_request_duration_seconds_count\{grant_type="client_credentials"\} \d+/);
    const jti = decodeJwt(res.json().access_token).jti;
    const event = app.logs.lines.find((l) => l.event === 'token.issued' && l.jti === jti);
    expect(event).toMatchObject({ client_id: 'billing', sub: 'billing', scope: 'invoices:read', grant_type: 'client_credentials', ip: '127.0.0.1' });
    expect(event?.request_id).toEqual(expect.any(String));
    expect(app.logs.text()).not.toContain(res.json().access_token);
    expect(app.logs.text()).not.toContain(secret);
  });
});

describe('client_credentials issuance in the durable audit trail (AUDIT_DB_EXCLUDE)', () => {
  const issueAndFind = async (app: TestApp) => {
    const created = await createClient(app.context, { grant_types: ['client_credentials'] }, 'svc');
    const res = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('svc', created.clientSecret!) }, payload: form({ grant_type: 'client_credentials' }),
    });
    expect(res.statusCode).toBe(200);
    const jti = decodeJwt(res.json().access_token).jti!;
    await app.context.audit.flush();
    const rows = await new AuditEventRepository(app.context.store.db).query({ jti });
    const logged = app.logs.lines.filter((l) => l.event === 'token.issued' && l.jti === jti);
    return { rows: rows.map((r) => r.event), logged: logged.length };
  };

  it('by default logs it but keeps it out of audit_events (machine-to-machine volume)', async () => {
    const app = await createTestApp();
    try {
      expect(await issueAndFind(app)).toEqual({ rows: [], logged: 1 });
      // The client's creation, an event of another kind, is stored (and the issuance only in its
      // per-minute token.issued.summary, written once the minute is over: test/integration/audit-summary.test.ts).
      expect((await new AuditEventRepository(app.context.store.db).query({ clientId: 'svc' })).map((r) => r.event).filter((e) => e !== 'token.issued.summary')).toEqual(['client.created']);
    } finally { await app.close(); }
  });

  it('stores it too with AUDIT_DB_EXCLUDE=none', async () => {
    const app = await createTestApp({ AUDIT_DB_EXCLUDE: 'none' });
    try {
      expect(await issueAndFind(app)).toEqual({ rows: ['token.issued'], logged: 1 });
    } finally { await app.close(); }
  });
});
