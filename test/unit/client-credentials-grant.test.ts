import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { CLIENT_CREDENTIALS, clientCredentialsGrant } from '../../src/capabilities/client-credentials/client-credentials-grant.js';
import { InvalidClientMetadata, InvalidRequest, InvalidScope, InvalidTarget } from '../../src/oauth/errors.js';
import type { TokenIssuingDeps } from '../../src/oauth/tokens.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing, secretSlot, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const REPORTS = 'https://reports.example.com';
const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

/** A confidential client registered for client_credentials. */
const service = (metadata: Record<string, unknown> = {}) =>
  testClient('svc', { grant_types: ['client_credentials'], redirect_uris: [], scope: 'read write admin', ...metadata }, { secrets: [secretSlot('svc-secret')] });

function setup() {
  const keys = new MemoryKeyRing(['ES256']);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const deps: TokenIssuingDeps = { keys, clock, issuer: ISSUER, accessTokenTtl: 600, idTokenTtl: 300 };
  const grant = clientCredentialsGrant(deps);
  return { keys, clock, deps, grant };
}

describe('the client_credentials declaration (RFC 6749 §4.4, §2.1)', () => {
  it('grant type client_credentials, confidential clients only, reading scope only', () => {
    const { grant } = setup();
    expect(grant.grantType).toBe('client_credentials');
    expect(grant.publicClients).toBe(false);
    expect(grant.parameters).toEqual(['scope']);
    expect(CLIENT_CREDENTIALS.publicClients).toBe(false);
  });
  it('a public client registering for it is a metadata problem; a confidential one is not', () => {
    const base = service().metadata;
    expect(CLIENT_CREDENTIALS.clientMetadataProblems!({ ...base, token_endpoint_auth_method: 'none' }))
      .toEqual(['client_credentials requires a confidential client (token_endpoint_auth_method other than none)']);
    for (const method of ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const) {
      expect(CLIENT_CREDENTIALS.clientMetadataProblems!({ ...base, token_endpoint_auth_method: method }), method).toEqual([]);
    }
  });
  it('so registration through the server\'s grant types refuses the pair', () => {
    expect(() => service({ token_endpoint_auth_method: 'none' }))
      .toThrow(new InvalidClientMetadata('client_credentials requires a confidential client (token_endpoint_auth_method other than none)'));
  });
});

