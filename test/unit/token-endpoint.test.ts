import { describe, expect, it } from 'vitest';
import { ClientAuthenticationFailed, type ClientAuthInput } from '../../src/oauth/client-auth/authenticate.js';
import type { Client } from '../../src/oauth/client.js';
import { clientTypeOf, parseClientMetadata, type ClientMetadata } from '../../src/oauth/client-metadata.js';
import { InvalidGrant, InvalidRequest, UnauthorizedClient, UnsupportedGrantType } from '../../src/oauth/errors.js';
import { handleTokenRequest, type TokenEndpointDeps } from '../../src/oauth/token-endpoint/endpoint.js';
import type { GrantInput, GrantResult, GrantType, TokenGrant } from '../../src/oauth/token-endpoint/grant.js';
import { GrantTypeRegistry } from '../../src/oauth/token-endpoint/registry.js';
import { TEST_OUTBOUND_POLICY } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import { localClientKeys, MemoryClients, MemoryJtiStore, secretSlot, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const ECHO = 'urn:example:grant:echo';
const CONFIDENTIAL = 'urn:example:grant:confidential';

const basicOf = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

/** A stub grant: records what it was handed, answers with a fixed result. */
function stubGrant(grantType: string, publicClients: boolean, parameters: readonly string[]) {
  const calls: GrantInput<string>[] = [];
  const result: GrantResult = {
    response: { access_token: `at-${grantType}`, token_type: 'Bearer', expires_in: 60, scope: 's' },
    issued: { sub: 'someone', scope: 's', jti: `jti-${grantType}` },
    audit: [{ event: 'stub.used', fields: { grant: grantType } }],
  };
  const grant: TokenGrant = {
    grantType, publicClients, parameters,
    async handle(input) { calls.push(input); return result; },
  };
  return { grant, calls, result };
}

function setup() {
  const echo = stubGrant(ECHO, true, ['alpha', 'beta']);
  const confidential = stubGrant(CONFIDENTIAL, false, []);
  const grants = new GrantTypeRegistry<TokenGrant>([echo.grant, confidential.grant]);
  // Clients registered for the stub grant types: metadata through the real schema, against this registry.
  const client = (clientId: string, metadata: Record<string, unknown>, secrets: string[] = []): Client => {
    const parsed = parseClientMetadata({ redirect_uris: ['https://app.example.com/cb'], ...metadata }, { grantTypes: grants, issuer: ISSUER, outbound: TEST_OUTBOUND_POLICY });
    return {
      clientId, clientType: clientTypeOf(parsed), metadata: parsed, secrets: secrets.map((s) => secretSlot(s)), disabled: false,
      source: 'cli', createdAt: new Date('2030-01-01T00:00:00Z'), updatedAt: new Date('2030-01-01T00:00:00Z'), tokensNotBefore: null, lastUsedAt: null,
    };
  };
  const clients = new MemoryClients([
    client('web', { grant_types: [ECHO, CONFIDENTIAL] }, ['web-secret']),
    client('spa', { token_endpoint_auth_method: 'none', grant_types: [ECHO, CONFIDENTIAL] }),
    client('narrow', { grant_types: [CONFIDENTIAL] }, ['narrow-secret']),
  ]);
  const deps: TokenEndpointDeps = {
    grants, clients, assertionJtis: new MemoryJtiStore(), clientKeys: localClientKeys(), clock: new ManualClock(), assertionAudience: { issuer: ISSUER },
  };
  const request = (input: ClientAuthInput) => handleTokenRequest(input, deps);
  return { echo, confidential, grants, clients, deps, request };
}

describe('grant_type (RFC 6749 §3.2, §5.2)', () => {
  it('missing or empty: invalid_request, before any client is looked up', async () => {
    const { request, clients, echo } = setup();
    for (const body of [{}, { grant_type: '' }]) {
      const err = await rejection(request({ authorization: basicOf('web', 'web-secret'), body }));
      expect(err).toBeInstanceOf(InvalidRequest);
      expect(err).toMatchObject({ error: 'invalid_request', status: 400, description: 'grant_type is required' });
    }
    expect(clients.lookups).toEqual([]);
    expect(echo.calls).toEqual([]);
  });
  it('one no grant serves: unsupported_grant_type, before any client is looked up', async () => {
    const { request, clients } = setup();
    for (const grantType of ['password', 'authorization_code', 'URN:EXAMPLE:GRANT:ECHO']) {
      const err = await rejection(request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: grantType } }));
      expect(err).toBeInstanceOf(UnsupportedGrantType);
      expect(err).toMatchObject({ error: 'unsupported_grant_type', status: 400, description: 'this grant type is not supported' });
    }
    expect(clients.lookups).toEqual([]);
  });
  it('repeated: invalid_request (RFC 6749 §3.1), even with the same value twice', async () => {
    const { request, echo } = setup();
    const err = await rejection(request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: [ECHO, ECHO] } }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ error: 'invalid_request', description: 'the grant_type parameter must not be repeated (RFC 6749 §3.1)' });
    expect(echo.calls).toEqual([]);
  });
});

