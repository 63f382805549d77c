import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  acceptActor, acceptExternalSubject, acceptLatchkeySubject, acceptSubjectType, actorChain, exchangedAudience, exchangedScope,
  exchangedTtl, exchangePolicyOf, tokenKindOf, TokenExchangeRefused, type RefusalReason,
} from '../../src/capabilities/token-exchange/exchange-policy.js';
import { TOKEN_EXCHANGE, tokenExchangeGrant, type TokenExchangeDeps } from '../../src/capabilities/token-exchange/token-exchange-grant.js';
import { readActor, delegationDepth } from '../../src/oauth/actor.js';
import { issueAccessToken } from '../../src/oauth/tokens.js';
import {
  ExternalTokenRejected, type ExternalTokenUse, type ExternalTokenVerifier, type VerifiedExternalToken,
} from '../../src/oauth/trusted-issuers/external-token.js';
import { epochSeconds } from '../../src/platform/clock.js';
import { parseClientMetadata } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import { MemoryClients, MemoryKeyRing, testClient } from '../support/kernel.js';

const GT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const ISSUER = 'https://id.example.com';
const IDP = 'https://idp.example.org';

const client = (id: string, metadata: Record<string, unknown> = {}) =>
  testClient(id, { grant_types: [GT], scope: 'read write admin', resources: ['https://api.example.com', 'https://reports.example.com'], ...metadata });

/** Runs `f` and returns the TokenExchangeRefused it threw: its reason and RFC 8693 §2.2.2 error. */
function refusal(f: () => unknown): { reason: RefusalReason; error: string } {
  try {
    f();
  } catch (err) {
    if (err instanceof TokenExchangeRefused) return { reason: err.reason, error: err.error };
    throw err;
  }
  throw new Error('not refused');
}

/** The audience of the subject tokens of these cases: an API, not this server. */
const SUBJECT_AUD = 'https://api.example.com';

describe('exchange policy: who may exchange what (RFC 8693 §2.1, §5)', () => {
  const b = client('b', { served_resources: ['https://b.example.com'] });
  const policy = exchangePolicyOf(b.metadata);

  it('defaults to delegation of Latchkey access tokens, no other subject, no extra audience', () => {
    expect(policy).toEqual({ mode: 'delegation', subjectTokenTypes: new Set(['access_token']), anySubject: false, audiences: [] });
  });

  it('knows the RFC 8693 §3 token types by their short names', () => {
    expect(tokenKindOf(AT)).toBe('access_token');
    expect(tokenKindOf(JWT)).toBe('jwt');
    expect(tokenKindOf('urn:ietf:params:oauth:token-type:id_token')).toBe('id_token');
    expect(tokenKindOf('urn:ietf:params:oauth:token-type:saml2')).toBeUndefined();
  });

  it('accepts a Latchkey token issued to the client, or whose aud names it (client_id or a served resource)', () => {
    expect(() => acceptLatchkeySubject({ client_id: 'b', aud: 'https://elsewhere.example' }, b, policy)).not.toThrow();
    expect(() => acceptLatchkeySubject({ client_id: 'a', aud: 'b' }, b, policy)).not.toThrow();
    expect(() => acceptLatchkeySubject({ client_id: 'a', aud: ['x', 'https://b.example.com'] }, b, policy)).not.toThrow();
  });

  it('refuses a token neither issued nor sent to the client (invalid_request), unless any_subject', () => {
    expect(refusal(() => acceptLatchkeySubject({ client_id: 'a', aud: 'https://c.example.com' }, b, policy)))
      .toEqual({ reason: 'subject_not_for_client', error: 'invalid_request' });
    const any = client('any', { token_exchange: { any_subject: true } });
    expect(() => acceptLatchkeySubject({ client_id: 'a', aud: 'https://c.example.com' }, any, exchangePolicyOf(any.metadata))).not.toThrow();
  });

  it('accepts only the subject token types the client is registered for', () => {
    expect(refusal(() => acceptSubjectType('jwt', policy))).toEqual({ reason: 'subject_type_not_allowed', error: 'invalid_request' });
    const ext = client('ext', { token_exchange: { subject_token_types: ['jwt'] }, trusted_subject_issuers: [IDP] });
    expect(() => acceptSubjectType('jwt', exchangePolicyOf(ext.metadata))).not.toThrow();
    expect(refusal(() => acceptSubjectType('access_token', exchangePolicyOf(ext.metadata)))).toEqual({ reason: 'subject_type_not_allowed', error: 'invalid_request' });
  });

  it('accepts an actor token only when it identifies the requesting client', () => {
    expect(() => acceptActor('b', b)).not.toThrow();
    expect(refusal(() => acceptActor('user-1', b))).toEqual({ reason: 'actor_not_client', error: 'invalid_request' });
    expect(refusal(() => acceptActor(undefined, b))).toEqual({ reason: 'actor_not_client', error: 'invalid_request' });
  });
});

