import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, eventually, form, FORM_HEADERS } from '../support/clients.js';
import { codeFlow, REDIRECT, type TestClient } from '../support/refresh.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';

const GT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const B_API = 'https://b.example.com';
const C_API = 'https://c.example.com';
const D_API = 'https://d.example.com';

describe('token exchange (RFC 8693)', () => {
  let app: TestApp;
  const clock = new ManualClock();
  /** The web app alice signs in to: its tokens are for B's API. */
  let web: TestClient;
  /** B serves B_API and calls C_API; C serves C_API and calls D_API. */
  let b: TestClient;
  let c: TestClient;
  /** Registered for the grant, but sent nothing. */
  let stranger: TestClient;
  let impersonator: TestClient;
  let anySubject: TestClient;
  let noGrant: TestClient;

  const secretOf = async (id: string, metadata: Record<string, unknown>): Promise<TestClient> =>
    ({ id, secret: (await createClient(app.context, metadata, id)).clientSecret! });

  beforeAll(async () => {
    // A depth of 2: the chain web→B→C is as long as a chain may be.
    app = await createTestApp({ ...FAST_ARGON2, TOKEN_EXCHANGE_MAX_DELEGATION_DEPTH: '2' }, { clock });
    web = await secretOf('web', {
      redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read write', resources: [B_API],
    });
    b = await secretOf('b', {
      grant_types: [GT, 'client_credentials'], scope: 'read write', served_resources: [B_API], resources: [C_API],
      token_exchange: { audiences: ['ledger'] },
    });
    c = await secretOf('c', { grant_types: [GT], scope: 'read', served_resources: [C_API], resources: [D_API] });
    stranger = await secretOf('stranger', { grant_types: [GT], scope: 'read write', resources: [D_API] });
    impersonator = await secretOf('impersonator', {
      grant_types: [GT], scope: 'read write', resources: [D_API], token_exchange: { mode: 'impersonation', any_subject: true },
    });
    anySubject = await secretOf('any', { grant_types: [GT], scope: 'read', resources: [D_API], token_exchange: { any_subject: true } });
    noGrant = await secretOf('no-grant', { grant_types: ['client_credentials'], scope: 'read' });
    await createUser(app.context, 'alice');
  });
  afterAll(async () => { await app.close(); });

  const post = (url: string, client: TestClient, params: Record<string, string | string[]>) => app.server.inject({
    method: 'POST', url, headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret!) }, payload: form(params),
  });
  const exchange = (client: TestClient, subjectToken: string, params: Record<string, string | string[]> = {}) =>
    post('/token', client, { grant_type: GT, subject_token: subjectToken, subject_token_type: AT, ...params });
  const exchanged = async (client: TestClient, subjectToken: string, params: Record<string, string | string[]> = {}) => {
    const res = await exchange(client, subjectToken, params);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { access_token: string; issued_token_type: string; token_type: string; expires_in: number; scope?: string; refresh_token?: string };
  };
  const refused = async (res: Awaited<ReturnType<typeof exchange>>, error: string, description?: string | RegExp) => {
    expect(res.statusCode, res.body).toBe(error === 'invalid_client' ? 401 : 400);
    expect(res.json().error).toBe(error);
    if (description !== undefined) expect(res.json().error_description).toMatch(description);
  };
  const introspect = async (token: string, client: TestClient) => (await post('/introspect', client, { token })).json() as Record<string, unknown>;
  const userToken = async (scope = 'openid offline_access read write') => codeFlow(app, web, scope);
  const ownToken = async (client: TestClient) => (await post('/token', client, { grant_type: 'client_credentials' })).json().access_token as string;
  const metric = async (labels: Record<string, string>) => {
    const values = (await app.context.metrics.registry.getSingleMetric('latchkey_token_exchanges_total')!.get()).values;
    return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  };

  describe('delegation along a chain (RFC 8693 §1.1, §4.1)', () => {
    it('web→B→C: C introspects a two-level act chain, the scope narrowed at each step, exp never past the subject\'s', async () => {
      const t0 = await userToken();
      const c0 = decodeJwt(t0.access_token);
      expect(c0.aud).toBe(B_API);
      clock.advance(100);
      // B was sent t0 (its aud is B's API): B exchanges it for a token to C.
      const t1 = await exchanged(b, t0.access_token);
      expect(t1).toEqual({ access_token: expect.any(String), issued_token_type: AT, token_type: 'Bearer', expires_in: 500, scope: 'read write' });
      const c1 = decodeJwt(t1.access_token);
      expect(c1).toMatchObject({ sub: c0.sub, client_id: 'b', aud: C_API, gid: c0.gid, auth_time: c0.auth_time, act: { sub: 'b' }, exp: c0.exp });
      // C was sent t1: it exchanges it, narrowed, for a token to D.
      const t2 = await exchanged(c, t1.access_token, { scope: 'read' });
      const c2 = decodeJwt(t2.access_token);
      expect(c2).toMatchObject({ sub: c0.sub, client_id: 'c', aud: D_API, gid: c0.gid, scope: 'read', act: { sub: 'c', act: { sub: 'b' } } });
      expect(c2.exp).toBeLessThanOrEqual(c1.exp!);
      expect(await introspect(t2.access_token, c)).toEqual({
        active: true, scope: 'read', client_id: 'c', token_type: 'Bearer', exp: c2.exp, iat: c2.iat, sub: c0.sub, aud: D_API,
        iss: 'http://localhost:8080', jti: c2.jti, act: { sub: 'c', act: { sub: 'b' } },
      });
      // A third actor would exceed TOKEN_EXCHANGE_MAX_DELEGATION_DEPTH (2).
      await refused(await exchange(c, t2.access_token), 'invalid_request', /delegation chain is too long/);
    });

    it('revoking the user\'s grant (its refresh token at /revoke) makes every exchanged token inactive', async () => {
      const t0 = await userToken();
      const t1 = (await exchanged(b, t0.access_token)).access_token;
      const t2 = (await exchanged(c, t1)).access_token;
      expect((await introspect(t2, c)).active).toBe(true);
      const revoked = await post('/revoke', web, { token: t0.refresh_token!, token_type_hint: 'refresh_token' });
      expect(revoked.statusCode).toBe(200);
      await eventually(async () => (await introspect(t2, c)).active === false);
      expect(await introspect(t1, b)).toEqual({ active: false });
      expect(await introspect(t0.access_token, web)).toEqual({ active: false });
      // …and a revoked subject can no longer be exchanged.
      await refused(await exchange(b, t0.access_token), 'invalid_request', /invalid, expired or revoked/);
    });

    it('records the issuance (token.issued, grant_type token-exchange) with the chain and the subject\'s jti, and counts it', async () => {
      const before = await metric({ subject_token_type: 'access_token', mode: 'delegation', outcome: 'issued' });
      const t0 = await userToken();
      const t1 = decodeJwt((await exchanged(b, t0.access_token)).access_token);
      expect(await metric({ subject_token_type: 'access_token', mode: 'delegation', outcome: 'issued' })).toBe(before + 1);
      await app.context.audit.flush();
      const row = await app.context.store.db.selectFrom('audit_events').select(['event', 'client_id', 'sub', 'jti', 'details'])
        .where('event', '=', 'token.issued').where('jti', '=', t1.jti!).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ client_id: 'b', sub: t1.sub, jti: t1.jti });
      expect(row.details).toMatchObject({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', scope: t1.scope, act: { sub: 'b' }, subject_jti: decodeJwt(t0.access_token).jti, subject_token_type: 'access_token', mode: 'delegation', aud: C_API });
      expect(JSON.stringify(row.details)).not.toContain(t0.access_token);
    });
  });

  describe('impersonation (RFC 8693 §1.1)', () => {
    it('adds no actor, but keeps the subject token\'s own chain', async () => {
      const t0 = await userToken();
      const direct = decodeJwt((await exchanged(impersonator, t0.access_token)).access_token);
      expect(direct).toMatchObject({ sub: decodeJwt(t0.access_token).sub, client_id: 'impersonator', aud: D_API });
      expect(direct.act).toBeUndefined();
      const t1 = (await exchanged(b, t0.access_token)).access_token;
      expect(decodeJwt((await exchanged(impersonator, t1)).access_token).act).toEqual({ sub: 'b' });
      expect(await metric({ mode: 'impersonation', outcome: 'issued' })).toBe(2);
    });
  });

  describe('which subject tokens (the default policy)', () => {
    it('refuses a token neither issued nor sent to the client (invalid_request), audited as token_exchange.refused', async () => {
      const t0 = await userToken();
      await refused(await exchange(stranger, t0.access_token), 'invalid_request', 'the subject token was neither issued nor sent to this client');
      await app.context.audit.flush();
      const row = await app.context.store.db.selectFrom('audit_events').select(['details'])
        .where('event', '=', 'token_exchange.refused').where('client_id', '=', 'stranger').executeTakeFirstOrThrow();
      expect(row.details).toMatchObject({ reason: 'subject_not_for_client', error: 'invalid_request', subject_token_type: 'access_token' });
      expect(await metric({ outcome: 'invalid_request' })).toBeGreaterThan(0);
    });

    it('any_subject lifts it', async () => {
      const t0 = await userToken();
      expect(decodeJwt((await exchanged(anySubject, t0.access_token)).access_token)).toMatchObject({ client_id: 'any', scope: 'read', act: { sub: 'any' } });
    });

    it('takes the client\'s own token (issued to it)', async () => {
      const own = await ownToken(b);
      expect(decodeJwt((await exchanged(b, own, { scope: 'read' })).access_token)).toMatchObject({ sub: 'b', client_id: 'b', act: { sub: 'b' }, scope: 'read' });
    });

    it('refuses an expired or revoked subject token, or anything else (invalid_request)', async () => {
      const own = await ownToken(b);
      expect((await post('/revoke', b, { token: own })).statusCode).toBe(200);
      await refused(await exchange(b, own), 'invalid_request');
      await refused(await exchange(b, 'not-a-token'), 'invalid_request');
      const later = await ownToken(b);
      clock.advance(601);
      await refused(await exchange(b, later), 'invalid_request');
    });
  });

  describe('parameters (RFC 8693 §2.1)', () => {
    it('requires subject_token and subject_token_type', async () => {
      await refused(await post('/token', b, { grant_type: GT, subject_token_type: AT }), 'invalid_request', /subject_token and subject_token_type are required/);
      await refused(await post('/token', b, { grant_type: GT, subject_token: 'x' }), 'invalid_request', /subject_token and subject_token_type are required/);
    });

    it('refuses an unknown subject token type, one the client may not present, and any requested type but an access token', async () => {
      const own = await ownToken(b);
      await refused(await exchange(b, own, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }), 'invalid_request', /subject_token_type must be one of/);
      await refused(await exchange(b, own, { subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }), 'invalid_request', /may not exchange a subject token of type/);
      await refused(await exchange(b, own, { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }), 'invalid_request',
        'requested_token_type: only urn:ietf:params:oauth:token-type:access_token is supported');
      expect((await exchanged(b, own, { requested_token_type: AT })).issued_token_type).toBe(AT);
    });

    it('takes actor_token only with its type, and only as the client itself', async () => {
      const t0 = await userToken();
      await refused(await exchange(b, t0.access_token, { actor_token: await ownToken(b) }), 'invalid_request', /actor_token_type goes with actor_token/);
      await refused(await exchange(b, t0.access_token, { actor_token_type: AT }), 'invalid_request', /actor_token_type goes with actor_token/);
      await refused(await exchange(b, t0.access_token, { actor_token: t0.access_token, actor_token_type: AT }), 'invalid_request', 'the actor token must identify the client making the request');
      await refused(await exchange(b, t0.access_token, { actor_token: await ownToken(noGrant), actor_token_type: AT }), 'invalid_request', 'the actor token must identify the client making the request');
      const withActor = decodeJwt((await exchanged(b, t0.access_token, { actor_token: await ownToken(b), actor_token_type: AT })).access_token);
      expect(withActor.act).toEqual({ sub: 'b' });
    });

    it('narrows the scope, never widens it (invalid_scope)', async () => {
      const t0 = await userToken('openid read');
      await refused(await exchange(b, t0.access_token, { scope: 'write' }), 'invalid_scope', /exceeds the subject token's scope: write/);
      await refused(await exchange(b, t0.access_token, { scope: 'openid' }), 'invalid_scope', /not allowed for this client: openid/);
      expect((await exchanged(b, t0.access_token)).scope).toBe('read');
    });

    it('issues for the resources and audiences the client may ask for, exactly those (invalid_target otherwise)', async () => {
      const t0 = await userToken();
      await refused(await exchange(b, t0.access_token, { resource: D_API }), 'invalid_target');
      await refused(await exchange(b, t0.access_token, { audience: 'payroll' }), 'invalid_target', 'audience not allowed for this client');
      expect(decodeJwt((await exchanged(b, t0.access_token, { audience: 'ledger' })).access_token).aud).toBe('ledger');
      expect(decodeJwt((await exchanged(b, t0.access_token, { resource: C_API, audience: ['ledger', C_API] })).access_token).aud).toEqual([C_API, 'ledger']);
    });
  });

  describe('clients', () => {
    it('a client not registered for the grant is unauthorized_client', async () => {
      await refused(await exchange(noGrant, await ownToken(noGrant)), 'unauthorized_client');
    });

    it('a public client cannot register for it', async () => {
      await expect(createClient(app.context, { grant_types: [GT], token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }))
        .rejects.toThrow('token exchange requires a confidential client');
    });

    it('is advertised in grant_types_supported (RFC 8414 §2)', async () => {
      const metadata = (await app.server.inject('/.well-known/oauth-authorization-server')).json();
      expect(metadata.grant_types_supported).toContain(GT);
    });
  });
});