describe('client authentication at the token endpoint (RFC 6749 §3.2.1)', () => {
  it('no credentials at all: ClientAuthenticationFailed (401 invalid_client); the grant is not called', async () => {
    const { request, echo } = setup();
    const err = await rejection(request({ body: { grant_type: ECHO } }));
    expect(err).toBeInstanceOf(ClientAuthenticationFailed);
    expect(err).toMatchObject({ error: 'invalid_client', status: 401, description: 'client authentication failed', method: 'unknown', clientId: undefined, debug: 'no client authentication' });
    expect(echo.calls).toEqual([]);
  });
  it('a wrong secret: ClientAuthenticationFailed naming the client; the grant is not called', async () => {
    const { request, echo } = setup();
    const err = await rejection(request({ authorization: basicOf('web', 'wrong'), body: { grant_type: ECHO } }));
    expect(err).toBeInstanceOf(ClientAuthenticationFailed);
    expect(err).toMatchObject({ error: 'invalid_client', status: 401, method: 'client_secret_basic', clientId: 'web', debug: 'wrong or expired client secret' });
    expect(echo.calls).toEqual([]);
  });
  it('a confidential client presenting only its client_id is not authenticated as public', async () => {
    const { request, echo } = setup();
    const err = await rejection(request({ body: { grant_type: ECHO, client_id: 'web' } }));
    expect(err).toBeInstanceOf(ClientAuthenticationFailed);
    expect(err).toMatchObject({ method: 'none', clientId: 'web', debug: 'client is registered for client_secret_basic, not none' });
    expect(echo.calls).toEqual([]);
  });
});

describe('which grant types a client may use (RFC 6749 §5.2 unauthorized_client, §2.1)', () => {
  it('a client not registered for the grant type: unauthorized_client; the grant is not called', async () => {
    const { request, echo } = setup();
    const err = await rejection(request({ authorization: basicOf('narrow', 'narrow-secret'), body: { grant_type: ECHO } }));
    expect(err).toBeInstanceOf(UnauthorizedClient);
    expect(err).toMatchObject({ error: 'unauthorized_client', status: 400, description: `this client is not registered for the ${ECHO} grant type` });
    expect(echo.calls).toEqual([]);
  });
  it('a public client on a grant for confidential clients only: unauthorized_client, even when registered for it', async () => {
    const { request, confidential, clients } = setup();
    expect(clients.byId.get('spa')!.metadata.grant_types).toContain(CONFIDENTIAL);
    const err = await rejection(request({ body: { grant_type: CONFIDENTIAL, client_id: 'spa' } }));
    expect(err).toBeInstanceOf(UnauthorizedClient);
    expect(err).toMatchObject({ error: 'unauthorized_client', status: 400, description: `the ${CONFIDENTIAL} grant type requires client authentication` });
    expect(confidential.calls).toEqual([]);
  });
  it('the same public client on a grant open to public clients is served (method none)', async () => {
    const { request, echo, clients } = setup();
    const result = await request({ body: { grant_type: ECHO, client_id: 'spa' } });
    expect(result.client).toEqual({ client: clients.byId.get('spa'), method: 'none' });
    expect(echo.calls).toHaveLength(1);
  });
  it('a confidential client on the confidential-only grant is served', async () => {
    const { request, confidential, clients } = setup();
    const result = await request({ authorization: basicOf('narrow', 'narrow-secret'), body: { grant_type: CONFIDENTIAL } });
    expect(result).toEqual({ ...confidential.result, grantType: CONFIDENTIAL, client: { client: clients.byId.get('narrow'), method: 'client_secret_basic' } });
    expect(confidential.calls).toEqual([{ client: clients.byId.get('narrow'), params: {}, resources: [] }]);
  });
});