describe('external subject tokens (the trusted-issuer port)', () => {
  const ext = client('ext', { token_exchange: { subject_token_types: ['jwt', 'id_token'] }, trusted_subject_issuers: [IDP] });
  const verified = (extra: Partial<VerifiedExternalToken> = {}): VerifiedExternalToken => ({
    issuer: IDP, issuerName: 'corp', subject: 'ext-sub', claims: { sub: 'ext-sub' }, exp: 2_000_000_000,
    principal: { kind: 'user', userId: 'user-1' }, ...extra,
  });

  it('gives the mapped principal of a trusted issuer', () => {
    expect(acceptExternalSubject(verified(), ext)).toEqual({ kind: 'user', userId: 'user-1' });
  });

  it('refuses an issuer the client does not trust, an unmapped subject, a token already delegated elsewhere', () => {
    expect(refusal(() => acceptExternalSubject(verified({ issuer: 'https://other.example' }), ext))).toEqual({ reason: 'subject_issuer_not_trusted', error: 'invalid_request' });
    expect(refusal(() => acceptExternalSubject(verified({ principal: undefined }), ext))).toEqual({ reason: 'subject_not_mapped', error: 'invalid_request' });
    expect(refusal(() => acceptExternalSubject(verified({ claims: { sub: 'ext-sub', act: { sub: 'x' } } }), ext))).toEqual({ reason: 'subject_delegated_elsewhere', error: 'invalid_request' });
  });
});

describe('the act chain (RFC 8693 §4.1)', () => {
  it('names the client as the actor of a subject token that had none', () => {
    expect(actorChain('delegation', 'b', undefined, 5)).toEqual({ sub: 'b' });
  });

  it('nests the subject token\'s chain: the outermost actor is the current one', () => {
    expect(actorChain('delegation', 'c', { sub: 'b' }, 5)).toEqual({ sub: 'c', act: { sub: 'b' } });
    expect(actorChain('delegation', 'd', { sub: 'c', act: { sub: 'b' } }, 5)).toEqual({ sub: 'd', act: { sub: 'c', act: { sub: 'b' } } });
  });

  it('refuses a chain longer than the maximum depth (invalid_request)', () => {
    expect(actorChain('delegation', 'c', { sub: 'b' }, 2)).toEqual({ sub: 'c', act: { sub: 'b' } });
    expect(refusal(() => actorChain('delegation', 'd', { sub: 'c', act: { sub: 'b' } }, 2))).toEqual({ reason: 'delegation_too_deep', error: 'invalid_request' });
    expect(refusal(() => actorChain('delegation', 'b', undefined, 0))).toEqual({ reason: 'delegation_too_deep', error: 'invalid_request' });
  });

  it('impersonation adds no actor but keeps the subject token\'s own chain', () => {
    expect(actorChain('impersonation', 'b', undefined, 5)).toBeUndefined();
    expect(actorChain('impersonation', 'c', { sub: 'b' }, 5)).toEqual({ sub: 'b' });
  });

  it('refuses a malformed act claim, and reads only sub and the nesting', () => {
    expect(refusal(() => actorChain('delegation', 'b', { act: { sub: 'x' } }, 5))).toEqual({ reason: 'subject_token_invalid', error: 'invalid_request' });
    expect(refusal(() => actorChain('delegation', 'b', 'b', 5))).toEqual({ reason: 'subject_token_invalid', error: 'invalid_request' });
    expect(readActor({ sub: 'b', iss: 'x', act: { sub: 'a', extra: 1 } })).toEqual({ sub: 'b', act: { sub: 'a' } });
    expect(delegationDepth({ sub: 'b', act: { sub: 'a' } })).toBe(2);
    expect(delegationDepth(undefined)).toBe(0);
  });
});

