import { createHash, randomUUID } from 'node:crypto';
import { epochSeconds, type Clock } from '../platform/clock.js';
import { signJwt, verifyJwt } from '../platform/keys/jws.js';
import { SIGNING_ALGS, type KeyRing, type SigningAlg } from '../platform/keys/keyring.js';
import { TemporarilyUnavailable } from './errors.js';
import { sha256 } from '../platform/crypto.js';

/**
 * Access tokens: RFC 9068 JWTs, signed with the key ring's active key and not stored.
 * Issuance and verification live together so the two can never disagree on a claim.
 */

/** RFC 9068 §2.1: the `typ` header of a JWT access token. */
export const ACCESS_TOKEN_TYP = 'at+jwt';
/** The longest lifetime any access token can have (ACCESS_TOKEN_TTL and a client's access_token_ttl are capped here). */
export const MAX_ACCESS_TOKEN_TTL = 86400;

/**
 * Until when a revocation made now must be remembered: no access token issued before it can
 * live longer (the jti denylist and the revoked-grants set keep their entries this long).
 */
export function revocationHorizon(now: Date): Date {
  return new Date(now.getTime() + MAX_ACCESS_TOKEN_TTL * 1000);
}
/** Algorithms an access token may be verified with (never `none`, never HMAC). */
export const ACCESS_TOKEN_ALGS: readonly SigningAlg[] = SIGNING_ALGS;

export interface AccessTokenDeps {
  keys: KeyRing;
  clock: Clock;
  issuer: string;
  /** Tokens whose signature was already verified (introspection sees the same token once per API call). */
  verified?: VerifiedAccessTokens;
}

/** What issuing a grant's tokens takes: the signing keys, the clock, the issuer and the default lifetimes. */
export type TokenIssuingDeps = AccessTokenDeps & { accessTokenTtl: number; idTokenTtl: number };

/**
 * The claims of access tokens whose signature this instance has verified, so a token presented
 * again (a resource server introspects it on every API call) costs no second signature check —
 * an ES256 verification is the most expensive step of introspection. Keyed by the token's
 * SHA-256 (the token itself is not kept); at most `capacity` entries, oldest forgotten first, and
 * none past its `exp`. Only the signature is remembered: a hit still needs its key to be
 * trusted now (a revoked or removed key ends it at once), and every claim, expiry and
 * revocation check runs as for a new token.
 */
export class VerifiedAccessTokens {
  private readonly entries = new Map<string, { kid: string; claims: Readonly<Record<string, unknown>>; exp: number }>();

  constructor(private readonly capacity = 10_000) {}

  static keyOf(token: string): string {
    return sha256(token).toString('base64url');
  }

