import { audienceIncludes, audienceNamesClient, asAudience, resolveAudience, type Audience } from '../../oauth/audience.js';
import { delegationDepth, readActor, type Actor } from '../../oauth/actor.js';
import type { Client } from '../../oauth/client.js';
import type { ClientMetadata } from '../../oauth/client-metadata.js';
import { OAuthError } from '../../oauth/errors.js';
import { grantedScope, isScopeToken, scopeList } from '../../oauth/scope.js';
import type { AccessTokenClaims } from '../../oauth/tokens.js';
import type { GrantAuditEvent, AuditedRefusal } from '../../oauth/token-endpoint/grant.js';
import type { MappedPrincipal, VerifiedExternalToken } from '../../oauth/trusted-issuers/external-token.js';

/**
 * The decisions of a token exchange (RFC 8693), pure: which subject and actor tokens a client
 * may present, the act chain, the scope, audience and lifetime of the token issued. Each
 * refusal is a TokenExchangeRefused naming its reason.
 */

/** RFC 8693 §3: the token type identifiers Latchkey reads, by their short names. */
export const TOKEN_TYPES = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
} as const;
export type SubjectTokenKind = keyof typeof TOKEN_TYPES;

/** The short name of an RFC 8693 §3 token type URI, or undefined for any other. */
export function tokenKindOf(uri: string): SubjectTokenKind | undefined {
  return (Object.keys(TOKEN_TYPES) as SubjectTokenKind[]).find((kind) => TOKEN_TYPES[kind] === uri);
}

/** Why an exchange was refused, each with its RFC 8693 §2.2.2 error code. */
const ERROR_OF = {
  missing_parameter: 'invalid_request',
  invalid_parameter: 'invalid_request',
  unsupported_token_type: 'invalid_request',
  subject_type_not_allowed: 'invalid_request',
  subject_token_invalid: 'invalid_request',
  subject_not_for_client: 'invalid_request',
  subject_issuer_not_trusted: 'invalid_request',
  subject_not_mapped: 'invalid_request',
  subject_delegated_elsewhere: 'invalid_request',
  subject_expired: 'invalid_request',
  delegation_too_deep: 'invalid_request',
  actor_token_invalid: 'invalid_request',
  actor_not_client: 'invalid_request',
  scope_exceeds_subject: 'invalid_scope',
  scope_not_allowed: 'invalid_scope',
  target_not_allowed: 'invalid_target',
} as const;
export type RefusalReason = keyof typeof ERROR_OF;

/**
 * An exchange refused (RFC 8693 §2.2.2). It is its own audit event (`token_exchange.refused`);
 * the grant adds the request's identifiers (`fields`), never a token.
 */
export class TokenExchangeRefused extends OAuthError implements AuditedRefusal {
  fields: Record<string, unknown> = {};

  constructor(readonly reason: RefusalReason, description: string, debug?: string) {
    super(ERROR_OF[reason], description, 400, debug);
  }

  get auditEvent(): GrantAuditEvent {
    return { event: 'token_exchange.refused', fields: { ...this.fields, reason: this.reason, error: this.error, ...(this.debug ? { detail: this.debug } : {}) } };
  }
}

/** A kernel rule's refusal (invalid_scope, invalid_target, invalid_request) as this grant's typed one. */
function refusedAs<T>(reason: RefusalReason, rule: () => T): T {
  try {
    return rule();
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    throw new TokenExchangeRefused(err.error === 'invalid_request' ? 'invalid_parameter' : reason, err.description, err.debug);
  }
}

/** What a client may exchange: its `token_exchange` registration, or the default. */
export interface ExchangePolicy {
  /** RFC 8693 §1.1: delegation (an `act` names the client) or impersonation (none added). */
  mode: 'delegation' | 'impersonation';
  subjectTokenTypes: ReadonlySet<SubjectTokenKind>;
  /** Latchkey access tokens of any client and audience, not only those issued or sent to it. */
  anySubject: boolean;
  /** RFC 8693 §2.1 `audience` values it may ask for besides its registered resources. */
  audiences: readonly string[];
}

/**
 * The default (no `token_exchange` registered): delegation, of a Latchkey access token issued
 * or sent to the client, within its own registration.
 */