describe('the access token of a client_credentials grant (RFC 6749 §4.4.3, RFC 9068 §2.2)', () => {
  it('sub is the client itself; aud the issuer when the client registered no resource; lifetime the default', async () => {
    const { grant } = setup();
    const result = await grant.handle({ client: service(), params: {}, resources: [] });
    const claims = payloadOf(result.response.access_token);
    expect(claims).toEqual({
      iss: ISSUER, sub: 'svc', aud: ISSUER, exp: NOW + 600, iat: NOW, jti: result.issued.jti, client_id: 'svc', scope: 'read write admin',
    });
    expect(decodeProtectedHeader(result.response.access_token)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k-ES256' });
  });
  it('verifies as a resource server would', async () => {
    const { grant, keys, clock } = setup();
    const result = await grant.handle({ client: service({ resources: [API] }), params: {}, resources: [] });
    const { payload } = await jwtVerify(result.response.access_token, keys.publicKey(), { typ: 'at+jwt', issuer: ISSUER, audience: API, currentDate: clock.now() });
    expect(payload.sub).toBe('svc');
  });
  it('the response: token, Bearer, expires_in, scope, and never a refresh token or an ID token', async () => {
    const { grant } = setup();
    const client = service({ scope: 'openid offline_access read', grant_types: ['client_credentials', 'refresh_token'] });
    const result = await grant.handle({ client, params: {}, resources: [] });
    expect(result).toEqual({
      response: { access_token: result.response.access_token, token_type: 'Bearer', expires_in: 600, scope: 'openid offline_access read' },
      issued: { sub: 'svc', scope: 'openid offline_access read', jti: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
    expect(payloadOf(result.response.access_token).jti).toBe(result.issued.jti);
  });
  it('the client\'s access_token_ttl overrides the default', async () => {
    const { grant } = setup();
    const result = await grant.handle({ client: service({ access_token_ttl: 60 }), params: {}, resources: [] });
    expect(result.response.expires_in).toBe(60);
    expect(payloadOf(result.response.access_token)).toMatchObject({ iat: NOW, exp: NOW + 60 });
  });
  it('no gid: the token belongs to no user grant', async () => {
    const { grant } = setup();
    const result = await grant.handle({ client: service(), params: {}, resources: [] });
    expect('gid' in payloadOf(result.response.access_token)).toBe(false);
  });
});

describe('audience from resource (RFC 8707 §2)', () => {
  it('none requested: the client\'s first registered resource', async () => {
    const { grant } = setup();
    const result = await grant.handle({ client: service({ resources: [API, REPORTS] }), params: {}, resources: [] });
    expect(payloadOf(result.response.access_token).aud).toBe(API);
  });
  it('a registered resource, or the issuer: that audience; several: all of them', async () => {
    const { grant } = setup();
    const client = service({ resources: [API, REPORTS] });
    expect(payloadOf((await grant.handle({ client, params: {}, resources: [REPORTS] })).response.access_token).aud).toBe(REPORTS);
    expect(payloadOf((await grant.handle({ client, params: {}, resources: [ISSUER] })).response.access_token).aud).toBe(ISSUER);
    expect(payloadOf((await grant.handle({ client, params: {}, resources: [REPORTS, API, REPORTS] })).response.access_token).aud).toEqual([REPORTS, API]);
  });
  it('a resource the client did not register: invalid_target', async () => {
    const { grant } = setup();
    const err = await rejection(grant.handle({ client: service({ resources: [API] }), params: {}, resources: ['https://elsewhere.example.com'] }));
    expect(err).toBeInstanceOf(InvalidTarget);
    expect(err).toMatchObject({ error: 'invalid_target', status: 400, description: 'resource not allowed for this client' });
  });
  it('a resource that is no absolute URI, or has a fragment: invalid_target', async () => {
    const { grant } = setup();
    for (const resource of ['api', `${API}#frag`]) {
      const err = await rejection(grant.handle({ client: service({ resources: [API] }), params: {}, resources: [resource] }));
      expect(err).toBeInstanceOf(InvalidTarget);
      expect(err, resource).toMatchObject({ description: 'resource must be an absolute URI without a fragment (RFC 8707 §2)' });
    }
  });
  it('more than ten resources: invalid_request', async () => {
    const { grant } = setup();
    const err = await rejection(grant.handle({ client: service({ resources: [API] }), params: {}, resources: Array(11).fill(API) }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ description: 'too many resource parameters' });
  });
});

describe('scope (RFC 6749 §4.4.2, §3.3)', () => {
  it('none requested: the client\'s default_scope', async () => {
    const { grant } = setup();
    const result = await grant.handle({ client: service({ default_scope: 'read' }), params: {}, resources: [] });
    expect(result.response.scope).toBe('read');
    expect(result.issued.scope).toBe('read');
    expect(payloadOf(result.response.access_token).scope).toBe('read');
  });
  it('none requested and no default: every allowed scope; none allowed: no scope at all', async () => {
    const { grant } = setup();
    expect((await grant.handle({ client: service(), params: {}, resources: [] })).response.scope).toBe('read write admin');
    const bare = await grant.handle({ client: service({ scope: '' }), params: {}, resources: [] });
    expect('scope' in bare.response).toBe(false);
    expect(bare.issued.scope).toBe('');
    expect('scope' in payloadOf(bare.response.access_token)).toBe(false);
  });
  it('requested within the allowed scopes: exactly that, duplicates dropped, order kept', async () => {
    const { grant } = setup();
    const client = service({ default_scope: 'read' });
    expect((await grant.handle({ client, params: { scope: 'write' }, resources: [] })).response.scope).toBe('write');
    expect((await grant.handle({ client, params: { scope: 'admin read admin' }, resources: [] })).response.scope).toBe('admin read');
  });
  it('a scope outside the allowed ones: invalid_scope naming it', async () => {
    const { grant } = setup();
    const err = await rejection(grant.handle({ client: service(), params: { scope: 'read delete purge delete' }, resources: [] }));
    expect(err).toBeInstanceOf(InvalidScope);
    expect(err).toMatchObject({ error: 'invalid_scope', status: 400, description: 'scope not allowed for this client: delete purge' });
  });
  it('a malformed scope: invalid_scope', async () => {
    const { grant } = setup();
    const err = await rejection(grant.handle({ client: service(), params: { scope: 'read  write' }, resources: [] }));
    expect(err).toBeInstanceOf(InvalidScope);
    expect(err).toMatchObject({ description: 'scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)' });
  });
});