describe('downscoping (RFC 8693 §2.1 scope)', () => {
  const b = client('b', { scope: 'read write admin' });

  it('grants a requested scope within the subject token\'s and the client\'s', () => {
    expect(exchangedScope('read', 'read write', b)).toBe('read');
    expect(exchangedScope('write read write', 'read write', b)).toBe('write read');
  });

  it('refuses a scope beyond the subject token\'s, or beyond the client\'s registration (invalid_scope, naming which)', () => {
    expect(refusal(() => exchangedScope('admin', 'read', b))).toEqual({ reason: 'scope_exceeds_subject', error: 'invalid_scope' });
    expect(refusal(() => exchangedScope('email', 'read email', b))).toEqual({ reason: 'scope_not_allowed', error: 'invalid_scope' });
    expect(refusal(() => exchangedScope('read  write', 'read write', b))).toEqual({ reason: 'scope_not_allowed', error: 'invalid_scope' });
  });

  it('omitted: what both allow, in the subject token\'s order, possibly nothing', () => {
    expect(exchangedScope(undefined, 'openid write email read', b)).toBe('write read');
    expect(exchangedScope(undefined, 'email', b)).toBe('');
    expect(exchangedScope(undefined, '', b)).toBe('');
  });

  it('for an external subject token, the client\'s registration alone (its default scope when omitted)', () => {
    const d = client('d', { scope: 'read write', default_scope: 'read' });
    expect(exchangedScope(undefined, undefined, d)).toBe('read');
    expect(exchangedScope('write', undefined, d)).toBe('write');
    expect(refusal(() => exchangedScope('admin', undefined, d))).toEqual({ reason: 'scope_not_allowed', error: 'invalid_scope' });
  });
});

