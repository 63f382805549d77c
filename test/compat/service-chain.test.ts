import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ciClaims, kubernetesClaims, startExternalIssuer, type ExternalIssuer } from '../support/external-issuer.js';
import { pkce } from '../support/oidc.js';
import { REDIRECT, secretOf, signInAndConsent, startCompatServer, type CompatServer } from './support.js';

/**
 * Service to service against a real `latchkey start` process over real HTTP (README "Service to
 * service"): a user's token handed down a chain of services by token exchange (RFC 8693) with
 * oauth4webapi's generic grant request, the last service verifying it with jose as a resource
 * server would; a workload authenticating with its platform's token and no stored secret; a CI
 * job's token exchanged by the JWT bearer grant (RFC 7523). The external issuer is a local stand-in
 * (test/support/external-issuer.ts) configured through the admin API.
 */
const options = { [oauth.allowInsecureRequests]: true } as const;
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef0123456789abcdef';
const API_A = 'https://a.example.com';
const API_B = 'https://b.example.com';
const API_C = 'https://c.example.com';

let server: CompatServer;
let external: ExternalIssuer;
let as: oauth.AuthorizationServer;

const basic = (id: string) => oauth.ClientSecretBasic(secretOf(id));

/** A client authenticating with a workload token of the external issuer (token_endpoint_auth_method workload_identity). */
const workloadAuth = (token: string): oauth.ClientAuth => (_as, client, body) => {
  body.set('client_id', client.client_id);
  body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
  body.set('client_assertion', token);
};

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.issuer}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

async function exchange(clientId: string, subjectToken: string, parameters: Record<string, string>): Promise<Response> {
  return oauth.genericTokenEndpointRequest(as, { client_id: clientId }, basic(clientId), TOKEN_EXCHANGE,
    { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, ...parameters }, options);
}

async function introspect(clientId: string, token: string): Promise<Record<string, unknown>> {
  const client = { client_id: clientId };
  return oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, basic(clientId), token, options)) as Promise<Record<string, unknown>>;
}