describe('what the grant is handed', () => {
  it('exactly its declared parameters (empty ones omitted, undeclared and authentication ones not passed) and every resource (RFC 8707)', async () => {
    const { request, echo, clients } = setup();
    await request({
      body: {
        grant_type: ECHO, client_id: 'spa', alpha: 'a', beta: '', gamma: 'g', scope: 'x',
        resource: ['https://api.example.com', 'https://other.example.com', ''],
      },
    });
    expect(echo.calls).toEqual([{
      client: clients.byId.get('spa'), params: { alpha: 'a' }, resources: ['https://api.example.com', 'https://other.example.com'],
    }]);
  });
  it('a single resource is a list of one; none is an empty list', async () => {
    const { request, echo } = setup();
    await request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: ECHO, alpha: 'a', beta: 'b', resource: 'https://api.example.com' } });
    await request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: ECHO } });
    expect(echo.calls.map((c) => [c.params, c.resources])).toEqual([
      [{ alpha: 'a', beta: 'b' }, ['https://api.example.com']],
      [{}, []],
    ]);
  });
  it('a declared parameter repeated: invalid_request, and the grant is not called', async () => {
    const { request, echo } = setup();
    const err = await rejection(request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: ECHO, beta: ['1', '2'] } }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ description: 'the beta parameter must not be repeated (RFC 6749 §3.1)' });
    expect(echo.calls).toEqual([]);
  });
  it('an undeclared parameter repeated is none of the endpoint\'s business', async () => {
    const { request, echo } = setup();
    await request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: ECHO, gamma: ['1', '2'] } });
    expect(echo.calls).toHaveLength(1);
  });
});

describe('the result of a token request', () => {
  it('the grant\'s result with the grant type and the authenticated client', async () => {
    const { request, echo, clients } = setup();
    const result = await request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: ECHO } });
    expect(result).toEqual({
      response: { access_token: `at-${ECHO}`, token_type: 'Bearer', expires_in: 60, scope: 's' },
      issued: { sub: 'someone', scope: 's', jti: `jti-${ECHO}` },
      audit: [{ event: 'stub.used', fields: { grant: ECHO } }],
      grantType: ECHO,
      client: { client: clients.byId.get('web'), method: 'client_secret_basic' },
    });
    expect(echo.calls).toEqual([{ client: clients.byId.get('web'), params: {}, resources: [] }]);
  });
  it('a grant\'s refusal reaches the caller as it was thrown', async () => {
    const { request, deps } = setup();
    const refusal = new InvalidGrant('no such thing');
    deps.grants.get(ECHO)!.handle = async () => { throw refusal; };
    expect(await rejection(request({ authorization: basicOf('web', 'web-secret'), body: { grant_type: ECHO } }))).toBe(refusal);
  });
});

describe('GrantTypeRegistry: the one table of grant types', () => {
  const problemsOf = (grantType: string, problem: string): GrantType => ({
    grantType, publicClients: true, clientMetadataProblems: () => [problem],
  });
  const metadata = (grantTypes: string[]): ClientMetadata => ({ ...testClient('any').metadata, grant_types: grantTypes });

  it('refuses a grant type registered twice, by add or in the constructor', () => {
    const registry = new GrantTypeRegistry([problemsOf('a', 'pa')]);
    expect(() => registry.add({ grantType: 'a', publicClients: false })).toThrow(new Error('grant type a registered twice'));
    expect(registry.get('a')!.publicClients).toBe(true);
    expect(() => new GrantTypeRegistry([problemsOf('b', 'x'), problemsOf('c', 'y'), problemsOf('b', 'z')])).toThrow(new Error('grant type b registered twice'));
  });
  it('grantTypes() in registration order; get and has by exact name', () => {
    const third: GrantType = { grantType: 'urn:x', publicClients: false };
    const registry = new GrantTypeRegistry<GrantType>([problemsOf('zeta', 'z'), problemsOf('alpha', 'a')]);
    registry.add(third);
    expect(registry.grantTypes()).toEqual(['zeta', 'alpha', 'urn:x']);
    expect(registry.get('urn:x')).toBe(third);
    expect(registry.has('alpha')).toBe(true);
    expect(registry.has('Alpha')).toBe(false);
    expect(registry.get('beta')).toBeUndefined();
  });
  it('clientMetadataProblems: the rules of the grant types the client registered for only, in registration order', () => {
    const registry = new GrantTypeRegistry<GrantType>([problemsOf('a', 'problem of a'), problemsOf('b', 'problem of b'), { grantType: 'c', publicClients: true }]);
    expect(registry.clientMetadataProblems(metadata(['b']))).toEqual(['problem of b']);
    // Whatever order the client lists them in, the same problem comes first.
    expect(registry.clientMetadataProblems(metadata(['b', 'a']))).toEqual(['problem of a', 'problem of b']);
    // A grant type with no rules, and one the registry does not know, add nothing.
    expect(registry.clientMetadataProblems(metadata(['c', 'unknown']))).toEqual([]);
  });
  it('each rule is given the client\'s metadata', () => {
    const seen: ClientMetadata[] = [];
    const registry = new GrantTypeRegistry<GrantType>([{ grantType: 'a', publicClients: true, clientMetadataProblems: (m) => { seen.push(m); return []; } }]);
    const m = metadata(['a']);
    expect(registry.clientMetadataProblems(m)).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(m);
  });
});
