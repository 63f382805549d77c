import type { Clock } from '../../platform/clock.js';
import type { KeyRing } from '../../platform/keys/keyring.js';
import type { Redemption } from '../../capabilities/authorization-code/code-store.js';
import type { Client } from '../client.js';
import type { RefreshTokenDeps } from '../refresh-families/rotation.js';

/** The successful token response (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
}

/**
 * RFC 6749 §5.1: the successful token response of any grant. `scope` only when one was
 * granted; a refresh token and an ID token only when the grant issued them.
 */
export function tokenResponse(
  accessToken: { token: string; expiresIn: number }, scope: string, issued: { refreshToken?: string | undefined; idToken?: string | undefined } = {},
): TokenResponse {
  // Built by assignment, not spreads: this runs for every token issued.
  const response: TokenResponse = { access_token: accessToken.token, token_type: 'Bearer', expires_in: accessToken.expiresIn };
  if (scope) response.scope = scope;
  if (issued.refreshToken) response.refresh_token = issued.refreshToken;
  if (issued.idToken) response.id_token = issued.idToken;
  return response;
}

/** What a grant handler is given: the authenticated client and the parameters it declared. */
export interface GrantInput<P extends string> {
  client: Client;
  /** The grant's declared single-valued parameters (repeats already rejected). */
  params: Partial<Record<P, string>>;
  /** RFC 8707 `resource` values (the one parameter that may repeat). */
  resources: string[];
}

/** The narrow services a grant may use. Later grants add their stores here. */
export interface GrantDeps {
  keys: KeyRing;
  clock: Clock;
  issuer: string;
  /** Default access token lifetime (seconds); a client's `access_token_ttl` overrides it. */
  accessTokenTtl: number;
  /** ID token lifetime (seconds). */
  idTokenTtl: number;
  /** Authorization codes (src/store/authorization-codes.ts). */
  codes: { redeem(codeHash: Buffer, expected: { clientId: string; redirectUri: string; codeChallenge: string }, now: Date): Promise<Redemption> };
  users: { findById(id: string): Promise<{ disabled: boolean } | undefined> };
  /** Refresh token families (src/oauth/refresh-tokens.ts). */
  refreshTokens: RefreshTokenDeps;
  /**
   * Revokes a whole grant: its refresh family (same id) and every access token carrying its
   * `gid`, inactive until `expiresAt`.
   */
  revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void>;
}

export interface GrantResult {
  response: TokenResponse;
  /** For the token.issued audit event: identifiers, never the token. */
  issued: { sub: string; scope: string; jti: string };
  /** For the refresh.rotated audit event: the family and generation of the refresh token returned. */
  refresh?: { familyId: string; generation: number; outcome: 'issued' | 'rotated' | 'grace' };
}

/** One grant type: what it is called, the parameters it reads, and what it does (DESIGN). */
export interface Grant<P extends string = string> {
  grantType: string;
  parameters: readonly P[];
  handle(input: GrantInput<P>, deps: GrantDeps): Promise<GrantResult>;
}