  get(key: string, nowSeconds: number): { kid: string; claims: Readonly<Record<string, unknown>> } | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.exp <= nowSeconds) { this.entries.delete(key); return undefined; }
    return entry;
  }

  remember(key: string, kid: string, claims: Record<string, unknown>, exp: number): void {
    if (this.capacity <= 0) return;
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    if (Array.isArray(claims.aud)) Object.freeze(claims.aud);
    this.entries.set(key, { kid, claims: Object.freeze(claims), exp });
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface AccessTokenRequest {
  /** RFC 9068 §2.2: the resource owner, or the client itself for client_credentials. */
  sub: string;
  clientId: string;
  /** The resource(s) the token is for (RFC 8707). */
  aud: string | string[];
  /** Granted scopes, space-separated (may be empty: then no `scope` claim). */
  scope: string;
  /** Lifetime in seconds. */
  ttl: number;
  /** Later grants add auth_time, acr, sid, a refresh family id. */
  extraClaims?: Record<string, unknown>;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  iat: number;
  exp: number;
  expiresIn: number;
}

export function issueAccessToken(deps: AccessTokenDeps, request: AccessTokenRequest): IssuedAccessToken {
  const key = deps.keys.signingKey();
  const iat = epochSeconds(deps.clock);
  const exp = iat + request.ttl;
  const jti = randomUUID();
  // Registered claims assigned last: a grant's extra claims can add to them, never replace them.
  const claims: Record<string, unknown> = request.extraClaims ? { ...request.extraClaims } : {};
  claims.iss = deps.issuer;
  claims.sub = request.sub;
  claims.aud = request.aud;
  claims.exp = exp;
  claims.iat = iat;
  claims.jti = jti;
  claims.client_id = request.clientId;
  if (request.scope) claims.scope = request.scope;
  // node:crypto's synchronous signer (src/platform/keys/jws.ts): the same JWS as jose's, ~3x cheaper.
  const token = signJwt(key, claims, ACCESS_TOKEN_TYP);
  return { token, jti, iat, exp, expiresIn: request.ttl };
}

/** OpenID Connect Core §3.1.2.1: a grant whose scope holds `openid` comes with an ID token. */
export function issuesIdToken(scope: string): boolean {
  return scope.split(' ').includes('openid');
}

/** OpenID Connect Core §2: an ID token is a plain JWT (`typ: JWT`). */
export const ID_TOKEN_TYP = 'JWT';

export interface IdTokenRequest {
  /** The client's id_token_signed_response_alg; the key ring's default when unset. */
  alg?: SigningAlg | undefined;
  /** The access token issued with it (for at_hash). */
  accessToken: string;
  sub: string;
  /** The client the ID token is for (its only audience, so no `azp`). */
  clientId: string;
  authTime: Date;
  nonce?: string | null;
  amr: string[];
  acr?: string | null;
  sid: string;
  ttl: number;
  /** User claims the ID token carries too (src/oauth/claims.ts idTokenUserClaims); never replace the ones above. */
  userClaims?: Record<string, unknown>;
}

/**
 * Refuses, before any state changes, a token request whose ID token could not be signed: the
 * client's id_token_signed_response_alg has no active key (not active yet, or its key was
 * revoked). Checked before a code is redeemed or a refresh token rotated, so nothing is lost.
 */
export function assertIdTokenSignable(keys: KeyRing, alg: SigningAlg | undefined): void {
  assertSignable(keys, alg, "this client's ID tokens");
}

/**
 * A JWT signed with a client's registered alg (or the key ring's default) needs that alg's key to
 * be active: when it is not (not active yet, or revoked), the request is refused as
 * temporarily_unavailable rather than signed with another alg than the client expects.
 */
export function assertSignable(keys: KeyRing, alg: SigningAlg | undefined, what: string): void {
  const wanted = alg ?? keys.defaultAlg;
  if (!keys.algorithms().includes(wanted)) throw new TemporarilyUnavailable(`no ${wanted} signing key is active for ${what}; retry later`);
}

/**
 * OpenID Connect Core §2, §3.1.3.6: an ID token for the client. Claims the scopes release
 * come from the UserInfo endpoint (Core §5.4: with an access token issued, they go there),
 * unless the client asked for some here (§5.5) or is registered with `id_token_scope_claims`.
 */
export function issueIdToken(deps: AccessTokenDeps, request: IdTokenRequest): string {
  const key = deps.keys.signingKey(request.alg);
  const iat = epochSeconds(deps.clock);
  const claims: Record<string, unknown> = {
    ...request.userClaims,
    iss: deps.issuer,
    sub: request.sub,
    aud: request.clientId,
    azp: request.clientId,
    exp: iat + request.ttl,
    iat,
    auth_time: Math.floor(request.authTime.getTime() / 1000),
    ...(request.nonce ? { nonce: request.nonce } : {}),
    ...(request.acr ? { acr: request.acr } : {}),
    ...(request.amr.length > 0 ? { amr: request.amr } : {}),
    sid: request.sid,
    at_hash: atHash(request.accessToken, key.alg),
  };
  return signJwt(key, claims, ID_TOKEN_TYP);
}

/** Back-Channel Logout 1.0 §2.4: the one event a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Back-Channel Logout 1.0 §2.4 and §4.1 (cross-JWT confusion): logout tokens are explicitly typed. */
export const LOGOUT_TOKEN_TYP = 'logout+jwt';

/**
 * Back-Channel Logout 1.0 §2.4: a logout token for a client whose session `sid` of user `sub`
 * ended — iss, aud (the client), iat, exp, jti, sub, sid, the event, and never a nonce — signed
 * like that client's ID tokens.
 */
export function issueLogoutToken(deps: AccessTokenDeps, request: { clientId: string; sub: string; sid: string; alg?: SigningAlg | undefined; ttl: number }): string {
  const iat = epochSeconds(deps.clock);
  return signJwt(deps.keys.signingKey(request.alg), {
    iss: deps.issuer,
    sub: request.sub,
    aud: request.clientId,
    iat,
    exp: iat + request.ttl,
    jti: randomUUID(),
    sid: request.sid,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  }, LOGOUT_TOKEN_TYP);
}

/**
 * OpenID Connect Core §3.1.3.6 at_hash: the left half of the hash of the access token, with the
 * hash of the ID token's alg (SHA-256 for ES256, RS256, PS256; SHA-512 for Ed25519, as the
 * OpenID Foundation's EdDSA errata set).
 */
export function atHash(accessToken: string, alg: SigningAlg): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** What an `id_token_hint` says: the user and the clients it was issued to. */
export interface IdTokenHint {
  sub: string;
  aud: string[];
  /** The SSO session the ID token was issued in (OpenID Connect Front-/Back-Channel Logout `sid`). */
  sid?: string;
}

/**
 * An `id_token_hint` (OpenID Connect Core §3.1.2.1, RP-Initiated Logout 1.0 §2): an ID token
 * this server signed (a key still in the key ring, `typ: JWT`, our `iss`); an expired one is
 * still a hint. Undefined for anything else.
 */
export function readIdTokenHint(deps: { keys: KeyRing; issuer: string }, token: string): IdTokenHint | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const jws = verifyJwt(token, (kid) => deps.keys.verificationKey(kid), ID_TOKEN_TYP);
  if (!jws.ok || jws.payload.iss !== deps.issuer || typeof jws.payload.sub !== 'string') return undefined;
  const { sub, aud, sid } = jws.payload;
  return {
    sub,
    aud: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [],
    ...(typeof sid === 'string' ? { sid } : {}),
  };
}