export function exchangePolicyOf(metadata: Pick<ClientMetadata, 'token_exchange'>): ExchangePolicy {
  const te = metadata.token_exchange;
  return {
    mode: te?.mode ?? 'delegation',
    subjectTokenTypes: new Set(te?.subject_token_types ?? ['access_token']),
    anySubject: te?.any_subject ?? false,
    audiences: te?.audiences ?? [],
  };
}

/** Checked before the token is verified: a type the client may not present costs nothing. */
export function acceptSubjectType(kind: SubjectTokenKind, policy: ExchangePolicy): void {
  if (!policy.subjectTokenTypes.has(kind)) {
    throw new TokenExchangeRefused('subject_type_not_allowed', `this client may not exchange a subject token of type ${TOKEN_TYPES[kind]}`);
  }
}

/**
 * A live Latchkey access token as a subject: by default only one issued to the client
 * (`client_id`) or sent to it (its `aud` names the client: audienceNamesClient) — a client
 * cannot turn a token it was never given into one of its own. `any_subject` lifts this.
 */
export function acceptLatchkeySubject(claims: Pick<AccessTokenClaims, 'client_id' | 'aud'>, client: Pick<Client, 'clientId' | 'metadata'>, policy: ExchangePolicy): void {
  if (policy.anySubject || claims.client_id === client.clientId || audienceNamesClient(claims.aud, client)) return;
  throw new TokenExchangeRefused('subject_not_for_client', 'the subject token was neither issued nor sent to this client');
}

/**
 * A verified token of a trusted external issuer as a subject: its issuer must be one of the
 * client's `trusted_subject_issuers`, and its issuer's subject mapping must name a Latchkey
 * principal, which becomes the new token's `sub`. One already delegated (`act`) is refused:
 * its actors are in another issuer's namespace (RFC 8693 §4.1), which Latchkey can neither
 * carry as its own nor drop.
 */
export function acceptExternalSubject(token: VerifiedExternalToken, client: Pick<Client, 'metadata'>): MappedPrincipal {
  if (!(client.metadata.trusted_subject_issuers ?? []).includes(token.issuer)) {
    throw new TokenExchangeRefused('subject_issuer_not_trusted', 'the subject token issuer is not trusted for this client', `issuer ${token.issuer}`);
  }
  if (!token.principal) throw new TokenExchangeRefused('subject_not_mapped', 'the subject token names no principal of this server', `issuer ${token.issuer}`);
  if (token.claims.act !== undefined) throw new TokenExchangeRefused('subject_delegated_elsewhere', 'a subject token of another issuer that names an actor cannot be exchanged');
  return token.principal;
}

/**
 * RFC 8693 §2.1 actor_token: Latchkey reads it only as proof that the requesting client is the
 * actor — its subject (a Latchkey token's `sub`, an external token's mapped principal) must be
 * the client itself. It adds nothing else to the token issued.
 */
export function acceptActor(actorSub: string | undefined, client: Pick<Client, 'clientId'>): void {
  if (actorSub !== client.clientId) throw new TokenExchangeRefused('actor_not_client', 'the actor token must identify the client making the request');
}

/**
 * RFC 8693 §4.1: the `act` of the token issued. Delegation: the client is the current actor,
 * the subject token's chain nested in it, at most `maxDepth` actors. Impersonation (§1.1): no
 * actor is added, but the subject token's own chain is kept — the evidence of an earlier
 * delegation is never erased.
 */
export function actorChain(mode: ExchangePolicy['mode'], clientId: string, subjectAct: unknown, maxDepth: number): Actor | undefined {
  const previous = readActor(subjectAct);
  if (previous === null) throw new TokenExchangeRefused('subject_token_invalid', 'the subject token is invalid', 'malformed act claim');
  if (mode === 'impersonation') return previous;
  const current: Actor = previous === undefined ? { sub: clientId } : { sub: clientId, act: previous };
  if (delegationDepth(current) > maxDepth) {
    throw new TokenExchangeRefused('delegation_too_deep', `the subject token's delegation chain is too long: at most ${maxDepth} actors`);
  }
  return current;
}

