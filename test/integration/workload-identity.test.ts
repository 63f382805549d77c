import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { createClient, form, FORM_HEADERS, registryOf, TestClock } from '../support/clients.js';
import { ciClaims, kubernetesClaims, startExternalIssuer, type ExternalIssuer } from '../support/external-issuer.js';

const ADMIN = 'admin-credential-0123456789-0123456789-abcdef';
const IAT = 'initial-access-token-0123456789-abcdefghij';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWT_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';
const PAYMENTS_SA = 'system:serviceaccount:payments:api';

describe('workload identity client authentication (draft-ietf-oauth-spiffe-client-auth)', () => {
  let app: TestApp;
  let k8s: ExternalIssuer;
  let ci: ExternalIssuer;
  let untrusted: ExternalIssuer;
  let aud: string;
  const clock = new TestClock(new Date());

  const admin = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) => app.server.inject({
    method, url, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  const token = (clientId: string | undefined, assertion: string, type = JWT_BEARER) => app.server.inject({
    method: 'POST', url: '/token', headers: FORM_HEADERS,
    payload: form({ grant_type: 'client_credentials', client_assertion_type: type, client_assertion: assertion, ...(clientId ? { client_id: clientId } : {}) }),
  });
  const lastFailure = () => app.logs.lines.filter((l) => l.event === 'client.auth_failed').at(-1);
  const podToken = (options: Parameters<ExternalIssuer['sign']>[1] = {}, claims: Record<string, unknown> = {}) =>
    k8s.sign({ ...kubernetesClaims('payments', 'api', aud), ...claims }, options);

  beforeAll(async () => {
    k8s = await startExternalIssuer({ clock });
    ci = await startExternalIssuer({ alg: 'ES256', clock });
    untrusted = await startExternalIssuer({ clock });
    app = await createTestApp({ ADMIN_TOKENS: ADMIN, INITIAL_ACCESS_TOKEN: IAT, OUTBOUND_ALLOWED_HOSTS: '127.0.0.1', CLIENT_AUTH_FAILURE_LIMIT: '1000' }, { clock });
    aud = app.context.config.issuer;
    expect((await admin('POST', '/admin/trusted-issuers', { name: 'k8s', issuer: k8s.issuer, jwks_uri: k8s.jwksUri, audiences: [aud] })).statusCode).toBe(201);
    expect((await admin('POST', '/admin/trusted-issuers', { name: 'ci', issuer: ci.issuer, discovery: true, audiences: [aud], algorithms: ['ES256'] })).statusCode).toBe(201);
    await createClient(app.context, {
      grant_types: ['client_credentials'], scope: 'read', token_endpoint_auth_method: 'workload_identity',
      workload_identity: { issuer: k8s.issuer, subject: PAYMENTS_SA },
    }, 'payments-api');
    await createClient(app.context, {
      grant_types: ['client_credentials'], scope: 'deploy', token_endpoint_auth_method: 'workload_identity',
      workload_identity: { issuer: ci.issuer, subject: 'repo:acme/web:ref:refs/heads/main' },
    }, 'web-deployer');
    await createClient(app.context, { grant_types: ['client_credentials'], scope: 'read' }, 'secret-client');
  });
  afterAll(async () => {
    await app.close();
    await Promise.all([k8s.close(), ci.close(), untrusted.close()]);
  });

  it('issues a client_credentials token for a Kubernetes service-account token, no secret anywhere', async () => {
    const client = await app.services.clients.get('payments-api');
    expect(client?.secrets).toEqual([]);
    const failures = app.logs.lines.length;
    const res = await token('payments-api', await podToken());
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeJwt(res.json().access_token)).toMatchObject({ client_id: 'payments-api', scope: 'read' });
    // Success logs no client.auth_failed.
    expect(app.logs.lines.slice(failures).some((l) => l.event === 'client.auth_failed')).toBe(false);
  });

  it('accepts the SPIFFE client assertion type too', async () => {
    expect((await token('payments-api', await podToken(), JWT_SPIFFE)).statusCode).toBe(200);
  });

  it('issues for a CI provider\'s token (issuer by discovery) to its own client', async () => {
    const res = await token('web-deployer', await ci.sign(ciClaims('acme/web', 'refs/heads/main', aud)));
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeJwt(res.json().access_token)).toMatchObject({ client_id: 'web-deployer', scope: 'deploy' });
    // A CI token of another repository is not this client.
    expect((await token('web-deployer', await ci.sign(ciClaims('acme/other', 'refs/heads/main', aud)))).statusCode).toBe(401);
  });

  it('refuses, as a bare invalid_client, every token that is not the client\'s workload', async () => {
    const cases: Array<[string, () => Promise<string>, string, string?]> = [
      ['wrong sub', () => k8s.sign(kubernetesClaims('payments', 'batch', aud)), 'sub'],
      ['other trusted issuer', () => ci.sign({ ...ciClaims('acme/web', 'refs/heads/main', aud), sub: PAYMENTS_SA }), 'another issuer'],
      ['untrusted issuer', () => untrusted.sign(kubernetesClaims('payments', 'api', aud)), 'issuer not trusted'],
      ['expired', () => podToken({ iatOffset: -700, ttl: 600 }), 'token expired'],
      ['wrong aud', () => k8s.sign(kubernetesClaims('payments', 'api', 'https://elsewhere.example')), 'aud'],
      ['a CI token for the Kubernetes client', () => ci.sign(ciClaims('acme/web', 'refs/heads/main', aud)), 'another issuer'],
    ];
    for (const [label, make, reason] of cases) {
      const res = await token('payments-api', await make());
      expect(res.statusCode, label).toBe(401);
      expect(res.json(), label).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
      expect(lastFailure(), label).toMatchObject({ client_id: 'payments-api', method: 'workload_identity' });
      expect(String(lastFailure()?.reason), label).toContain(reason);
    }
  });

  it('refuses a replayed token (jti spent once) unless the issuer allows reuse', async () => {
    const once = await podToken();
    expect((await token('payments-api', once)).statusCode).toBe(200);
    expect((await token('payments-api', once)).statusCode).toBe(401);
    expect(String(lastFailure()?.reason)).toContain('jti already used');
    const stored = (await admin('GET', '/admin/trusted-issuers/k8s')).json();
    expect((await admin('PUT', '/admin/trusted-issuers/k8s', { ...stored, allow_reuse: true })).statusCode).toBe(200);
    const reused = await podToken();
    expect((await token('payments-api', reused)).statusCode).toBe(200);
    expect((await token('payments-api', reused)).statusCode).toBe(200);
    expect((await admin('PUT', '/admin/trusted-issuers/k8s', { ...stored, allow_reuse: false })).statusCode).toBe(200);
  });

  it('does not spend the jti of a token refused for naming another workload', async () => {
    const batch = await k8s.sign(kubernetesClaims('payments', 'api', aud));
    // Presented for the CI client first (wrong issuer for it): refused, not spent.
    expect((await token('web-deployer', batch)).statusCode).toBe(401);
    expect((await token('payments-api', batch)).statusCode).toBe(200);
  });

  it('refuses while the issuer is disabled, and accepts again once enabled', async () => {
    expect((await admin('POST', '/admin/trusted-issuers/k8s/disable')).json()).toMatchObject({ disabled: true });
    expect((await token('payments-api', await podToken())).statusCode).toBe(401);
    expect(String(lastFailure()?.reason)).toContain('issuer disabled');
    expect((await admin('POST', '/admin/trusted-issuers/k8s/enable')).json()).toMatchObject({ disabled: false });
    expect((await token('payments-api', await podToken())).statusCode).toBe(200);
  });

  it('refuses a client not registered for workload_identity, and needs client_id', async () => {
    expect((await token('secret-client', await podToken())).statusCode).toBe(401);
    expect(lastFailure()).toMatchObject({ client_id: 'secret-client', method: 'workload_identity', reason: 'client is registered for client_secret_basic, not workload_identity' });
    const res = await token(undefined, await podToken());
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_request');
    expect((await token('payments-api', await podToken(), 'urn:other')).statusCode).toBe(401);
  });

  it('keeps the metadata consistent: the method and the member go together, with no key or secret', async () => {
    const registry = registryOf(app.context);
    const base = { grant_types: ['client_credentials'], scope: 'read' };
    await expect(registry.create({ ...base, token_endpoint_auth_method: 'workload_identity' }, { source: 'cli' })).rejects.toThrow(/go together/);
    await expect(registry.create({ ...base, workload_identity: { issuer: k8s.issuer, subject: 'x' } }, { source: 'cli' })).rejects.toThrow(/go together/);
    await expect(registry.create({ ...base, token_endpoint_auth_method: 'workload_identity', workload_identity: { issuer: k8s.issuer, subject: 'x' }, jwks_uri: k8s.jwksUri }, { source: 'cli' })).rejects.toThrow(/no jwks/);
    const created = await registry.create({ ...base, token_endpoint_auth_method: 'workload_identity', workload_identity: { issuer: k8s.issuer, subject: 'x' } }, { source: 'cli' });
    expect(created.clientSecret).toBeUndefined();
    // Self-service registration cannot choose it.
    await expect(registry.create({ ...base, token_endpoint_auth_method: 'workload_identity' }, { source: 'registration' })).rejects.toThrow(/workload_identity may only be set by an administrator/);
  });

  it('cannot be chosen through Dynamic Client Registration (RFC 7591 §2: an administrator\'s grant)', async () => {
    const register = (body: unknown) => app.server.inject({
      method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' }, payload: JSON.stringify(body),
    });
    for (const body of [
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'workload_identity' },
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'workload_identity', workload_identity: { issuer: k8s.issuer, subject: PAYMENTS_SA } },
    ]) {
      const res = await register(body);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toEqual({ error: 'invalid_client_metadata', error_description: 'token_endpoint_auth_method: workload_identity may only be set by an administrator' });
    }
  });

  it('is advertised by discovery', async () => {
    const doc = (await app.server.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
    expect(doc.token_endpoint_auth_methods_supported).toContain('workload_identity');
  });
});
