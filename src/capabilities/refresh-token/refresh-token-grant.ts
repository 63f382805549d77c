import { InvalidGrant, InvalidRequest } from '../../oauth/errors.js';
import { idTokenUserClaims, type ClaimSource } from '../../oauth/claims.js';
import { newSuccessor, REFRESH_TOKEN_FORMAT } from '../../oauth/refresh-families/rotation.js';
import { sha256 } from '../../platform/crypto.js';
import { assertIdTokenSignable, issueUserTokens, revocationHorizon, type TokenIssuingDeps } from '../../oauth/tokens.js';
import { narrowedScope, scopeList } from '../../oauth/scope.js';
import { narrowedAudience } from '../../oauth/audience.js';
import type { RefreshMetrics } from '../../platform/observability/refresh-metrics.js';
import type { RefreshTokenDeps } from '../../oauth/refresh-families/rotation.js';
import { tokenResponse, type AuditedRefusal, type GrantAuditEvent, type GrantInput, type GrantResult, type GrantType, type TokenGrant } from '../../oauth/token-endpoint/grant.js';

/**
 * A rotated refresh token presented after its grace window, or after its successor was itself
 * rotated: the family is revoked (RFC 9700 §4.14.2). Counted and audited apart from other
 * invalid_grant answers.
 */
export class RefreshTokenReused extends InvalidGrant implements AuditedRefusal {
  constructor(readonly familyId: string, readonly clientId: string, readonly sub: string, readonly generation: number) {
    super('the refresh token was already used; every token issued from this grant is revoked', `family ${familyId} revoked: generation ${generation} reused`);
  }

  get auditEvent(): GrantAuditEvent {
    return { event: 'refresh.reuse_detected', fields: { client_id: this.clientId, sub: this.sub, grant_id: this.familyId, generation: this.generation } };
  }
}

/** RFC 6749 §6: any client holding a refresh token, public ones too (their tokens rotate, RFC 9700 §4.14.2). */
export const REFRESH_TOKEN: GrantType = { grantType: 'refresh_token', publicClients: true };

/** What the refresh_token grant uses, beyond issuing tokens. */
export interface RefreshTokenGrantDeps extends TokenIssuingDeps {
  users: { findById(id: string): Promise<(ClaimSource & { disabled: boolean }) | undefined> };
  /** Refresh token families (src/oauth/refresh-families/rotation.ts). */
  refreshTokens: RefreshTokenDeps;
  /** Revokes a whole grant: its refresh family and every access token carrying its `gid`, inactive until `expiresAt`. */
  revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void>;
  refreshMetrics: Pick<RefreshMetrics, 'refreshTokens' | 'reuseDetected'>;
}

const INVALID = 'the refresh token is invalid, expired or revoked';

/**
 * What a family's audience still may be: the resources it was granted that the client still has
 * registered (an administrator may have removed some since), and the issuer, the audience of a
 * client that registered none. Nothing left: the grant can no longer be used.
 */
function stillRegisteredAudience(granted: string | string[], registered: readonly string[], issuer: string): string | string[] {
  const kept = ([] as string[]).concat(granted).filter((aud) => aud === issuer || registered.includes(aud));
  if (kept.length === 0) throw new InvalidGrant('the resources of this grant are no longer registered for the client');
  return kept.length === 1 ? kept[0]! : kept;
}

/**
 * RFC 6749 §6 with rotation (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1): the presented token must be
 * its family's active one; it is rotated in one conditional UPDATE and a successor of the next
 * generation issued. A rotated token presented again within the grace window returns the same
 * successor (never a second one: the family does not branch) and revokes nothing; later, or
 * once the successor was itself rotated, it is reuse and the whole family is revoked.
 */
export function refreshTokenGrant(deps: RefreshTokenGrantDeps): TokenGrant<'refresh_token' | 'scope'> {
  return {
    ...REFRESH_TOKEN,
    parameters: ['refresh_token', 'scope'],
    async handle(input) {
      try {
        return await rotate(input, deps);
      } catch (err) {
        if (err instanceof RefreshTokenReused) deps.refreshMetrics.reuseDetected.inc();
        throw err;
      }
    },
  };
}

