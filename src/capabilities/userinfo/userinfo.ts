import { clientHonours, type Client } from '../../oauth/client.js';
import { claimsForScopes, type ClaimSource } from '../../oauth/claims.js';
import { InsufficientScope, InvalidRequest, InvalidToken } from '../../oauth/errors.js';
import { namesUser } from '../../oauth/access-token-liveness.js';
import { audienceIncludes } from '../../oauth/audience.js';
import { verifyAccessToken, type AccessTokenDeps } from '../../oauth/tokens.js';

export interface UserInfoDeps extends AccessTokenDeps {
  clients: { get(clientId: string): Promise<Client | undefined> };
  users: { findById(id: string): Promise<(ClaimSource & { disabled: boolean }) | undefined> };
  /** The same revocation check introspection makes (jti denylist, revoked grant). */
  isRevoked(claims: { jti: string; client_id: string; gid?: string }): Promise<boolean>;
}

/**
 * The bearer token of a UserInfo request (RFC 6750 §2.1 header, or §2.2 form body on POST);
 * never the query string (§2.3, it ends up in logs). More than one way at once: invalid_request.
 */
export function userInfoAccessToken(authorization: string | undefined, formToken: unknown): string {
  const fromHeader = authorization !== undefined ? /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization)?.[1] : undefined;
  if (authorization !== undefined && fromHeader === undefined) throw new InvalidToken('the Authorization header must be "Bearer <token>"');
  if (formToken !== undefined && typeof formToken !== 'string') throw new InvalidRequest('access_token must not be repeated');
  if (fromHeader !== undefined && formToken !== undefined) throw new InvalidRequest('send the access token one way only (RFC 6750 §2)');
  const token = fromHeader ?? (formToken as string | undefined);
  if (!token) throw new InvalidToken('an access token is required');
  return token;
}

/**
 * OpenID Connect Core §5.3: the claims of the user a live access token was issued for, as its
 * scopes release them (§5.4). The token must come from a user's grant (a client_credentials
 * token has no user), have the issuer among its audiences, and carry `openid`; revoked,
 * expired, foreign, another resource's, or a disabled user's tokens are invalid_token
 * (RFC 6750 §3.1).
 */
export async function userInfo(token: string, deps: UserInfoDeps): Promise<Record<string, unknown>> {
  const verified = await verifyAccessToken(deps, token);
  if (!verified.valid) throw new InvalidToken('the access token is invalid or expired', verified.reason);
  const c = verified.claims;
  if (!namesUser(c)) throw new InvalidToken('the access token was not issued for a user');
  // RFC 9068 §4: UserInfo is a resource of this server, so the token must name it (the issuer)
  // among its audiences. A token issued for another resource server (RFC 8707) is refused here,
  // or that server could read the user's profile with a token meant only for itself.
  if (!audienceIncludes(c.aud, deps.issuer)) {
    throw new InvalidToken('the access token was issued for another resource: its audience must include the issuer to be used at UserInfo', 'audience');
  }
  if (await deps.isRevoked(c)) throw new InvalidToken('the access token is invalid or expired', 'revoked');
  if (!clientHonours(await deps.clients.get(c.client_id), c.iat)) throw new InvalidToken('the access token is invalid or expired', 'client gone, disabled, or the token predates its cutoff');
  const scopes = (c.scope ?? '').split(' ');
  if (!scopes.includes('openid')) throw new InsufficientScope('the access token lacks the openid scope');
  const user = await deps.users.findById(c.sub);
  if (!user || user.disabled) throw new InvalidToken('the access token is invalid or expired', 'user gone or disabled');
  return claimsForScopes(user, scopes);
}