/** What a grant made by a person (a code, a refresh family) issues from: the grant and its sign-in. */
export interface UserGrant {
  /** The grant id: access tokens carry it as `gid`, so revoking the grant revokes them. */
  grantId: string;
  sub: string;
  client: { clientId: string; accessTokenTtl?: number | undefined; idTokenAlg?: SigningAlg | undefined };
  aud: string | string[];
  scope: string;
  authTime: Date;
  nonce: string | null;
  amr: string[];
  acr: string | null;
  sid: string;
  /** User claims for the ID token (src/oauth/claims.ts idTokenUserClaims). */
  idTokenClaims?: Record<string, unknown>;
}

/**
 * The tokens of a user's grant, one rule for the code and the refresh grants: an RFC 9068 access
 * token carrying the grant id, and an ID token when `openid` is in the scope (OpenID Connect
 * Core §3.1.3.3; §12.2 for a refresh, which passes no nonce).
 */
export async function issueUserTokens(
  deps: TokenIssuingDeps, grant: UserGrant,
): Promise<{ accessToken: IssuedAccessToken; idToken?: string }> {
  const accessToken = issueAccessToken(deps, {
    sub: grant.sub,
    clientId: grant.client.clientId,
    aud: grant.aud,
    scope: grant.scope,
    ttl: grant.client.accessTokenTtl ?? deps.accessTokenTtl,
    // RFC 9068 §2.2.1 (and RFC 9470 §6.1): when and how strongly the person signed in, for a
    // resource server that asks for a fresher or stronger sign-in.
    extraClaims: { gid: grant.grantId, auth_time: Math.floor(grant.authTime.getTime() / 1000), ...(grant.acr ? { acr: grant.acr } : {}) },
  });
  if (!issuesIdToken(grant.scope)) return { accessToken };
  const idToken = issueIdToken(deps, {
    alg: grant.client.idTokenAlg, accessToken: accessToken.token, sub: grant.sub, clientId: grant.client.clientId,
    authTime: grant.authTime, nonce: grant.nonce, amr: grant.amr, acr: grant.acr, sid: grant.sid, ttl: deps.idTokenTtl,
    ...(grant.idTokenClaims ? { userClaims: grant.idTokenClaims } : {}),
  });
  return { accessToken, idToken };
}

