import { liveAccessToken, type LivenessDeps } from '../../oauth/access-token-liveness.js';
import type { Actor } from '../../oauth/actor.js';
import type { Audience } from '../../oauth/audience.js';
import type { Client } from '../../oauth/client.js';
import { OAuthError, TemporarilyUnavailable } from '../../oauth/errors.js';
import { epochSeconds } from '../../platform/clock.js';
import { issueAccessToken, type TokenIssuingDeps } from '../../oauth/tokens.js';
import { tokenResponse, type GrantType, type TokenGrant } from '../../oauth/token-endpoint/grant.js';
import type { ExternalTokenVerifier } from '../../oauth/trusted-issuers/external-token.js';
import { principalActive, principalSubject } from '../../oauth/trusted-issuers/principal.js';
import {
  acceptActor, acceptExternalSubject, acceptLatchkeySubject, acceptSubjectType, actorChain, exchangedAudience, exchangedScope,
  exchangedTtl, exchangePolicyOf, tokenKindOf, TokenExchangeRefused, TOKEN_TYPES, type ExchangePolicy, type SubjectTokenKind,
} from './exchange-policy.js';

export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** RFC 8693 §2.1: for authenticated clients; an external subject token type needs an issuer to come from. */
export const TOKEN_EXCHANGE: GrantType = {
  grantType: TOKEN_EXCHANGE_GRANT_TYPE,
  publicClients: false,
  clientMetadataProblems(m) {
    const problems: string[] = [];
    if (m.token_endpoint_auth_method === 'none') problems.push('token exchange requires a confidential client (token_endpoint_auth_method other than none)');
    const external = m.token_exchange?.subject_token_types.some((t) => t !== 'access_token') ?? false;
    if (external && m.trusted_subject_issuers === undefined) problems.push('token_exchange.subject_token_types jwt and id_token require trusted_subject_issuers');
    return problems;
  },
};

export interface TokenExchangeDeps extends TokenIssuingDeps, LivenessDeps {
  /** Tokens of the trusted external issuers (the port of src/oauth/trusted-issuers/). */
  externalTokens: ExternalTokenVerifier;
  /** TOKEN_EXCHANGE_MAX_DELEGATION_DEPTH */
  maxDelegationDepth: number;
  /** Counts one exchange (latchkey_token_exchanges_total). */
  counted(labels: { subject_token_type: string; mode: string; outcome: string }): void;
}

type Params = 'subject_token' | 'subject_token_type' | 'actor_token' | 'actor_token_type' | 'requested_token_type' | 'scope';

/** What the token issued takes from its subject, whichever kind it was. */
interface Subject {
  sub: string;
  /** Its scope (a Latchkey token's, possibly empty); undefined for an external token. */
  scope: string | undefined;
  /** Its audience (a Latchkey token's); undefined for an external token, whose audience was another server's. */
  aud: Audience | undefined;
  exp: number;
  act: unknown;
  /** Claims carried over: gid (so revoking the grant ends the chain), auth_time, acr, sub_kind. */
  carried: Record<string, unknown>;
  /** What the audit names of it (never the token). */
  audit: Record<string, unknown>;
}

const INVALID_SUBJECT = 'the subject token is invalid, expired or revoked';

/**
 * RFC 8693 token exchange: an authenticated client presents a token it holds (the subject)
 * and gets an access token of its own for it, for delegation (the default) or impersonation.
 */
