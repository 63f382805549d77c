import { narrowedAudience } from '../../oauth/audience.js';
import { idTokenUserClaims, type ClaimSource, type ClaimsRequest } from '../../oauth/claims.js';
import { sha256 } from '../../platform/crypto.js';
import { InvalidGrant, InvalidRequest } from '../../oauth/errors.js';
import { pkceExempt } from '../../oauth/client-metadata.js';
import type { RefreshMetrics } from '../../platform/observability/refresh-metrics.js';
import { CODE_VERIFIER, s256Challenge } from './pkce.js';
import type { AuthorizationCodeRecord, ExpectedRedemption, Redemption } from './code-store.js';
import { familyRevoked } from '../../oauth/refresh-families/revocation.js';
import { mayIssueRefreshToken, startRefreshFamily, type RefreshTokenDeps } from '../../oauth/refresh-families/rotation.js';
import { assertIdTokenSignable, issueUserTokens, revocationHorizon, type TokenIssuingDeps } from '../../oauth/tokens.js';
import {
  tokenResponse, type AuditedRefusal, type GrantAuditEvent, type GrantInput, type GrantResult, type GrantType, type TokenGrant,
} from '../../oauth/token-endpoint/grant.js';

/** RFC 7636 §4.6: the code_verifier does not match the code_challenge (counted apart from other invalid_grant). */
export class PkceVerificationFailed extends InvalidGrant {}

/**
 * RFC 6749 §4.1.2 / RFC 9700 §4.5: a code presented after it was redeemed; the grant is revoked.
 * Each such request is its own audit event (who presented it, the grant), never the code.
 */
export class AuthorizationCodeReplayed extends InvalidGrant implements AuditedRefusal {
  constructor(readonly presentedBy: string, readonly code: Pick<AuthorizationCodeRecord, 'grant_id' | 'client_id' | 'user_id'>) {
    super('the authorization code was already used; the tokens issued from it are revoked', `grant ${code.grant_id} revoked`);
  }

  get auditEvent(): GrantAuditEvent {
    const { grant_id: grantId, client_id: issuedTo, user_id: sub } = this.code;
    return {
      event: 'authorization_code.replayed',
      fields: { client_id: this.presentedBy, sub, grant_id: grantId, ...(issuedTo !== this.presentedBy ? { issued_to: issuedTo } : {}) },
    };
  }
}

const MAX_CODE_LENGTH = 256;
const RESOURCE_NOT_GRANTED = 'resource was not part of the authorization request';

/** RFC 6749 §4.1: public clients too (with PKCE, OAuth 2.1 §7.5.1); a client using it must register a redirect URI. */
export const AUTHORIZATION_CODE: GrantType = {
  grantType: 'authorization_code',
  publicClients: true,
  clientMetadataProblems: (m) => (m.redirect_uris.length === 0 ? ['authorization_code requires at least one redirect_uri'] : []),
};

/** What the authorization code grant uses, beyond issuing tokens. */
export interface AuthorizationCodeGrantDeps extends TokenIssuingDeps {
  /** Authorization codes (./code-store.ts). */
  codes: { redeem(codeHash: Buffer, expected: ExpectedRedemption, now: Date): Promise<Redemption> };
  users: { findById(id: string): Promise<(ClaimSource & { disabled: boolean }) | undefined> };
  /** Refresh token families (src/oauth/refresh-families/rotation.ts). */
  refreshTokens: RefreshTokenDeps;
  /**
   * Revokes a whole grant: its refresh family (same id) and every access token carrying its
   * `gid`, inactive until `expiresAt`.
   */
  revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void>;
  /** latchkey_pkce_failures_total */
  pkceFailures: { inc(): void };
  refreshMetrics: Pick<RefreshMetrics, 'refreshTokens' | 'familiesRevoked'>;
}

/**
 * RFC 6749 §4.1.3 with RFC 7636 §4.5 and OpenID Connect Core §3.1.3: the client exchanges the
 * code it was given, proving the redirect URI and the PKCE verifier. The code is redeemed in
 * one conditional UPDATE (./code-store.ts); a code presented again revokes every token issued
 * from it (RFC 6749 §4.1.2), which access tokens name by their `gid`, and the refresh family
 * born from it (its id is the grant id).
 *
 * N requests presenting one code at once: exactly one redeems it and answers 200 with its
 * tokens; each of the N-1 others is a replay — invalid_grant, audited, the grant revoked — and
 * so the winner's tokens are dead too, whichever request's statements ran first
 * (startRefreshFamily: why no interleaving leaves the family live).
 */
export function authorizationCodeGrant(deps: AuthorizationCodeGrantDeps): TokenGrant<'code' | 'redirect_uri' | 'code_verifier'> {
  return {
    ...AUTHORIZATION_CODE,
    parameters: ['code', 'redirect_uri', 'code_verifier'],
    async handle(input) {
      try {
        return await redeem(input, deps);
      } catch (err) {
        if (err instanceof PkceVerificationFailed) deps.pkceFailures.inc();
        throw err;
      }
    },
  };
}

