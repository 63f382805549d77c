import { decodeJwt } from 'jose';
import { InvalidGrant, InvalidRequest, OAuthError } from '../../oauth/errors.js';
import { issueAccessToken, type TokenIssuingDeps } from '../../oauth/tokens.js';
import { grantedScope } from '../../oauth/scope.js';
import { resolveAudience } from '../../oauth/audience.js';
import { epochSeconds } from '../../platform/clock.js';
import { ExternalTokenRejected, type ExternalTokenVerifier, type VerifiedExternalToken } from '../../oauth/trusted-issuers/external-token.js';
import { principalActive, principalSubject } from '../../oauth/trusted-issuers/principal.js';
import type { Client } from '../../oauth/client.js';
import {
  tokenResponse, type AuditedRefusal, type GrantAuditEvent, type GrantInput, type GrantResult, type GrantType, type TokenGrant,
} from '../../oauth/token-endpoint/grant.js';
import type { JwtBearerMetrics } from './metrics.js';

/** RFC 7523 §2.1: the grant_type value. */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/**
 * RFC 7523 §3.1 makes client authentication optional for this grant; Latchkey requires it
 * (confidential clients only): the assertion then stands for a subject only in the hands of a
 * client an administrator trusted with its issuer, and a stolen assertion alone buys nothing.
 */
export const JWT_BEARER: GrantType = {
  grantType: JWT_BEARER_GRANT_TYPE,
  publicClients: false,
  clientMetadataProblems: (m) => [
    ...(m.token_endpoint_auth_method === 'none' ? ['jwt-bearer requires a confidential client (token_endpoint_auth_method other than none)'] : []),
    ...(m.trusted_subject_issuers === undefined ? ['jwt-bearer requires trusted_subject_issuers, set by an administrator'] : []),
  ],
};

/** What the JWT bearer grant uses, beyond issuing tokens. */
export interface JwtBearerGrantDeps extends TokenIssuingDeps {
  /** The trusted external issuers (the port; src/oauth/trusted-issuers/external-token.ts). */
  externalTokens: ExternalTokenVerifier;
  /** Whether a user exists and is enabled. */
  userActive(userId: string): Promise<boolean>;
  /** The client cache (a client principal must exist and be enabled). */
  clients: { get(clientId: string): Promise<Client | undefined> };
  metrics: JwtBearerMetrics;
}

/** A refusal of this grant, audited as jwt_bearer.refused; the answer is the cause's (code, description, status). */
export class JwtBearerRefused extends OAuthError implements AuditedRefusal {
  constructor(cause: OAuthError, private readonly fields: Record<string, unknown>) {
    super(cause.error, cause.description, cause.status, cause.debug);
    this.headers = cause.headers;
  }

  get auditEvent(): GrantAuditEvent {
    return { event: 'jwt_bearer.refused', fields: this.fields };
  }
}

/** What is known of the assertion so far: the refusal's metric label and audit fields (identifiers only). */
interface Seen {
  /** A listed, trusted issuer's URL (never an unlisted one: that is the presenter's text). */
  issuer?: string;
  issuerName?: string;
  externalSub?: string;
}

/** The unverified `iss`, only to choose the issuer (RFC 7523 §3 item 1); undefined for anything that is no JWT with one. */
function unverifiedIssuer(assertion: string): string | undefined {
  try {
    const { iss } = decodeJwt(assertion);
    return typeof iss === 'string' && iss !== '' ? iss : undefined;
  } catch {
    return undefined;
  }
}

const INVALID = 'the assertion is invalid, expired or already used';

/**
 * RFC 7523 §2.1: a confidential client presents a JWT of a trusted external issuer and gets an
 * access token for the Latchkey principal the issuer's subject mapping makes of it. The client
 * is already authenticated and registered for this grant (the token endpoint checked both).
 */
export function jwtBearerGrant(deps: JwtBearerGrantDeps): TokenGrant<'assertion' | 'scope'> {
  return {
    ...JWT_BEARER,
    parameters: ['assertion', 'scope'],

    async handle(input) {
      const seen: Seen = {};
      try {
        const result = await grant(deps, input, seen);
        deps.metrics.grants.inc({ issuer: seen.issuerName ?? 'unknown', outcome: 'issued' });
        return result;
      } catch (err) {
        deps.metrics.grants.inc({ issuer: seen.issuerName ?? 'unknown', outcome: err instanceof OAuthError ? err.error : 'server_error' });
        if (!(err instanceof OAuthError) || err.status >= 500) throw err;
        throw new JwtBearerRefused(err, {
          client_id: input.client.clientId,
          ...(seen.issuer ? { issuer: seen.issuer } : {}),
          ...(seen.issuerName ? { issuer_name: seen.issuerName } : {}),
          ...(seen.externalSub ? { external_sub: seen.externalSub } : {}),
          error: err.error,
          // Every debug text of this grant is safe to keep (the verifier's reasons never quote the token).
          reason: err.debug ?? err.description,
        });
      }
    },
  };
}

