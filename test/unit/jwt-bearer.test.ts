import { jwtVerify } from 'jose';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { JWT_BEARER, JWT_BEARER_GRANT_TYPE, jwtBearerGrant, type JwtBearerGrantDeps } from '../../src/capabilities/jwt-bearer/jwt-bearer-grant.js';
import { jwtBearerMetrics } from '../../src/capabilities/jwt-bearer/metrics.js';
import { InvalidClientMetadata, OAuthError } from '../../src/oauth/errors.js';
import { auditEventOf } from '../../src/oauth/token-endpoint/grant.js';
import {
  ExternalTokenRejected, type ExternalTokenUse, type ExternalTokenVerifier, type VerifiedExternalToken,
} from '../../src/oauth/trusted-issuers/external-token.js';
import { ManualClock } from '../support/clock.js';
import { MemoryKeyRing, secretSlot, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const API = 'https://api.example.com';
const EXT = 'https://token.actions.example.com';
const OTHER = 'https://other-idp.example.com';
const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** An assertion as presented: only its unverified iss is read by the grant; the fake verifier decides the rest. */
const assertionFrom = (iss: string | undefined, sub = 'repo:acme/app:ref:refs/heads/main') =>
  `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ ...(iss ? { iss } : {}), sub, aud: ISSUER, exp: NOW + 300, jti: 'ext-1' })}.c2ln`;

async function rejection(promise: Promise<unknown>): Promise<OAuthError> {
  try { await promise; } catch (err) { return err as OAuthError; }
  throw new Error('expected a rejection');
}

/** The port, in memory: trusts the issuers given, answers `verify` with the configured outcome, and records each call. */
class FakeExternalTokens implements ExternalTokenVerifier {
  readonly calls: { token: string; use: ExternalTokenUse }[] = [];
  outcome: VerifiedExternalToken | ExternalTokenRejected;

  constructor(readonly trusted: string[], outcome: VerifiedExternalToken | ExternalTokenRejected) {
    this.outcome = outcome;
  }

  trusts(issuer: string): boolean {
    return this.trusted.includes(issuer);
  }

  async verify(token: string, use: ExternalTokenUse): Promise<VerifiedExternalToken> {
    this.calls.push({ token, use });
    if (this.outcome instanceof ExternalTokenRejected) throw this.outcome;
    return this.outcome;
  }
}

const verified = (over: Partial<VerifiedExternalToken> = {}): VerifiedExternalToken => ({
  issuer: EXT, issuerName: 'github-actions', subject: 'repo:acme/app:ref:refs/heads/main',
  claims: {}, exp: NOW + 300, principal: { kind: 'user', userId: 'u-alice' }, ...over,
});

/** A confidential client an administrator registered for the grant, trusting EXT. */
const service = (metadata: Record<string, unknown> = {}) =>
  testClient('svc', {
    grant_types: [JWT_BEARER_GRANT_TYPE], redirect_uris: [], scope: 'read write', trusted_subject_issuers: [EXT], ...metadata,
  }, { secrets: [secretSlot('svc-secret')] });

function setup(outcome: VerifiedExternalToken | ExternalTokenRejected = verified(), options: { activeUsers?: string[]; clients?: Record<string, { disabled: boolean }> } = {}) {
  const keys = new MemoryKeyRing(['ES256']);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const registry = new Registry();
  const externalTokens = new FakeExternalTokens([EXT, OTHER], outcome);
  const active = new Set(options.activeUsers ?? ['u-alice']);
  const deps: JwtBearerGrantDeps = {
    keys, clock, issuer: ISSUER, accessTokenTtl: 600, idTokenTtl: 300,
    externalTokens, userActive: async (id) => active.has(id), metrics: jwtBearerMetrics(registry),
    clients: { get: async (id) => { const c = (options.clients ?? { 'ci-deployer': { disabled: false } })[id]; return c && testClient(id, { grant_types: ['client_credentials'] }, { disabled: c.disabled }); } },
  };
  const grant = jwtBearerGrant(deps);
  const counted = async () => (await registry.getSingleMetric('latchkey_jwt_bearer_grants_total')!.get()).values
    .map((v) => ({ ...v.labels, value: v.value }));
  return { keys, clock, externalTokens, grant, counted };
}

describe('the jwt-bearer declaration (RFC 7523 §2.1, §3.1)', () => {
  it('grant type urn:ietf:params:oauth:grant-type:jwt-bearer, confidential clients only, reading assertion and scope', () => {
    const { grant } = setup();
    expect(grant.grantType).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    expect(grant.publicClients).toBe(false);
    expect(grant.parameters).toEqual(['assertion', 'scope']);
  });
  it('a client without trusted_subject_issuers, or a public one, has a metadata problem; an administrator\'s confidential one has none', () => {
    const base = service().metadata;
    expect(JWT_BEARER.clientMetadataProblems!(base)).toEqual([]);
    expect(JWT_BEARER.clientMetadataProblems!({ ...base, trusted_subject_issuers: undefined }))
      .toEqual(['jwt-bearer requires trusted_subject_issuers, set by an administrator']);
    expect(JWT_BEARER.clientMetadataProblems!({ ...base, token_endpoint_auth_method: 'none' }))
      .toEqual(['jwt-bearer requires a confidential client (token_endpoint_auth_method other than none)']);
  });
  it('so registering for the grant without trusted_subject_issuers is refused', () => {
    expect(() => service({ trusted_subject_issuers: undefined }))
      .toThrow(new InvalidClientMetadata('jwt-bearer requires trusted_subject_issuers, set by an administrator'));
    expect(() => service({ token_endpoint_auth_method: 'none' }))
      .toThrow(new InvalidClientMetadata('jwt-bearer requires a confidential client (token_endpoint_auth_method other than none)'));
  });
});

describe('the token issued for the mapped principal (RFC 7523 §2.1, §3 item 2; RFC 9068 §2.2)', () => {
  it('a user principal: sub is the user id marked sub_kind user (no grant behind it), client_id the client that asked; no refresh token', async () => {
    const { grant, externalTokens, keys, clock } = setup();
    const assertion = assertionFrom(EXT);
    const result = await grant.handle({ client: service(), params: { assertion }, resources: [] });
    expect(externalTokens.calls).toEqual([{ token: assertion, use: 'authorization_grant' }]);
    const { payload } = await jwtVerify(result.response.access_token, keys.publicKey(), { typ: 'at+jwt', issuer: ISSUER, audience: ISSUER, currentDate: clock.now() });
    expect(payload).toEqual({
      iss: ISSUER, sub: 'u-alice', aud: ISSUER, exp: NOW + 300, iat: NOW, jti: result.issued.jti, client_id: 'svc', scope: 'read write', sub_kind: 'user',
    });
    expect(result.response).toEqual({ access_token: result.response.access_token, token_type: 'Bearer', expires_in: 300, scope: 'read write' });
    expect(result.issued).toMatchObject({ sub: 'u-alice', scope: 'read write', jti: result.issued.jti });
  });
  it('a client principal: sub is that client_id, and no gid', async () => {
    const { grant } = setup(verified({ principal: { kind: 'client', clientId: 'ci-deployer' } }));
    const result = await grant.handle({ client: service(), params: { assertion: assertionFrom(EXT) }, resources: [] });
    const claims = payloadOf(result.response.access_token);
    expect(claims).toMatchObject({ sub: 'ci-deployer', client_id: 'svc' });
    expect('gid' in claims).toBe(false);
    expect('sub_kind' in claims).toBe(false);
    expect(result.issued.sub).toBe('ci-deployer');
  });
  it('a client principal that is disabled or gone: invalid_grant', async () => {
    for (const clients of [{ 'ci-deployer': { disabled: true } }, {}] as Array<Record<string, { disabled: boolean }>>) {
      const { grant } = setup(verified({ principal: { kind: 'client', clientId: 'ci-deployer' } }), { clients });
      await expect(grant.handle({ client: service(), params: { assertion: assertionFrom(EXT) }, resources: [] }))
        .rejects.toMatchObject({ error: 'invalid_grant', description: 'the assertion\'s subject is not an active user or client' });
    }
  });
  it('audited in the one token.issued event with identifiers only, counted as issued under the issuer\'s name', async () => {
    const { grant, counted } = setup();
    const assertion = assertionFrom(EXT);
    const result = await grant.handle({ client: service(), params: { assertion }, resources: [] });
    expect(result.issued).toEqual({
      sub: 'u-alice', scope: 'read write', jti: result.issued.jti,
      details: { aud: ISSUER, issuer: EXT, issuer_name: 'github-actions', external_sub: 'repo:acme/app:ref:refs/heads/main', principal_type: 'user' },
    });
    expect(result.audit).toBeUndefined();
    expect(JSON.stringify(result.issued)).not.toContain(assertion);
    expect(await counted()).toEqual([{ issuer: 'github-actions', outcome: 'issued', value: 1 }]);
  });
});

describe('lifetime: never past the assertion (RFC 7523 §3 item 4)', () => {
  it('the assertion expiring first caps exp; a client ttl shorter than it wins', async () => {
    const { grant } = setup(verified({ exp: NOW + 90 }));
    const capped = await grant.handle({ client: service(), params: { assertion: assertionFrom(EXT) }, resources: [] });
    expect(capped.response.expires_in).toBe(90);
    expect(payloadOf(capped.response.access_token).exp).toBe(NOW + 90);
    const short = await grant.handle({ client: service({ access_token_ttl: 60 }), params: { assertion: assertionFrom(EXT) }, resources: [] });
    expect(payloadOf(short.response.access_token).exp).toBe(NOW + 60);
  });
  it('an assertion already at its exp: invalid_grant', async () => {
    const { grant } = setup(verified({ exp: NOW }));
    const err = await rejection(grant.handle({ client: service(), params: { assertion: assertionFrom(EXT) }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the assertion is invalid, expired or already used', debug: 'the assertion expired' });
  });
});

describe('refusals (RFC 7523 §3.1, RFC 6749 §5.2)', () => {
  it('no assertion: invalid_request, nothing verified', async () => {
    const { grant, externalTokens, counted } = setup();
    const err = await rejection(grant.handle({ client: service(), params: {}, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_request', status: 400, description: 'assertion is required (RFC 7523 §2.1)' });
    expect(externalTokens.calls).toEqual([]);
    expect(await counted()).toEqual([{ issuer: 'unknown', outcome: 'invalid_request', value: 1 }]);
  });
  it('no mapping rule matches: invalid_grant naming the issuer', async () => {
    const { grant, counted } = setup(verified({ principal: undefined }));
    const err = await rejection(grant.handle({ client: service(), params: { assertion: assertionFrom(EXT) }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_grant', status: 400, description: 'no subject mapping rule of issuer github-actions matches this assertion' });
    expect(auditEventOf(err)).toEqual({
      event: 'jwt_bearer.refused',
      fields: {
        client_id: 'svc', issuer: EXT, issuer_name: 'github-actions', external_sub: 'repo:acme/app:ref:refs/heads/main',
        error: 'invalid_grant', reason: 'no subject mapping rule of issuer github-actions matches this assertion',
      },
    });
    expect(await counted()).toEqual([{ issuer: 'github-actions', outcome: 'invalid_grant', value: 1 }]);
  });
  it('an issuer not in the client\'s trusted_subject_issuers (even one the server trusts): invalid_grant, and verify is never called', async () => {
    const { grant, externalTokens, counted } = setup();
    const err = await rejection(grant.handle({ client: service(), params: { assertion: assertionFrom(OTHER) }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the assertion\'s issuer is not trusted for this client' });
    expect(externalTokens.calls).toEqual([]);
    expect(auditEventOf(err)?.fields).toEqual({
      client_id: 'svc', error: 'invalid_grant', reason: `iss ${OTHER} not in trusted_subject_issuers`,
    });
    expect(await counted()).toEqual([{ issuer: 'unknown', outcome: 'invalid_grant', value: 1 }]);
  });
  it('a listed issuer the server does not trust (unknown or disabled): invalid_grant, verify never called', async () => {
    const { grant, externalTokens } = setup();
    const err = await rejection(grant.handle({ client: service({ trusted_subject_issuers: ['https://gone.example.com'] }), params: { assertion: assertionFrom('https://gone.example.com') }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the assertion\'s issuer is not trusted for this client', debug: 'issuer unknown or disabled' });
    expect(externalTokens.calls).toEqual([]);
  });
  it('no JWT, or one without iss: invalid_grant, verify never called', async () => {
    const { grant, externalTokens } = setup();
    for (const assertion of ['not-a-jwt', assertionFrom(undefined)]) {
      const err = await rejection(grant.handle({ client: service(), params: { assertion }, resources: [] }));
      expect(err, assertion).toMatchObject({ error: 'invalid_grant', description: 'the assertion is invalid, expired or already used' });
    }
    expect(externalTokens.calls).toEqual([]);
  });
  it('an assertion the verifier rejects: invalid_grant, its reason in debug and the audit event only, the token nowhere', async () => {
    const { grant, counted } = setup(new ExternalTokenRejected('jti already used', EXT));
    const assertion = assertionFrom(EXT);
    const err = await rejection(grant.handle({ client: service(), params: { assertion }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_grant', status: 400, description: 'the assertion is invalid, expired or already used', debug: 'jti already used' });
    expect(err.toJSON()).toEqual({ error: 'invalid_grant', error_description: 'the assertion is invalid, expired or already used' });
    expect(auditEventOf(err)?.fields).toEqual({ client_id: 'svc', issuer: EXT, error: 'invalid_grant', reason: 'jti already used' });
    expect(JSON.stringify({ ...err, audit: auditEventOf(err) })).not.toContain(assertion);
    expect(await counted()).toEqual([{ issuer: 'unknown', outcome: 'invalid_grant', value: 1 }]);
  });
  it('a user principal that is disabled or unknown: invalid_grant', async () => {
    const { grant } = setup(verified(), { activeUsers: [] });
    const err = await rejection(grant.handle({ client: service(), params: { assertion: assertionFrom(EXT) }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_grant', description: 'the assertion\'s subject is not an active user or client' });
  });
  it('a scope outside the client\'s registration: invalid_scope, before the assertion is verified (its jti stays unspent)', async () => {
    const { grant, externalTokens, counted } = setup();
    const err = await rejection(grant.handle({ client: service(), params: { assertion: assertionFrom(EXT), scope: 'read admin' }, resources: [] }));
    expect(err).toMatchObject({ error: 'invalid_scope', description: 'scope not allowed for this client: admin' });
    expect(auditEventOf(err)?.event).toBe('jwt_bearer.refused');
    expect(externalTokens.calls).toEqual([]);
    expect(await counted()).toEqual([{ issuer: 'unknown', outcome: 'invalid_scope', value: 1 }]);
  });
  it('a resource the client may not ask for: invalid_target, before the assertion is verified', async () => {
    const { grant, externalTokens } = setup();
    const err = await rejection(grant.handle({ client: service({ resources: [API] }), params: { assertion: assertionFrom(EXT) }, resources: ['https://elsewhere.example.com'] }));
    expect(err).toMatchObject({ error: 'invalid_target', description: 'resource not allowed for this client' });
    expect(externalTokens.calls).toEqual([]);
  });
  it('scope and resource within the registration: exactly those', async () => {
    const { grant } = setup();
    const result = await grant.handle({ client: service({ resources: [API] }), params: { assertion: assertionFrom(EXT), scope: 'read' }, resources: [API] });
    expect(payloadOf(result.response.access_token)).toMatchObject({ aud: API, scope: 'read' });
  });
});
