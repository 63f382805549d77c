import { epochSeconds } from '../../platform/clock.js';
import { audienceNamesClient } from '../../oauth/audience.js';
import { signJwt } from '../../platform/keys/jws.js';
import { authenticateClient, type AuthenticatedClient, type ClientAuthDeps, type ClientAuthInput } from '../../oauth/client-auth/authenticate.js';
import type { Client } from '../../oauth/client.js';
import { InvalidRequest } from '../../oauth/errors.js';
import { readParams } from '../../oauth/params.js';
import { REFRESH_TOKEN_FORMAT } from '../../oauth/refresh-families/rotation.js';
import type { StoredRefreshToken } from '../../oauth/refresh-families/store.js';
import { sha256 } from '../../platform/crypto.js';
import { assertSignable, verifyAccessToken } from '../../oauth/tokens.js';
import { notLiveReason, type LivenessDeps, type NotLiveReason } from '../../oauth/access-token-liveness.js';
import type { Actor } from '../../oauth/actor.js';

/** RFC 9701 §4, §5: the media type a resource server asks for, and the response's Content-Type. */
export const INTROSPECTION_JWT_MEDIA_TYPE = 'application/token-introspection+jwt';
/** RFC 9701 §5, §8.1 (cross-JWT confusion): the `typ` of a JWT introspection response. */
export const INTROSPECTION_JWT_TYP = 'token-introspection+jwt';

/** RFC 7662 §2.2 */
export type IntrospectionResponse =
  | { active: false }
  | {
      active: true;
      scope?: string;
      client_id: string;
      token_type: 'Bearer';
      exp: number;
      iat: number;
      sub: string;
      aud: string | string[];
      iss: string;
      jti: string;
      /** RFC 8693 §4.1: the current actor, the earlier ones nested in it. */
      act?: Actor;
    }
  | {
      active: true;
      scope?: string;
      client_id: string;
      /** Not an RFC 6749 §7.1 type: the name clients send as token_type_hint (RFC 7009 §2.1). */
      token_type: 'refresh_token';
      exp: number;
      sub: string;
      iss: string;
    };

/** A live-looking token of this server (signed by it, unexpired) that the caller may not see: what the audit names. */
export interface RefusedIntrospection {
  /** The client the token was issued to. */
  clientId: string;
  /** An access token's jti; a refresh token has none (its grant id is named instead). */
  jti?: string;
  /** A refresh token's family (= grant) id. */
  grantId?: string;
}

/**
 * Why an answer is {active:false} (latchkey_introspections_inactive_total{reason}): the access
 * token verification's reasons (verifyAccessToken), the liveness rule's (notLiveReason), a refresh
 * token's own, and `not_allowed` for a token the caller may not see (mayIntrospect).
 */
export type InactiveReason =
  | 'malformed' | 'unknown_key' | 'invalid_signature' | 'expired' | 'invalid_claims'
  | NotLiveReason
  | 'not_allowed' | 'unknown_refresh_token' | 'rotated_refresh_token';

export interface IntrospectionResult {
  caller: AuthenticatedClient;
  response: IntrospectionResponse;
  /** Set when the answer is {active:false}: why. */
  reason?: InactiveReason;
  /** The same answer as a signed JWT (RFC 9701), when the caller asked for one. */
  jwt?: string;
  /** Set when the answer is {active:false} because the token is not the caller's to see (mayIntrospect). */
  refused?: RefusedIntrospection;
}

/**
 * Who may learn a token's details: RFC 7662 §4 leaves it to the server's policy, and answering
 * every authenticated client would let any of them — a self-registered one included — read the
 * `sub`, `scope` and `aud` of tokens meant for other resource servers. So: a client the operator
 * marked `introspect_any_token` (a resource server), the client the token was issued to, and a
 * client its `aud` names (its client_id or a resource it serves: audienceNamesClient). Read from the caller already authenticated: no database read.
 */