/** The claims of a verified access token. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  /** The grant (authorization code, later refresh family) a user's token came from. */
  gid?: string;
  /**
   * `user` on a token exchanged (RFC 8693) for a user an external issuer's subject mapping named:
   * no Latchkey grant to name in `gid`, yet a user's token (src/oauth/access-token-liveness.ts namesUser).
   */
  sub_kind?: 'user';
  [claim: string]: unknown;
}

export type AccessTokenVerification =
  // Read-only: the claims of a remembered token are shared by every request presenting it.
  | { valid: true; claims: Readonly<AccessTokenClaims> }
  | { valid: false; reason: 'malformed' | 'unknown_key' | 'invalid_signature' | 'expired' | 'invalid_claims' };

/** Longest string looked at as a token; anything longer is malformed without parsing. */
const MAX_TOKEN_LENGTH = 8192;

/**
 * Verifies an access token this server issued: the header's `typ` is at+jwt (RFC 9068 §4),
 * its alg is allowed and matches the key its `kid` names, the key is still in the key ring (a
 * revoked key verifies nothing), the signature, `iss`, and `exp` against the injected clock.
 * `allowExpired` lets revocation recognise a token that is past its exp.
 */
export async function verifyAccessToken(deps: AccessTokenDeps, token: string, options: { allowExpired?: boolean } = {}): Promise<AccessTokenVerification> {
  if (token.length > MAX_TOKEN_LENGTH) return { valid: false, reason: 'malformed' };
  const trustedKey = (kid: string) => {
    const key = deps.keys.verificationKey(kid);
    return key && ACCESS_TOKEN_ALGS.includes(key.alg) ? key : undefined;
  };
  const now = epochSeconds(deps.clock);
  const cacheKey = deps.verified ? VerifiedAccessTokens.keyOf(token) : undefined;
  const seen = cacheKey !== undefined ? deps.verified!.get(cacheKey, now) : undefined;
  let c: Readonly<Record<string, unknown>>;
  let kid: string;
  if (seen && trustedKey(seen.kid)) {
    ({ claims: c, kid } = seen);
  } else {
    const jws = verifyJwt(token, trustedKey, ACCESS_TOKEN_TYP);
    if (!jws.ok) return { valid: false, reason: jws.reason };
    c = jws.payload;
    kid = jws.header.kid as string;
  }
  const audOk = typeof c.aud === 'string' || (Array.isArray(c.aud) && c.aud.length > 0 && c.aud.every((a) => typeof a === 'string'));
  if (c.iss !== deps.issuer || typeof c.sub !== 'string' || !audOk || typeof c.jti !== 'string' ||
      typeof c.client_id !== 'string' || !Number.isInteger(c.iat) || !Number.isInteger(c.exp) ||
      (c.scope !== undefined && typeof c.scope !== 'string') || (c.gid !== undefined && typeof c.gid !== 'string') ||
      (c.sub_kind !== undefined && c.sub_kind !== 'user') ||
      (c.nbf !== undefined && (typeof c.nbf !== 'number' || c.nbf > now))) {
    return { valid: false, reason: 'invalid_claims' };
  }
  // RFC 7519 §4.1.4: expired at or after `exp`.
  if ((c.exp as number) <= now) {
    if (!options.allowExpired) return { valid: false, reason: 'expired' };
  } else if (cacheKey !== undefined && !seen) {
    deps.verified!.remember(cacheKey, kid, c as Record<string, unknown>, c.exp as number);
  }
  return { valid: true, claims: c as AccessTokenClaims };
}