async function redeem(
  { client, params, resources, ip }: GrantInput<'code' | 'redirect_uri' | 'code_verifier'>, deps: AuthorizationCodeGrantDeps,
): Promise<GrantResult> {
  const { code, redirect_uri: redirectUri, code_verifier: verifier } = params;
  if (code === undefined) throw new InvalidRequest('code is required');
  // Every authorization request carried redirect_uri (it is required there), so here too (RFC 6749 §4.1.3).
  if (redirectUri === undefined) throw new InvalidRequest('redirect_uri is required');
  // A client exempted from PKCE may send no verifier; its code then must have been issued
  // without a challenge (the conditional UPDATE matches code_challenge IS NULL).
  if (verifier === undefined && !pkceExempt(client.metadata)) throw new InvalidRequest('code_verifier is required (PKCE, RFC 7636 §4.5)');
  if (verifier !== undefined && !CODE_VERIFIER.test(verifier)) throw new PkceVerificationFailed('code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)');
  if (code.length > MAX_CODE_LENGTH) throw new InvalidGrant('the authorization code is invalid or expired');

  assertIdTokenSignable(deps.keys, client.metadata.id_token_signed_response_alg);
  const now = deps.clock.now();
  const codeChallenge = verifier === undefined ? null : s256Challenge(verifier);
  // The resources are part of the conditional UPDATE: a resource the client can correct does not burn the code.
  const redemption = await deps.codes.redeem(sha256(code), { clientId: client.clientId, redirectUri, codeChallenge, resources }, now);
  switch (redemption.outcome) {
    case 'redeemed':
      break;
    case 'replayed': {
      // RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used twice was stolen or leaked; revoke what it gave.
      const c = redemption.code;
      await deps.revokeGrant(c.grant_id, c.client_id, 'authorization_code_replayed', revocationHorizon(now));
      throw new AuthorizationCodeReplayed(client.clientId, c);
    }
    case 'mismatch': {
      const c = redemption.code;
      if (c.client_id !== client.clientId) throw new InvalidGrant('the authorization code was issued to another client');
      if (c.redirect_uri !== redirectUri) throw new InvalidGrant('redirect_uri differs from the authorization request\'s');
      // RFC 9700 §2.1.1 (PKCE downgrade): a code_verifier is accepted only for a code whose
      // request had a code_challenge; and a code with a challenge needs its verifier.
      if (c.code_challenge === null && codeChallenge !== null) throw new PkceVerificationFailed('code_verifier was sent but the authorization request had no code_challenge (RFC 9700 §2.1.1)');
      if (c.code_challenge !== null && codeChallenge === null) throw new InvalidRequest('code_verifier is required (PKCE, RFC 7636 §4.5)');
      if (c.code_challenge !== codeChallenge) throw new PkceVerificationFailed('code_verifier does not match the code_challenge (RFC 7636 §4.6)');
      // Only the resources are left: invalid_target (RFC 8707 §2.2), the code still unredeemed.
      narrowedAudience(resources, c.audience as string | string[], RESOURCE_NOT_GRANTED);
      throw new InvalidGrant('the authorization code is invalid or expired', 'mismatch without a differing binding');
    }
    default:
      throw new InvalidGrant('the authorization code is invalid or expired');
  }
  const granted = redemption.code;
  const user = await deps.users.findById(granted.user_id);
  if (!user || user.disabled) throw new InvalidGrant('the user of this authorization code is no longer active');

  // RFC 8707 §2.2: the token request may narrow the audience the authorization request named (the UPDATE checked it may).
  const aud = narrowedAudience(resources, granted.audience as string | string[], RESOURCE_NOT_GRANTED);

  const { accessToken: token, idToken } = await issueUserTokens(deps, {
    grantId: granted.grant_id, sub: granted.user_id, aud, scope: granted.scope,
    client: { clientId: client.clientId, accessTokenTtl: client.metadata.access_token_ttl, idTokenAlg: client.metadata.id_token_signed_response_alg },
    authTime: granted.auth_time, nonce: granted.nonce, amr: granted.amr, acr: granted.acr, sid: granted.sid,
    // OpenID Connect Core §5.5: the claims request's id_token member, or the client's id_token_scope_claims.
    idTokenClaims: idTokenUserClaims(user, granted.scope.split(' '), {
      allScopeClaims: client.metadata.id_token_scope_claims === true, requested: granted.claims as ClaimsRequest | null,
    }),
  });
  // The rule for a refresh token is mayIssueRefreshToken's (offline_access granted, client registered for refresh_token).
  const family = mayIssueRefreshToken(client, granted.scope)
    ? await startRefreshFamily(deps.refreshTokens, client, {
      id: granted.grant_id, userId: granted.user_id, scope: granted.scope, audience: granted.audience as string | string[],
      sid: granted.sid, authTime: granted.auth_time, amr: granted.amr, acr: granted.acr, ip,
    }, now)
    : undefined;
  if (family) deps.refreshMetrics.refreshTokens.inc({ outcome: 'issued' });
  const audit: GrantAuditEvent[] = [];
  // A replay revoked the grant while this redemption ran, and this request revoked the family:
  // this request records it (else the replay's revokeGrant did), so each family revoked is one event.
  if (family?.revoked) {
    const revoked = familyRevoked({ id: granted.grant_id, client_id: granted.client_id, user_id: granted.user_id }, 'authorization_code_replayed');
    deps.refreshMetrics.familiesRevoked.inc({ reason: revoked.reasonLabel });
    audit.push(revoked.audit);
  }
  return {
    response: tokenResponse(token, granted.scope, { refreshToken: family?.token, idToken }),
    issued: { sub: granted.user_id, scope: granted.scope, jti: token.jti },
    ...(audit.length > 0 ? { audit } : {}),
  };
}