export function mayIntrospect(caller: Client, token: { client_id: string; aud: string | string[] }): boolean {
  return caller.metadata.introspect_any_token === true || caller.clientId === token.client_id || audienceNamesClient(token.aud, caller);
}

export interface IntrospectionDeps extends ClientAuthDeps, LivenessDeps {
  /** The refresh token with this SHA-256, as stored (one indexed read). */
  findRefreshToken(tokenHash: Buffer): Promise<StoredRefreshToken | undefined>;
}

/**
 * RFC 7662 §2.1: only an authenticated client may introspect (401 otherwise, §2.3). Anything
 * that is not a live token this server issued — expired, revoked, signed by a key no longer in
 * the key ring, issued to a client since deleted or disabled, malformed, unknown — is simply
 * `{active:false}` (§2.2); so is a token the caller may not see (mayIntrospect, §4).
 * token_type_hint is a hint and changes nothing: the token's own shape says what it is (a JWT
 * is an access token, 43 base64url characters a refresh token), so an access token never costs
 * a database read. When the caller's Accept header prefers it (RFC 9701 §4), the same answer also comes
 * signed as `jwt`.
 */
export async function introspect(
  input: ClientAuthInput & { accept?: string | undefined },
  deps: IntrospectionDeps,
): Promise<IntrospectionResult> {
  const caller = await authenticateClient(input, deps, { allowPublic: false });
  const { token } = readParams(input.body, ['token', 'token_type_hint']);
  if (token === undefined) throw new InvalidRequest('token is required (RFC 7662 §2.1)');
  const alg = caller.client.metadata.introspection_signed_response_alg;
  const asJwt = prefersJwtResponse(input.accept);
  if (asJwt) assertSignable(deps.keys, alg, "this client's introspection responses");
  const { response, refused, reason } = await answer(token, caller.client, deps);
  const result: IntrospectionResult = { caller, response, ...(refused ? { refused } : {}), ...(reason ? { reason } : {}) };
  if (!asJwt) return result;
  // RFC 9701 §5: iss, aud (the resource server asking: the authenticated caller), iat, and the
  // RFC 7662 answer as token_introspection ({active:false} alone when inactive). No sub and no
  // exp, so the response cannot pass for an access token; explicitly typed (§8.1).
  const jwt = signJwt(deps.keys.signingKey(alg), {
    iss: deps.issuer,
    aud: caller.client.clientId,
    iat: epochSeconds(deps.clock),
    token_introspection: response,
  }, INTROSPECTION_JWT_TYP);
  return { ...result, jwt };
}

type Answer = { response: IntrospectionResponse; refused?: RefusedIntrospection; reason?: InactiveReason };

const inactive = (reason: InactiveReason): Answer => ({ response: { active: false }, reason });

async function answer(token: string, caller: Client, deps: IntrospectionDeps): Promise<Answer> {
  // A refresh token is never a JWT (no dots), so the format alone routes it.
  if (REFRESH_TOKEN_FORMAT.test(token)) return answerRefreshToken(token, caller, deps);
  const verified = await verifyAccessToken(deps, token);
  if (!verified.valid) return inactive(verified.reason);
  const c = verified.claims;
  // First: a caller that may not see the token learns nothing else about it (not even whether
  // it was revoked), and costs no further lookup.
  if (!mayIntrospect(caller, c)) return { ...inactive('not_allowed'), refused: { clientId: c.client_id, jti: c.jti } };
  // Revoked, its client or its user deleted or disabled: the one rule token exchange reads too.
  const notLive = await notLiveReason(c, deps);
  if (notLive !== undefined) return inactive(notLive);
  return { response: {
    active: true,
    ...(c.scope ? { scope: c.scope } : {}),
    client_id: c.client_id,
    token_type: 'Bearer',
    exp: c.exp,
    iat: c.iat,
    sub: c.sub,
    aud: c.aud,
    iss: c.iss,
    jti: c.jti,
    // RFC 8693 §4.1: the delegation chain of an exchanged token (RFC 7662 §2.2 allows further members).
    ...(c.act !== undefined ? { act: c.act as Actor } : {}),
  } };
}