/**
 * RFC 8693 §2.1 `scope`, only ever narrowed: within the subject token's scope and the
 * client's registered scope; omitted, the scope both allow (in the subject token's order,
 * possibly none). `subjectScope` undefined: an external subject token, which holds no scope
 * of this server, so the client's registration alone limits it (grantedScope, RFC 6749 §3.3).
 */
export function exchangedScope(requested: string | undefined, subjectScope: string | undefined, client: Pick<Client, 'metadata'>): string {
  if (subjectScope === undefined) return refusedAs('scope_not_allowed', () => grantedScope(requested, client));
  const subject = new Set(scopeList(subjectScope));
  const registered = new Set(scopeList(client.metadata.scope));
  if (requested === undefined) return [...subject].filter((s) => registered.has(s)).join(' ');
  const tokens = requested.split(' ');
  if (!tokens.every(isScopeToken)) {
    throw new TokenExchangeRefused('scope_not_allowed', 'scope must be scope-tokens separated by single spaces (RFC 6749 §3.3)');
  }
  const unique = [...new Set(tokens)];
  const beyondSubject = unique.filter((s) => !subject.has(s));
  if (beyondSubject.length > 0) {
    throw new TokenExchangeRefused('scope_exceeds_subject', `scope exceeds the subject token's scope: ${beyondSubject.join(' ').slice(0, 200)}`);
  }
  const beyondClient = unique.filter((s) => !registered.has(s));
  if (beyondClient.length > 0) throw new TokenExchangeRefused('scope_not_allowed', `scope not allowed for this client: ${beyondClient.join(' ').slice(0, 200)}`);
  return unique.join(' ');
}

/** At most this many `audience` parameters, as resolveAudience allows `resource` ones. */
const MAX_AUDIENCES = 10;

/**
 * RFC 8693 §2.1 `resource` and `audience`: the new token's `aud` is exactly what was asked
 * (de-duplicated). A resource follows resolveAudience (RFC 8707 §2: the client's registered
 * resources or the issuer); an audience, a logical name, must be one of the client's resources
 * or its `token_exchange.audiences`. Anything else is invalid_target (RFC 8693 §2.2.2).
 * Nothing asked: the client's first registered resource, else the issuer, as resolveAudience.
 */
export function exchangedAudience(
  resources: readonly string[], audiences: readonly string[], client: Client, issuer: string, policy: ExchangePolicy, subjectAud: Audience | undefined,
): Audience {
  if (audiences.length > MAX_AUDIENCES) throw new TokenExchangeRefused('invalid_parameter', 'too many audience parameters');
  const fromResources = refusedAs('target_not_allowed', () => resolveAudience(resources, client, issuer));
  let aud = fromResources;
  if (audiences.length > 0) {
    const refused = audiences.find((a) => !client.metadata.resources.includes(a) && !policy.audiences.includes(a));
    if (refused !== undefined) throw new TokenExchangeRefused('target_not_allowed', 'audience not allowed for this client');
    aud = asAudience([...resources, ...audiences]);
  }
  // This server's own audience (UserInfo) only where the subject token already had it, or the
  // administrator listed it: otherwise a resource server handed a user's token could trade it
  // for one that reads the user's profile, which that token's audience never allowed.
  const namesIssuer = (a: Audience | undefined) => a !== undefined && audienceIncludes(a, issuer);
  if (namesIssuer(aud) && !namesIssuer(subjectAud) && !policy.audiences.includes(issuer)) {
    throw new TokenExchangeRefused('target_not_allowed', 'this server\'s own audience (UserInfo) is not allowed: the subject token was not for it');
  }
  return aud;
}

/**
 * The new token's lifetime: the client's access token lifetime, but never past the subject
 * token's `exp` (nothing issued from a token outlives it). None left: the subject expired.
 */
export function exchangedTtl(ttl: number, subjectExp: number, nowSeconds: number): number {
  // Whole seconds (RFC 7519 §2 NumericDate may be fractional; our tokens' exp is an integer).
  const left = Math.min(ttl, Math.floor(subjectExp) - nowSeconds);
  if (left <= 0) throw new TokenExchangeRefused('subject_expired', 'the subject token has expired');
  return left;
}