export function tokenExchangeGrant(deps: TokenExchangeDeps): TokenGrant<Params> {
  /** RFC 8693 §2.1: a subject token of this server, or of a trusted external issuer. */
  async function verifySubject(kind: SubjectTokenKind, token: string, client: Client, policy: ExchangePolicy): Promise<Subject> {
    if (kind === 'access_token') {
      // Live exactly as introspection would answer active (src/oauth/access-token-liveness.ts).
      const live = await liveAccessToken(token, deps);
      if (!live.live) throw new TokenExchangeRefused('subject_token_invalid', INVALID_SUBJECT, live.reason);
      const c = live.claims;
      acceptLatchkeySubject(c, client, policy);
      const carried: Record<string, unknown> = {};
      for (const claim of ['gid', 'sub_kind', 'auth_time', 'acr'] as const) if (c[claim] !== undefined) carried[claim] = c[claim];
      return { sub: c.sub, scope: c.scope ?? '', aud: c.aud, exp: c.exp, act: c.act, carried, audit: { subject_jti: c.jti } };
    }
    const external = await verifyExternal(token, 'subject_token', 'subject_token_invalid', INVALID_SUBJECT);
    const principal = acceptExternalSubject(external, client);
    if (!(await principalActive(principal, deps))) throw new TokenExchangeRefused('subject_token_invalid', INVALID_SUBJECT, 'mapped principal disabled or deleted');
    const { sub, claims } = principalSubject(principal);
    return {
      sub, scope: undefined, aud: undefined, exp: external.exp, act: undefined, carried: claims,
      audit: { subject_issuer: external.issuer, subject_sub: external.subject, principal: { kind: principal.kind, id: sub } },
    };
  }

  async function verifyExternal(token: string, use: 'subject_token' | 'actor_token', reason: 'subject_token_invalid' | 'actor_token_invalid', description: string) {
    try {
      return await deps.externalTokens.verify(token, use);
    } catch (err) {
      // An outage the verifier reports as such (temporarily_unavailable) stays one; any other
      // failure is the token's (RFC 8693 §2.2.2: invalid_request).
      if (err instanceof TemporarilyUnavailable) throw err;
      throw new TokenExchangeRefused(reason, description, err instanceof Error ? err.message : 'rejected');
    }
  }

  /** RFC 8693 §2.1 actor_token: only ever the client itself (acceptActor). */
  async function verifyActor(token: string, type: string, client: Client): Promise<void> {
    const kind = tokenKindOf(type);
    if (kind === 'access_token') {
      const live = await liveAccessToken(token, deps);
      if (!live.live) throw new TokenExchangeRefused('actor_token_invalid', 'the actor token is invalid, expired or revoked', live.reason);
      return acceptActor(live.claims.sub, client);
    }
    if (kind !== 'jwt') throw new TokenExchangeRefused('unsupported_token_type', `actor_token_type must be ${TOKEN_TYPES.access_token} or ${TOKEN_TYPES.jwt}`);
    const external = await verifyExternal(token, 'actor_token', 'actor_token_invalid', 'the actor token is invalid');
    if (!(client.metadata.trusted_subject_issuers ?? []).includes(external.issuer)) {
      throw new TokenExchangeRefused('actor_token_invalid', 'the actor token issuer is not trusted for this client', `issuer ${external.issuer}`);
    }
    return acceptActor(external.principal?.kind === 'client' ? external.principal.clientId : undefined, client);
  }

  return {
    ...TOKEN_EXCHANGE,
    parameters: ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'scope'],
    repeatedParameters: ['audience'],

    async handle({ client, params, resources, repeated }) {
      const policy = exchangePolicyOf(client.metadata);
      const kind = params.subject_token_type === undefined ? undefined : tokenKindOf(params.subject_token_type);
      // Bounded labels: the short type name, never what a client sent.
      const labels = { subject_token_type: kind ?? 'other', mode: policy.mode };
      try {
        const result = await exchange(kind);
        deps.counted({ ...labels, outcome: 'issued' });
        return result;
      } catch (err) {
        if (err instanceof TokenExchangeRefused) err.fields = { client_id: client.clientId, subject_token_type: labels.subject_token_type, mode: policy.mode };
        deps.counted({ ...labels, outcome: err instanceof OAuthError ? err.error : 'server_error' });
        throw err;
      }

      async function exchange(kind: SubjectTokenKind | undefined) {
        // RFC 8693 §2.1: subject_token and its type are required; actor_token_type iff actor_token.
        const { subject_token: subjectToken, subject_token_type: subjectType, actor_token: actorToken, actor_token_type: actorType } = params;
        if (subjectToken === undefined || subjectType === undefined) {
          throw new TokenExchangeRefused('missing_parameter', 'subject_token and subject_token_type are required (RFC 8693 §2.1)');
        }
        if ((actorToken === undefined) !== (actorType === undefined)) {
          throw new TokenExchangeRefused(actorToken === undefined ? 'invalid_parameter' : 'missing_parameter', 'actor_token_type goes with actor_token, and only with it (RFC 8693 §2.1)');
        }
        if (params.requested_token_type !== undefined && params.requested_token_type !== TOKEN_TYPES.access_token) {
          throw new TokenExchangeRefused('unsupported_token_type', `requested_token_type: only ${TOKEN_TYPES.access_token} is supported`);
        }
        if (kind === undefined) {
          throw new TokenExchangeRefused('unsupported_token_type', `subject_token_type must be one of ${Object.values(TOKEN_TYPES).join(', ')}`);
        }
        acceptSubjectType(kind, policy);
        const subject = await verifySubject(kind, subjectToken, client, policy);
        if (actorToken !== undefined) await verifyActor(actorToken, actorType!, client);
        const act: Actor | undefined = actorChain(policy.mode, client.clientId, subject.act, deps.maxDelegationDepth);
        const scope = exchangedScope(params.scope, subject.scope, client);
        const aud = exchangedAudience(resources, repeated?.audience ?? [], client, deps.issuer, policy, subject.aud);
        const ttl = exchangedTtl(client.metadata.access_token_ttl ?? deps.accessTokenTtl, subject.exp, epochSeconds(deps.clock));
        const token = issueAccessToken(deps, {
          sub: subject.sub, clientId: client.clientId, aud, scope, ttl,
          extraClaims: act === undefined ? subject.carried : { ...subject.carried, act },
        });
        // RFC 8693 §2.2.1: issued_token_type is required; no refresh token (the subject's holder refreshes).
        const response = tokenResponse(token, scope);
        response.issued_token_type = TOKEN_TYPES.access_token;
        // One audit event per token: token.issued carries what the exchange was (the act chain,
        // the subject) — a second event would double the audit trail's cost on this path.
        return {
          response,
          issued: {
            sub: subject.sub, scope, jti: token.jti,
            details: { aud, subject_token_type: kind, mode: policy.mode, ...(act !== undefined ? { act } : {}), ...subject.audit },
          },
        };
      }
    },
  };
}