async function rotate({ client, params, resources, ip }: GrantInput<'refresh_token' | 'scope'>, deps: RefreshTokenGrantDeps): Promise<GrantResult> {
  const { refresh_token: presented, scope: requested } = params;
  if (presented === undefined) throw new InvalidRequest('refresh_token is required');
  if (!REFRESH_TOKEN_FORMAT.test(presented)) throw new InvalidGrant(INVALID);
  assertIdTokenSignable(deps.keys, client.metadata.id_token_signed_response_alg);
  const refresh = deps.refreshTokens;
  const now = deps.clock.now();
  const hash = sha256(presented);

  let found = await refresh.store.find(hash);
  if (!found) throw new InvalidGrant(INVALID);
  const family = found.family;
  // RFC 6749 §6: the refresh token is bound to the client it was issued to. Nothing changes.
  if (family.client_id !== client.clientId) throw new InvalidGrant('the refresh token was issued to another client');
  // What was granted, less what the client may no longer have (an administrator narrowed its
  // registered scope or resources since): a family never outlives a change of the client's registration.
  const allowed = new Set(scopeList(client.metadata.scope));
  const scope = narrowedScope(requested, family.scope.split(' ').filter((t) => allowed.has(t)).join(' '));
  const aud = narrowedAudience(resources, stillRegisteredAudience(family.audience as string | string[], client.metadata.resources, deps.issuer), 'resource was not part of the original grant');
  const user = await deps.users.findById(family.user_id);
  if (!user || user.disabled) throw new InvalidGrant('the user of this grant is no longer active');

  let issued: { token: string; generation: number; outcome: 'rotated' | 'grace' } | undefined;
  if (found.state === 'active') {
    const next = newSuccessor(refresh, client, family.id, found.generation + 1, now);
    const rotated = await refresh.store.rotate(hash, client.clientId, next.successor, now, ip);
    if (rotated) issued = { token: next.token, generation: rotated.generation, outcome: 'rotated' };
    // Not rotated: another request rotated it first, or it expired or was revoked meanwhile. Read again to say which.
    else found = await refresh.store.find(hash);
  }
  if (!issued) {
    if (!found || found.family.revoked_at !== null || found.state === 'revoked') throw new InvalidGrant(INVALID);
    if (found.family.absolute_expires_at.getTime() <= now.getTime() || found.state === 'active') throw new InvalidGrant(INVALID, 'expired');
    // A rotated token. Within the window and while its successor is still the active token: that same successor.
    const windowEnds = (found.rotatedAt?.getTime() ?? 0) + refresh.gracePeriod * 1000;
    if (refresh.gracePeriod > 0 && now.getTime() < windowEnds && found.successorState === 'active' && found.successor) {
      const successor = refresh.sealer.open(family.id, found.generation + 1, found.successor);
      // Sealed under another key-encryption secret: nothing to return, and no sign of theft either.
      if (successor === undefined) throw new InvalidGrant(INVALID, 'successor does not decrypt');
      issued = { token: successor, generation: found.generation + 1, outcome: 'grace' };
    } else {
      // RFC 9700 §4.14.2: one of the two parties holding this family's tokens is not its client. Revoke it all.
      await deps.revokeGrant(family.id, family.client_id, 'refresh_token_reused', revocationHorizon(now));
      throw new RefreshTokenReused(family.id, family.client_id, family.user_id, found.generation);
    }
  }

  // OpenID Connect Core §12.2: the ID token is about the original authentication (its auth_time, sid), without nonce.
  const { accessToken: token, idToken } = await issueUserTokens(deps, {
    grantId: family.id, sub: family.user_id, aud, scope,
    client: { clientId: client.clientId, accessTokenTtl: client.metadata.access_token_ttl, idTokenAlg: client.metadata.id_token_signed_response_alg },
    authTime: family.auth_time, nonce: null, amr: family.amr, acr: family.acr, sid: family.sid,
    // The client's id_token_scope_claims; a claims request's id_token member answered the code's ID token only.
    idTokenClaims: idTokenUserClaims(user, scope.split(' '), { allScopeClaims: client.metadata.id_token_scope_claims === true }),
  });
  deps.refreshMetrics.refreshTokens.inc({ outcome: issued.outcome });
  return {
    response: tokenResponse(token, scope, { refreshToken: issued.token, idToken }),
    issued: { sub: family.user_id, scope, jti: token.jti },
    audit: [{
      event: 'refresh.rotated',
      fields: { client_id: client.clientId, sub: family.user_id, scope, grant_id: family.id, generation: issued.generation, grace: issued.outcome === 'grace' },
    }],
  };
}