describe('audience translation (RFC 8693 §2.1 resource, audience; RFC 8707)', () => {
  const b = client('b', { token_exchange: { audiences: ['billing-service'] } });
  const policy = exchangePolicyOf(b.metadata);

  it('nothing asked: the client\'s first registered resource, else the issuer (when the subject token was for it)', () => {
    expect(exchangedAudience([], [], b, ISSUER, policy, SUBJECT_AUD)).toBe('https://api.example.com');
    const bare = client('bare', { resources: [] });
    expect(exchangedAudience([], [], bare, ISSUER, exchangePolicyOf(bare.metadata), ISSUER)).toBe(ISSUER);
  });

  it('refuses this server\'s own audience (UserInfo) unless the subject token named it or the administrator allowed it', () => {
    expect(refusal(() => exchangedAudience([ISSUER], [], b, ISSUER, policy, SUBJECT_AUD))).toEqual({ reason: 'target_not_allowed', error: 'invalid_target' });
    const bare = client('bare', { resources: [] });
    expect(refusal(() => exchangedAudience([], [], bare, ISSUER, exchangePolicyOf(bare.metadata), SUBJECT_AUD))).toEqual({ reason: 'target_not_allowed', error: 'invalid_target' });
    // An external subject token (no Latchkey audience) gets none of it either.
    expect(refusal(() => exchangedAudience([ISSUER], [], b, ISSUER, policy, undefined))).toEqual({ reason: 'target_not_allowed', error: 'invalid_target' });
    expect(exchangedAudience([ISSUER], [], b, ISSUER, policy, [SUBJECT_AUD, ISSUER])).toBe(ISSUER);
    const allowed = client('allowed', { token_exchange: { audiences: [ISSUER] } });
    expect(exchangedAudience([ISSUER], [], allowed, ISSUER, exchangePolicyOf(allowed.metadata), SUBJECT_AUD)).toBe(ISSUER);
  });

  it('is exactly what was asked, de-duplicated: registered resources, the issuer, registered audiences', () => {
    expect(exchangedAudience(['https://reports.example.com'], [], b, ISSUER, policy, SUBJECT_AUD)).toBe('https://reports.example.com');
    expect(exchangedAudience([ISSUER], [], b, ISSUER, policy, ISSUER)).toBe(ISSUER);
    expect(exchangedAudience([], ['billing-service'], b, ISSUER, policy, SUBJECT_AUD)).toBe('billing-service');
    expect(exchangedAudience(['https://api.example.com'], ['billing-service', 'https://api.example.com'], b, ISSUER, policy, SUBJECT_AUD))
      .toEqual(['https://api.example.com', 'billing-service']);
  });

  it('refuses any other resource or audience (invalid_target)', () => {
    expect(refusal(() => exchangedAudience(['https://evil.example.com'], [], b, ISSUER, policy, SUBJECT_AUD))).toEqual({ reason: 'target_not_allowed', error: 'invalid_target' });
    expect(refusal(() => exchangedAudience(['not a uri'], [], b, ISSUER, policy, SUBJECT_AUD))).toEqual({ reason: 'target_not_allowed', error: 'invalid_target' });
    expect(refusal(() => exchangedAudience([], ['other-service'], b, ISSUER, policy, SUBJECT_AUD))).toEqual({ reason: 'target_not_allowed', error: 'invalid_target' });
    expect(refusal(() => exchangedAudience([], Array.from({ length: 11 }, (_, i) => `a${i}`), b, ISSUER, policy, SUBJECT_AUD))).toEqual({ reason: 'invalid_parameter', error: 'invalid_request' });
  });
});

describe('lifetime: never past the subject token', () => {
  it('whole seconds, also from a fractional external exp', () => {
    expect(exchangedTtl(600, 1060.5, 1000)).toBe(60);
  });

  it('is the client\'s lifetime, cut at the subject token\'s exp', () => {
    expect(exchangedTtl(600, 10_000, 1000)).toBe(600);
    expect(exchangedTtl(600, 1300, 1000)).toBe(300);
  });

  it('refuses a subject token with no time left (invalid_request)', () => {
    expect(refusal(() => exchangedTtl(600, 1000, 1000))).toEqual({ reason: 'subject_expired', error: 'invalid_request' });
  });
});

describe('client metadata for the grant', () => {
  it('is for confidential clients only; external subject types need trusted issuers', () => {
    expect(TOKEN_EXCHANGE.publicClients).toBe(false);
    expect(() => parseClientMetadata({ grant_types: [GT], token_endpoint_auth_method: 'none' })).toThrow('token exchange requires a confidential client');
    expect(() => parseClientMetadata({ grant_types: [GT], token_exchange: { subject_token_types: ['jwt'] } }))
      .toThrow('token_exchange.subject_token_types jwt and id_token require trusted_subject_issuers');
    expect(parseClientMetadata({ grant_types: [GT], token_exchange: { subject_token_types: ['jwt'] }, trusted_subject_issuers: [IDP] }).token_exchange)
      .toEqual({ mode: 'delegation', subject_token_types: ['jwt'], any_subject: false, audiences: [] });
  });
});