/**
 * RFC 7662 §2.2 for a refresh token. Live means: the active token of its family (a rotated-out
 * one is inactive even inside the grace window — it still returns its successor once at /token,
 * but it is no longer the token the client holds), unexpired, its family neither revoked nor
 * past its absolute lifetime, its client and user still enabled. Only the client it was issued
 * to and a client marked `introspect_any_token` may see it: a refresh token has no audience but
 * this server.
 */
async function answerRefreshToken(token: string, caller: Client, deps: IntrospectionDeps): Promise<Answer> {
  const found = await deps.findRefreshToken(sha256(token));
  if (!found) return inactive('unknown_refresh_token');
  const { family } = found;
  if (caller.metadata.introspect_any_token !== true && caller.clientId !== family.client_id) {
    return { ...inactive('not_allowed'), refused: { clientId: family.client_id, grantId: family.id } };
  }
  const now = deps.clock.now().getTime();
  if (found.state === 'revoked' || family.revoked_at !== null) return inactive('revoked');
  if (found.state !== 'active') return inactive('rotated_refresh_token');
  if (found.expiresAt.getTime() <= now || family.absolute_expires_at.getTime() <= now) return inactive('expired');
  const owner = await deps.clients.get(family.client_id);
  if (!owner) return inactive('unknown_client');
  if (owner.disabled) return inactive('client_disabled');
  if (!(await deps.userActive(family.user_id))) return inactive('user_disabled');
  const exp = Math.floor(Math.min(found.expiresAt.getTime(), family.absolute_expires_at.getTime()) / 1000);
  return { response: {
    active: true,
    ...(family.scope ? { scope: family.scope } : {}),
    client_id: family.client_id,
    token_type: 'refresh_token',
    exp,
    sub: family.user_id,
    iss: deps.issuer,
  } };
}

const JSON_TYPE = 'application/json';
/** RFC 9110 §12.4.2: a weight is 0 to 1 with at most three decimals. */
const WEIGHT = /^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$/;

/**
 * RFC 9701 §4: a resource server asks for the JWT response with `Accept:
 * application/token-introspection+jwt`; the plain JSON of RFC 7662 stays the default. Each of
 * the two types takes the weight of the most specific range of the Accept header that matches it
 * (RFC 9110 §12.5.1: the type itself, then application/*, then *\/*). The JWT is chosen when its
 * weight is above zero and above JSON's; on equal weights only when the header names the JWT
 * type itself, ahead of application/json if it names both.
 */
export function prefersJwtResponse(accept: string | undefined): boolean {
  if (accept === undefined || !accept.toLowerCase().includes(INTROSPECTION_JWT_TYP)) return false;
  const best = { jwt: { q: 0, specificity: -1, at: -1 }, json: { q: 0, specificity: -1, at: -1 } };
  accept.split(',').forEach((range, at) => {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    let q = 1;
    for (const param of params) {
      if (!param.startsWith('q=')) continue;
      const weight = WEIGHT.exec(param);
      if (!weight) return; // a malformed weight: the range is ignored
      q = Number(weight[1]);
    }
    for (const [name, full] of [['jwt', INTROSPECTION_JWT_MEDIA_TYPE], ['json', JSON_TYPE]] as const) {
      const specificity = type === full ? 2 : type === 'application/*' ? 1 : type === '*/*' ? 0 : -1;
      if (specificity > best[name].specificity) best[name] = { q, specificity, at };
    }
  });
  const { jwt, json } = best;
  if (jwt.q <= 0) return false;
  if (jwt.q !== json.q) return jwt.q > json.q;
  return jwt.specificity === 2 && (json.specificity < 2 || jwt.at < json.at);
}