beforeAll(async () => {
  external = await startExternalIssuer();
  server = await startCompatServer([
    // The web app the user signs in to; it calls API B on the user's behalf.
    { client_id: 'web-a', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE], scope: 'openid offline_access orders:read orders:write', resources: [API_A, API_B], served_resources: [API_A] },
    // API B: serves B, may call C, and only read.
    { client_id: 'svc-b', grant_types: [TOKEN_EXCHANGE], scope: 'orders:read', resources: [API_C], served_resources: [API_B] },
    // API C: a resource server (introspects what is sent to it).
    { client_id: 'svc-c', grant_types: ['client_credentials'], served_resources: [API_C] },
    // A Kubernetes workload: no secret, its service-account token is its credential.
    { client_id: 'payments-api', token_endpoint_auth_method: 'workload_identity', grant_types: ['client_credentials'], scope: 'payments:write', resources: [API_C],
      workload_identity: { issuer: external.issuer, subject: 'system:serviceaccount:payments:api' } },
    // A deployment pipeline trading its CI job's token for a token of the mapped client.
    { client_id: 'deployer', grant_types: [JWT_BEARER], scope: 'deploy', trusted_subject_issuers: [external.issuer] },
  ], { ADMIN_TOKENS: ADMIN_TOKEN, OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' });
  as = await oauth.processDiscoveryResponse(new URL(server.issuer), await oauth.discoveryRequest(new URL(server.issuer), { ...options, algorithm: 'oauth2' }));
  const created = await admin('POST', '/admin/trusted-issuers', {
    name: 'cluster', issuer: external.issuer, discovery: true, audiences: [server.issuer],
    subject_mappings: [{ match: { repository: 'acme/*', ref: 'refs/heads/main' }, client_id: 'deployer' }],
  });
  expect(created.status).toBe(201);
}, 120_000);
afterAll(async () => {
  await server?.close();
  await external?.close();
});

describe('delegation down a chain: A → B → C', () => {
  let userToken: string;
  let refreshToken: string;
  let forB: string;
  let forC: string;

  it('advertises the grants', () => {
    expect(as.grant_types_supported).toEqual(expect.arrayContaining([TOKEN_EXCHANGE, JWT_BEARER, 'client_credentials']));
    expect(as.token_endpoint_auth_methods_supported).toContain('workload_identity');
  });

  it('A signs the user in and gets her token', async () => {
    const { verifier, challenge } = pkce();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({ client_id: 'web-a', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid offline_access orders:read orders:write', state, code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n-1' })) url.searchParams.set(k, v);
    const back = await signInAndConsent(server.issuer, url);
    const client = { client_id: 'web-a' };
    const params = oauth.validateAuthResponse(as, client, back, state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client,
      await oauth.authorizationCodeGrantRequest(as, client, basic('web-a'), params, REDIRECT, verifier, options), { expectedNonce: 'n-1' });
    userToken = tokens.access_token;
    refreshToken = tokens.refresh_token!;
    expect(decodeJwt(userToken)).toMatchObject({ sub: server.aliceSub, aud: API_A, client_id: 'web-a' });
  });

  it('A exchanges it for a token for B, naming itself as the actor', async () => {
    const tokens = await oauth.processGenericTokenEndpointResponse(as, { client_id: 'web-a' }, await exchange('web-a', userToken, { resource: API_B, scope: 'orders:read orders:write' }));
    expect(tokens).toMatchObject({ token_type: 'bearer', issued_token_type: ACCESS_TOKEN_TYPE, scope: 'orders:read orders:write' });
    forB = tokens.access_token;
    expect(decodeJwt(forB)).toMatchObject({ sub: server.aliceSub, aud: API_B, client_id: 'web-a', act: { sub: 'web-a' } });
  });

  it('B may not widen the scope beyond its own registration', async () => {
    const res = await exchange('svc-b', forB, { resource: API_C, scope: 'orders:write' });
    expect(res.status).toBe(400);
    expect((await res.json() as { error: string }).error).toBe('invalid_scope');
  });

  it('B may not ask for an audience it may not reach', async () => {
    const res = await exchange('svc-b', forB, { resource: API_A });
    expect(res.status).toBe(400);
    expect((await res.json() as { error: string }).error).toBe('invalid_target');
  });

  it('B exchanges it again for C; C verifies it with jose and sees the two-level act chain', async () => {
    const tokens = await oauth.processGenericTokenEndpointResponse(as, { client_id: 'svc-b' }, await exchange('svc-b', forB, { resource: API_C }));
    forC = tokens.access_token;
    expect(tokens.scope).toBe('orders:read');
    // C as a resource server: the JWKS from discovery, RFC 9068's typ, its own audience.
    const { payload, protectedHeader } = await jwtVerify(forC, createRemoteJWKSet(new URL(as.jwks_uri!)), { issuer: as.issuer, audience: API_C, typ: 'at+jwt' });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ sub: server.aliceSub, scope: 'orders:read', client_id: 'svc-b', act: { sub: 'svc-b', act: { sub: 'web-a' } } });
    expect((payload.act as { act: Record<string, unknown> }).act.act).toBeUndefined();
    // Never longer-lived than what it came from.
    expect(payload.exp!).toBeLessThanOrEqual(decodeJwt(userToken).exp!);
    expect(await introspect('svc-c', forC)).toMatchObject({ active: true, sub: server.aliceSub, scope: 'orders:read', act: { sub: 'svc-b', act: { sub: 'web-a' } } });
  });

  it('revoking the user\'s grant makes the whole chain inactive', async () => {
    const revoked = await oauth.revocationRequest(as, { client_id: 'web-a' }, basic('web-a'), refreshToken, options);
    expect(revoked.status).toBe(200);
    expect(await introspect('web-a', userToken)).toEqual({ active: false });
    expect(await introspect('svc-b', forB)).toEqual({ active: false });
    expect(await introspect('svc-c', forC)).toEqual({ active: false });
    // And an inactive subject token cannot be exchanged any more.
    const res = await exchange('svc-b', forB, { resource: API_C });
    expect(res.status).toBe(400);
    expect((await res.json() as { error: string }).error).toBe('invalid_request');
  });
});

describe('a workload with no stored secret', () => {
  it('gets client_credentials tokens with its platform token, once per token', async () => {
    const k8s = await external.sign(kubernetesClaims('payments', 'api', server.issuer));
    const client = { client_id: 'payments-api' };
    const tokens = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, workloadAuth(k8s), { scope: 'payments:write' }, options));
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'payments-api', client_id: 'payments-api', aud: API_C, scope: 'payments:write' });
    // The same token again is a replay (its jti is spent).
    const replay = await oauth.clientCredentialsGrantRequest(as, client, workloadAuth(k8s), {}, options);
    expect(replay.status).toBe(401);
    // Another service account of the cluster is not this client.
    const other = await external.sign(kubernetesClaims('payments', 'batch', server.issuer));
    expect((await oauth.clientCredentialsGrantRequest(as, client, workloadAuth(other), {}, options)).status).toBe(401);
  });
});

describe('a CI job by the JWT bearer grant', () => {
  it('trades its job token for a token of the client its repository and branch map to', async () => {
    const job = await external.sign(ciClaims('acme/shop', 'refs/heads/main', server.issuer));
    const tokens = await oauth.processGenericTokenEndpointResponse(as, { client_id: 'deployer' },
      await oauth.genericTokenEndpointRequest(as, { client_id: 'deployer' }, basic('deployer'), JWT_BEARER, { assertion: job, scope: 'deploy' }, options));
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'deployer', client_id: 'deployer', scope: 'deploy' });
    // Another branch matches no rule.
    const feature = await external.sign(ciClaims('acme/shop', 'refs/heads/feature', server.issuer));
    const refused = await oauth.genericTokenEndpointRequest(as, { client_id: 'deployer' }, basic('deployer'), JWT_BEARER, { assertion: feature }, options);
    expect(refused.status).toBe(400);
    expect((await refused.json() as { error: string }).error).toBe('invalid_grant');
  });
});
