import { epochSeconds } from '../../platform/clock.js';
import { authenticateClient, type AuthenticatedClient, type ClientAuthDeps, type ClientAuthInput } from '../../oauth/client-auth/authenticate.js';
import { InvalidRequest } from '../../oauth/errors.js';
import { readParams } from '../../oauth/params.js';
import { REFRESH_TOKEN_FORMAT } from '../../oauth/refresh-families/rotation.js';
import { sha256 } from '../../platform/crypto.js';
import { revocationHorizon, verifyAccessToken, type AccessTokenDeps } from '../../oauth/tokens.js';
import type { StoredRefreshToken } from '../../oauth/refresh-families/store.js';

/** What happened, for the metric and the audit event; the client gets 200 (RFC 7009 §2.2) unless the token is another client's. */
export type RevocationOutcome =
  | { revoked: true; kind: 'access_token'; jti: string }
  | { revoked: true; kind: 'refresh_token'; familyId: string }
  | { revoked: false; kind: 'access_token' | 'refresh_token' | 'unknown'; reason: string };

/**
 * A handler for one kind of token. It recognises a token of its kind (else `undefined`, and
 * the next handler is tried) and revokes it if it belongs to `caller`.
 */
export interface RevocationHandler {
  kind: 'access_token' | 'refresh_token';
  revoke(token: string, caller: AuthenticatedClient, deps: RevocationDeps): Promise<RevocationOutcome | undefined>;
}

export interface RevocationDeps extends ClientAuthDeps, AccessTokenDeps {
  denylistAccessToken(jti: string, clientId: string, expiresAt: Date): Promise<void>;
  findRefreshToken(tokenHash: Buffer): Promise<StoredRefreshToken | undefined>;
  /** Revokes a grant: its refresh family and every access token carrying its `gid`. */
  revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void>;
}

/** RFC 7009 §2.1 + DESIGN: an access token's jti is denylisted until its exp. */
export const accessTokenRevocation: RevocationHandler = {
  kind: 'access_token',
  async revoke(token, caller, deps) {
    const verified = await verifyAccessToken(deps, token, { allowExpired: true });
    if (!verified.valid) return undefined;
    const { jti, client_id: clientId, exp } = verified.claims;
    // RFC 7009 §2.1: "verifies whether the token was issued to the client making the
    // revocation request. If this validation fails, the request is refused and the client is
    // informed of the error". The token stays valid. (It reveals nothing the caller could not
    // learn at /introspect, which every confidential client may call.)
    if (clientId !== caller.client.clientId) throw new InvalidRequest('the token was not issued to this client (RFC 7009 §2.1)');
    if (exp <= epochSeconds(deps.clock)) return { revoked: false, kind: 'access_token', reason: 'already expired' };
    await deps.denylistAccessToken(jti, clientId, new Date(exp * 1000));
    return { revoked: true, kind: 'access_token', jti };
  },
};

/**
 * RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of the same
 * grant — here, its whole family (every generation, and every access token carrying its gid).
 */
export const refreshTokenRevocation: RevocationHandler = {
  kind: 'refresh_token',
  async revoke(token, caller, deps) {
    if (!REFRESH_TOKEN_FORMAT.test(token)) return undefined;
    const found = await deps.findRefreshToken(sha256(token));
    if (!found) return undefined;
    // The same rule as for access tokens: another client's token is refused and left as it is.
    if (found.family.client_id !== caller.client.clientId) throw new InvalidRequest('the token was not issued to this client (RFC 7009 §2.1)');
    if (found.family.revoked_at !== null) return { revoked: false, kind: 'refresh_token', reason: 'already revoked' };
    const expiresAt = revocationHorizon(deps.clock.now());
    await deps.revokeGrant(found.family.id, found.family.client_id, 'revoked_by_client', expiresAt);
    return { revoked: true, kind: 'refresh_token', familyId: found.family.id };
  },
};

export const revocationHandlers: readonly RevocationHandler[] = [accessTokenRevocation, refreshTokenRevocation];

/**
 * RFC 7009 §2.1: the client authenticates (public clients identify themselves with client_id);
 * the hint only orders the handlers tried (§2.1: the server may ignore it); an unknown or
 * invalid token is not an error (§2.2).
 */
export async function revoke(input: ClientAuthInput, deps: RevocationDeps): Promise<{ caller: AuthenticatedClient; outcome: RevocationOutcome }> {
  const caller = await authenticateClient(input, deps, { allowPublic: true });
  const { token, token_type_hint: hint } = readParams(input.body, ['token', 'token_type_hint']);
  if (token === undefined) throw new InvalidRequest('token is required (RFC 7009 §2.1)');
  const ordered = [...revocationHandlers].sort((a, b) => Number(b.kind === hint) - Number(a.kind === hint));
  for (const handler of ordered) {
    const outcome = await handler.revoke(token, caller, deps);
    if (outcome) return { caller, outcome };
  }
  return { caller, outcome: { revoked: false, kind: hint === 'refresh_token' ? 'refresh_token' : 'unknown', reason: 'not a token this server recognises' } };
}