/** A fake of the trusted-issuer port: the tokens it knows, by their text. */
class FakeExternalTokens implements ExternalTokenVerifier {
  readonly calls: Array<{ token: string; use: ExternalTokenUse }> = [];
  constructor(private readonly tokens: Record<string, VerifiedExternalToken>) {}
  trusts(issuer: string): boolean {
    return Object.values(this.tokens).some((t) => t.issuer === issuer);
  }
  async verify(token: string, use: ExternalTokenUse): Promise<VerifiedExternalToken> {
    this.calls.push({ token, use });
    const found = this.tokens[token];
    if (!found) throw new ExternalTokenRejected('signature does not verify', IDP);
    return found;
  }
}

describe('the grant with an external subject token (fake verifier)', () => {
  const clock = new ManualClock();
  const now = epochSeconds(clock);
  const ext = client('ext', { token_exchange: { subject_token_types: ['jwt'] }, trusted_subject_issuers: [IDP], scope: 'read write', default_scope: 'read' });
  const external = (principal: VerifiedExternalToken['principal'], exp = now + 300): VerifiedExternalToken => ({
    issuer: IDP, issuerName: 'corp', subject: 'corp|42', claims: { iss: IDP, sub: 'corp|42' }, exp, principal,
  });
  const verifier = new FakeExternalTokens({
    'user-token': external({ kind: 'user', userId: 'user-1' }),
    'client-token': external({ kind: 'client', clientId: 'svc' }),
    'disabled-user-token': external({ kind: 'user', userId: 'user-off' }),
    'unmapped-token': external(undefined),
  });
  const counted: Array<Record<string, string>> = [];
  const deps: TokenExchangeDeps = {
    keys: new MemoryKeyRing(), clock, issuer: ISSUER, accessTokenTtl: 600, idTokenTtl: 600,
    clients: new MemoryClients([ext, client('svc')]), isRevoked: async () => false, userActive: async (sub) => sub === 'user-1',
    externalTokens: verifier, maxDelegationDepth: 5, counted: (labels) => counted.push(labels),
  };
  const grant = tokenExchangeGrant(deps);
  const exchange = (params: Record<string, string>, extra: { audience?: string[]; resources?: string[] } = {}) =>
    grant.handle({ client: ext, params: { subject_token_type: JWT, ...params }, resources: extra.resources ?? [], repeated: { audience: extra.audience ?? [] } });
  const refused = async (p: Promise<unknown>) => {
    const err = await p.then(() => { throw new Error('not refused'); }, (e: unknown) => e);
    if (!(err instanceof TokenExchangeRefused)) throw err;
    return { reason: err.reason, error: err.error, audit: err.auditEvent };
  };

  it('issues a token for the mapped user: sub_kind user (no grant to name), delegated, exp within the external token\'s', async () => {
    const result = await exchange({ subject_token: 'user-token' });
    expect(verifier.calls.at(-1)).toEqual({ token: 'user-token', use: 'subject_token' });
    const claims = decodeJwt(result.response.access_token);
    expect(claims).toEqual({
      iss: ISSUER, sub: 'user-1', aud: 'https://api.example.com', client_id: 'ext', scope: 'read', sub_kind: 'user',
      act: { sub: 'ext' }, iat: now, exp: now + 300, jti: result.issued.jti,
    });
    expect(result.response).toEqual({
      access_token: result.response.access_token, token_type: 'Bearer', expires_in: 300, scope: 'read',
      issued_token_type: AT,
    });
    expect(result.issued).toEqual({ sub: 'user-1', scope: 'read', jti: result.issued.jti, details: {
      aud: 'https://api.example.com', subject_token_type: 'jwt',
      mode: 'delegation', act: { sub: 'ext' }, subject_issuer: IDP, subject_sub: 'corp|42', principal: { kind: 'user', id: 'user-1' },
    } });
    expect(result.audit).toBeUndefined();
    expect(counted.at(-1)).toEqual({ subject_token_type: 'jwt', mode: 'delegation', outcome: 'issued' });
  });

  it('issues a client principal\'s token without sub_kind', async () => {
    const claims = decodeJwt((await exchange({ subject_token: 'client-token', scope: 'write' })).response.access_token);
    expect(claims.sub).toBe('svc');
    expect(claims.sub_kind).toBeUndefined();
    expect(claims.scope).toBe('write');
  });

  it('refuses a rejected, unmapped or disabled subject as invalid_request, audited with its reason', async () => {
    const rejected = await refused(exchange({ subject_token: 'forged' }));
    expect(rejected).toEqual({ reason: 'subject_token_invalid', error: 'invalid_request', audit: {
      event: 'token_exchange.refused', fields: { client_id: 'ext', subject_token_type: 'jwt', mode: 'delegation', reason: 'subject_token_invalid', error: 'invalid_request', detail: 'signature does not verify' },
    } });
    expect((await refused(exchange({ subject_token: 'unmapped-token' }))).reason).toBe('subject_not_mapped');
    expect((await refused(exchange({ subject_token: 'disabled-user-token' }))).reason).toBe('subject_token_invalid');
    expect(counted.at(-1)).toEqual({ subject_token_type: 'jwt', mode: 'delegation', outcome: 'invalid_request' });
  });

  it('refuses a subject type the client is not registered for before verifying anything', async () => {
    const calls = verifier.calls.length;
    expect((await refused(exchange({ subject_token: 'user-token', subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }))).reason).toBe('subject_type_not_allowed');
    expect(verifier.calls.length).toBe(calls);
  });

  it('refuses an external subject token that has expired by the time it is exchanged', async () => {
    const soon = new FakeExternalTokens({ t: external({ kind: 'user', userId: 'user-1' }, now) });
    const g = tokenExchangeGrant({ ...deps, externalTokens: soon });
    expect((await refused(g.handle({ client: ext, params: { subject_token: 't', subject_token_type: JWT }, resources: [] }))).reason).toBe('subject_expired');
  });

  it('takes an external actor token mapped to the client itself, and no other', async () => {
    const actors = new FakeExternalTokens({
      'user-token': external({ kind: 'user', userId: 'user-1' }),
      'me': external({ kind: 'client', clientId: 'ext' }),
      'someone': external({ kind: 'client', clientId: 'svc' }),
    });
    const g = tokenExchangeGrant({ ...deps, externalTokens: actors });
    const run = (actor: string) => g.handle({ client: ext, params: { subject_token: 'user-token', subject_token_type: JWT, actor_token: actor, actor_token_type: JWT }, resources: [] });
    expect(decodeJwt((await run('me')).response.access_token).act).toEqual({ sub: 'ext' });
    expect(actors.calls.at(-1)).toEqual({ token: 'me', use: 'actor_token' });
    expect((await refused(run('someone'))).reason).toBe('actor_not_client');
    expect((await refused(run('forged'))).reason).toBe('actor_token_invalid');
  });

  it('a Latchkey subject token carries its gid, auth_time and acr to the new token', async () => {
    const svcB = client('b');
    const subject = issueAccessToken(deps, {
      sub: 'user-1', clientId: 'b', aud: 'https://api.example.com', scope: 'read write', ttl: 600,
      extraClaims: { gid: 'grant-1', auth_time: now - 5, acr: 'urn:latchkey:acr:mfa' },
    });
    const g = tokenExchangeGrant({ ...deps, clients: new MemoryClients([svcB]) });
    const result = await g.handle({ client: svcB, params: { subject_token: subject.token, subject_token_type: AT, scope: 'read' }, resources: [] });
    expect(decodeJwt(result.response.access_token)).toMatchObject({ sub: 'user-1', gid: 'grant-1', auth_time: now - 5, acr: 'urn:latchkey:acr:mfa', act: { sub: 'b' }, scope: 'read' });
    expect(result.issued.details!.subject_jti).toBe(subject.jti);
  });
});