async function grant(deps: JwtBearerGrantDeps, { client, params, resources }: GrantInput<'assertion' | 'scope'>, seen: Seen): Promise<GrantResult> {
  // RFC 7523 §2.1: the assertion parameter is required (a repeat was refused by readParams).
  const assertion = params.assertion;
  if (assertion === undefined) throw new InvalidRequest('assertion is required (RFC 7523 §2.1)');

  // RFC 7523 §3 item 1: the issuer must be one this client may present (trusted_subject_issuers).
  // The unverified iss only chooses; an unlisted one is refused before any key is fetched or jti spent.
  const iss = unverifiedIssuer(assertion);
  if (iss === undefined) throw new InvalidGrant(INVALID, 'the assertion is not a JWT with an iss');
  const listed = client.metadata.trusted_subject_issuers ?? [];
  if (!listed.includes(iss)) throw new InvalidGrant('the assertion\'s issuer is not trusted for this client', `iss ${iss.slice(0, 200)} not in trusted_subject_issuers`);
  seen.issuer = iss;
  if (!deps.externalTokens.trusts(iss)) throw new InvalidGrant('the assertion\'s issuer is not trusted for this client', 'issuer unknown or disabled');

  // RFC 6749 §3.3 and RFC 8707 §2, within the client's registration. Checked before the assertion
  // is verified: verifying spends its jti (RFC 7523 §3 item 7), and a request refused for its
  // scope or resource should leave the assertion usable for a corrected one.
  const scope = grantedScope(params.scope, client);
  const aud = resolveAudience(resources, client, deps.issuer);

  // RFC 7523 §3.1: an invalid assertion is invalid_grant; the verifier's reason goes to the log only.
  let verified: VerifiedExternalToken;
  try {
    verified = await deps.externalTokens.verify(assertion, 'authorization_grant');
  } catch (err) {
    if (err instanceof ExternalTokenRejected) throw new InvalidGrant(INVALID, err.reason);
    throw err;
  }
  seen.issuerName = verified.issuerName;
  seen.externalSub = verified.subject;
  // The verifier checked the iss it chose; the one that was verified must be listed too.
  if (verified.issuer !== iss) throw new InvalidGrant(INVALID, 'the verified issuer is not the one the assertion named');

  // RFC 7523 §3 item 2: the subject is the principal the issuer's subject mapping names, or nobody.
  const principal = verified.principal;
  if (principal === undefined) throw new InvalidGrant(`no subject mapping rule of issuer ${verified.issuerName} matches this assertion`);
  if (!(await principalActive(principal, deps))) {
    throw new InvalidGrant('the assertion\'s subject is not an active user or client', `${principal.kind} ${principal.kind === 'user' ? principal.userId : principal.clientId} unknown or disabled`);
  }
  const { sub, claims } = principalSubject(principal);

  // A token issued from the assertion never outlives it.
  const ttl = Math.min(client.metadata.access_token_ttl ?? deps.accessTokenTtl, Math.floor(verified.exp) - epochSeconds(deps.clock));
  if (ttl <= 0) throw new InvalidGrant(INVALID, 'the assertion expired');

  const token = issueAccessToken(deps, {
    sub,
    // RFC 9068 §2.2: client_id is the client that asked, whoever the subject is.
    clientId: client.clientId,
    aud,
    scope,
    ttl,
    extraClaims: claims,
  });
  // RFC 7523 §2.1 leaves a refresh token to the server: none is issued (a new assertion gets a new token).
  // One audit event per token: token.issued names the assertion's issuer, its subject and the principal.
  return {
    response: tokenResponse(token, scope),
    issued: {
      sub, scope, jti: token.jti,
      details: { aud, issuer: verified.issuer, issuer_name: verified.issuerName, external_sub: verified.subject, principal_type: principal.kind },
    },
  };
}
