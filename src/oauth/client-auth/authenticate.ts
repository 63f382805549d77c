import { SIGNING_ALGS } from '../../platform/keys/keyring.js';
import { createHash } from 'node:crypto';
import { compactVerify, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { epochSeconds, type Clock } from '../../platform/clock.js';
import type { Client } from '../client.js';
import { CLIENT_ID, secretMatches } from '../client.js';
import { usesClientSecret, type TokenEndpointAuthMethod } from '../client-metadata.js';
import type { ClientKeys } from './client-keys.js';
import type { ClientRateLimit } from './client-rate-limit.js';
import type { ClientUsage } from '../clients/usage.js';
import { InvalidClient, InvalidRequest } from '../errors.js';
import { formBody, readParams, type FormBody } from '../params.js';
import { ExternalTokenRejected, NO_TRUSTED_ISSUERS, type ExternalTokenVerifier } from '../trusted-issuers/external-token.js';

/**
 * Client authentication at the token, introspection and revocation endpoints: one module, one
 * rule per method. Framework-free: it takes the Authorization header and the form body.
 */

/** RFC 7523 §2.2 */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** draft-ietf-oauth-spiffe-client-auth: a JWT-SVID as the client assertion. */
export const JWT_SPIFFE_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';
/** Client assertion algorithms: asymmetric only. `none` and every HS* are refused (RFC 8725 §3.1). */
export const CLIENT_ASSERTION_ALGS = SIGNING_ALGS;
/**
 * RFC 7523 §3 (4) asks for an exp; Latchkey rejects an assertion valid for longer than this from
 * now (CLIENT_ASSERTION_MAX_LIFETIME). One hour by default, because that is what Authlib's
 * private_key_jwt signs; the jti is remembered until exp, so a replay within it is still refused.
 */
export const DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS = 3600;
/** Leeway for the client's clock on exp/nbf/iat. */
export const ASSERTION_CLOCK_TOLERANCE_SECONDS = 30;
/** Longest client assertion read at all (a JWT of a few claims and one signature is far shorter). */
export const CLIENT_ASSERTION_MAX_LENGTH = 8192;
/** Realm of the WWW-Authenticate challenge (RFC 7617). */
export const BASIC_REALM = 'latchkey';

export type ClientAuthMethod = TokenEndpointAuthMethod;

/**
 * The values a client assertion's `aud` may be, one at a time (assertionAudienceProblem): the
 * issuer identifier, and while the server allows it the token endpoint URL.
 */
export interface AssertionAudience {
  /** The issuer identifier (RFC 8414 §2): always accepted. */
  issuer: string;
  /**
   * The token endpoint URL, which OpenID Connect Core §9 says the audience SHOULD be; accepted
   * only when set (CLIENT_ASSERTION_TOKEN_ENDPOINT_AUDIENCE).
   */
  tokenEndpoint?: string | undefined;
}

/** How much of a refused `aud` value a debug reason quotes. */
const QUOTED_AUDIENCE_LENGTH = 200;

/**
 * Why a client assertion's `aud` is refused, or undefined when it names this server alone
 * (draft-ietf-oauth-rfc7523bis, FAPI 2.0 §5.3.2.1): one value — a string, or a list of just that
 * string, which later drafts allow — that is the issuer identifier, or the token endpoint URL
 * when `accepted` has one. RFC 7523 §3 (3) let the audience be any value identifying
 * the server, in a list beside others; a client that also uses another server can then be made
 * to sign an assertion that server may replay here (the "audience injection" attack: a
 * malicious server's metadata names this server's token endpoint as its own, or a list holds
 * both servers). The issuer is the one value a client has checked against the discovery document
 * it fetched (RFC 8414 §3.3), so only it rules the attack out; the token endpoint URL stays
 * accepted for OpenID Connect Core clients until the operator turns it off. Simple string
 * comparison (RFC 3986 §6.2.1).
 */
export function assertionAudienceProblem(aud: unknown, accepted: AssertionAudience): string | undefined {
  if (aud === undefined) return 'client_assertion has no aud';
  if (Array.isArray(aud) && aud.length !== 1) return `client_assertion aud must be one value, not a list of ${aud.length} (draft-ietf-oauth-rfc7523bis)`;
  const value: unknown = Array.isArray(aud) ? aud[0] : aud;
  if (value === accepted.issuer || (accepted.tokenEndpoint !== undefined && value === accepted.tokenEndpoint)) return undefined;
  const expected = `the issuer identifier ${JSON.stringify(accepted.issuer)}${accepted.tokenEndpoint === undefined ? '' : ` or the token endpoint URL ${JSON.stringify(accepted.tokenEndpoint)}`}`;
  return `client_assertion aud must be ${expected} (got ${(JSON.stringify(value) ?? String(value)).slice(0, QUOTED_AUDIENCE_LENGTH)})`;
}

export interface AuthenticatedClient {
  client: Client;
  method: ClientAuthMethod;
}

export interface ClientAuthInput {
  /** The Authorization request header, as received. */
  authorization?: string | undefined;
  body: FormBody;
  /** The client's IP address (for what a grant records, e.g. where a refresh family was used). */
  ip?: string | undefined;
}

/** Remembers an assertion's jti until `expiresAt`; false when it was already used (replay). */
export interface AssertionJtiStore {
  consume(clientId: string, jtiHash: string, expiresAt: Date): Promise<boolean>;
}

export interface ClientAuthDeps {
  clients: { get(clientId: string): Promise<Client | undefined> };
  assertionJtis: AssertionJtiStore;
  /** Each client's verification keys (src/oauth/client-auth/client-keys.ts). */
  clientKeys: Pick<ClientKeys, 'keysFor'>;
  clock: Clock;
  /** What a client assertion's `aud` may name (assertionAudienceProblem). */
  assertionAudience: AssertionAudience;
  /** This endpoint's per-client limit (src/oauth/client-auth/client-rate-limit.ts); none: no limit. */
  clientRateLimit?: Pick<ClientRateLimit, 'admit' | 'release'> | undefined;
  /** Where a successful authentication is recorded (the client's last-used time); none: not recorded. */
  clientUsage?: Pick<ClientUsage, 'record'> | undefined;
  /** Longest a client assertion may be valid from now, in seconds (default DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS). */
  maxAssertionLifetime?: number | undefined;
  /** Trusted external issuers' tokens, for workload_identity (default: none trusted). */
  externalTokens?: Pick<ExternalTokenVerifier, 'verify'> | undefined;
}

/** The error_description of every refusal; a described one adds its reason after a colon. */
export const CLIENT_AUTHENTICATION_FAILED = 'client authentication failed';

/**
 * 401 invalid_client (RFC 6749 §5.2). `method` (for the failure metric) is what was tried;
 * `clientId` what was claimed, if anything. With Basic, the response challenges for Basic.
 *
 * `told` is what the client may read of the reason (`debug` reaches only the log). It is given
 * only once the caller has proven it holds the client's credential — a secret that matches, an
 * assertion whose signature verifies with one of the client's keys — so that it answers nothing
 * a stranger could not already know: an unknown client, a disabled one, a wrong or expired
 * secret, a bad signature, and a method the caller cannot prove anything with, all stay the bare
 * "client authentication failed", by the same code path as before. RFC 6749 §5.2 limits
 * error_description to printable ASCII without '"' and '\\'; every `told` here is fixed text
 * and numbers.
 */
export class ClientAuthenticationFailed extends InvalidClient {
  constructor(readonly method: ClientAuthMethod | 'unknown', readonly clientId: string | undefined, debug: string, told?: string) {
    super(told === undefined ? CLIENT_AUTHENTICATION_FAILED : `${CLIENT_AUTHENTICATION_FAILED}: ${told}`, debug);
    if (method === 'client_secret_basic') this.headers['WWW-Authenticate'] = `Basic realm="${BASIC_REALM}"`;
  }
}

/** Form-decoding as application/x-www-form-urlencoded does it (RFC 6749 §2.3.1, Appendix B): '+' is a space. */
function formDecode(text: string): string {
  // Most ids and secrets (base64url, as the server makes them) have nothing to decode.
  if (!text.includes('%') && !text.includes('+')) return text;
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

/**
 * RFC 6749 §2.3.1 + RFC 7617: `Basic base64(urlencode(client_id) ":" urlencode(client_secret))`.
 * Undefined when the header is absent or not Basic; throws when it is Basic but malformed.
 */
function parseBasic(header: string | undefined): { clientId: string; clientSecret: string } | undefined {
  if (!header) return undefined;
  const match = /^basic(?: +(.*))?$/is.exec(header.trim());
  if (!match) return undefined;
  const encoded = (match[1] ?? '').trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new ClientAuthenticationFailed('client_secret_basic', undefined, 'malformed Basic credentials: not base64');
  }
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new ClientAuthenticationFailed('client_secret_basic', undefined, 'malformed Basic credentials: no colon');
  try {
    const clientId = formDecode(decoded.slice(0, colon));
    const clientSecret = formDecode(decoded.slice(colon + 1));
    if (!clientId || !clientSecret) throw new Error('empty');
    return { clientId, clientSecret };
  } catch {
    throw new ClientAuthenticationFailed('client_secret_basic', undefined, 'malformed Basic credentials: bad url-encoding or empty part');
  }
}

/**
 * The client a request names, unauthenticated: its client_id parameter, else its Basic user, else
 * its client assertion's issuer; undefined when it names none or is malformed. Only for choosing
 * which origins may read the answer (src/server/http/cors.ts), never for trusting the caller.
 */
export function namedClientId(input: { authorization: string | undefined; body: unknown }): string | undefined {
  try {
    const params = readParams(formBody(input.body), ['client_id', 'client_assertion']);
    if (params.client_id !== undefined) return params.client_id;
    const basic = parseBasic(input.authorization);
    if (basic) return basic.clientId;
    const iss = params.client_assertion !== undefined ? decodeJwt(params.client_assertion).iss : undefined;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** How a spent jti is stored (RFC 7523 §3 (7)): its SHA-256, so the table holds no assertion material. */
export const hashJti = (jti: string) => createHash('sha256').update(jti, 'utf8').digest('hex');

export interface AuthenticateOptions {
  /** Whether a public client (method `none`) is accepted here: yes at /token and /revoke, no at /introspect. */
  allowPublic: boolean;
}

/** The client credentials a request presents, read once: the Basic header and the form's authentication parameters. */
interface PresentedCredentials {
  basic: { clientId: string; clientSecret: string } | undefined;
  params: Partial<Record<'client_id' | 'client_secret' | 'client_assertion' | 'client_assertion_type', string>>;
  /** Whether client_assertion is a workload's token (workloadAssertion). */
  workload: boolean;
}

/**
 * Whether a client assertion is an external issuer's token (workload_identity) rather than the
 * client's own (private_key_jwt, whose iss is the client_id, RFC 7523 §3): its unverified iss is
 * something no client_id can be. A trusted issuer is an URL (it holds ':'), which CLIENT_ID
 * never does, so exactly one of the two methods is presented.
 */
function workloadAssertion(assertion: string | undefined): boolean {
  if (assertion === undefined || assertion.length > CLIENT_ASSERTION_MAX_LENGTH) return false;
  try {
    const iss = decodeJwt(assertion).iss;
    return typeof iss === 'string' && iss.length > 0 && !CLIENT_ID.test(iss);
  } catch {
    return false;
  }
}

/** One client authentication method: whether a request presents it, and how it is checked. */
interface ClientAuthMethodHandler {
  /** How a client sends this method's credential: told to a client that proved its secret by another method. */
  how: string;
  /** Whether the request carries this method's credential. */
  presented(request: PresentedCredentials): boolean;
  authenticate(request: PresentedCredentials, deps: ClientAuthDeps, options: AuthenticateOptions): Promise<AuthenticatedClient>;
}

/**
 * THE table of client authentication methods, one entry per method a client may register
 * (TOKEN_ENDPOINT_AUTH_METHODS: the type makes an unhandled one a compile error). Discovery's
 * `…_auth_methods_supported` is read from it; a new method (mTLS) is an entry here.
 */
const METHODS: Record<ClientAuthMethod, ClientAuthMethodHandler> = {
  // RFC 6749 §2.3.1 + RFC 7617
  client_secret_basic: {
    how: 'send client_id and client_secret in the Authorization header (HTTP Basic), not in the form body',
    presented: ({ basic }) => basic !== undefined,
    async authenticate({ basic, params }, deps) {
      if (params.client_id !== undefined && params.client_id !== basic!.clientId) {
        throw new InvalidRequest('client_id does not match the client authenticated by the Authorization header');
      }
      return bySecret('client_secret_basic', basic!.clientId, basic!.clientSecret, deps);
    },
  },
  // RFC 6749 §2.3.1: the credentials in the form body (NOT RECOMMENDED, but registered by many RPs).
  client_secret_post: {
    how: 'send client_id and client_secret in the form body, not in the Authorization header',
    presented: ({ params }) => params.client_secret !== undefined,
    async authenticate({ params }, deps) {
      if (params.client_id === undefined) throw new InvalidRequest('client_secret requires client_id');
      return bySecret('client_secret_post', params.client_id, params.client_secret!, deps);
    },
  },
  // RFC 7523 §2.2
  private_key_jwt: {
    how: 'send a client_assertion signed with one of its keys',
    presented: ({ params, workload }) => params.client_assertion !== undefined && !workload,
    authenticate: ({ params }, deps) => byAssertion(params.client_assertion!, params.client_assertion_type, params.client_id, deps),
  },
  // RFC 6749 §2.3 / OAuth 2.1 §2.4: a public client identifies itself with client_id only.
  none: {
    how: 'send client_id alone',
    presented: ({ basic, params }) => params.client_id !== undefined && basic === undefined &&
      params.client_secret === undefined && params.client_assertion === undefined,
    async authenticate({ params }, deps, options) {
      const client = await usableClient(params.client_id!, 'none', deps);
      if (!options.allowPublic) throw new ClientAuthenticationFailed('none', client.clientId, 'this endpoint requires an authenticated (confidential) client');
      return admitted(client, 'none', deps);
    },
  },
  // Latchkey / draft-ietf-oauth-spiffe-client-auth: a token of the client's workload identity.
  workload_identity: {
    how: 'send client_id and, as client_assertion, a token of its workload identity\'s issuer',
    presented: ({ workload }) => workload,
    authenticate: ({ params }, deps) => byWorkloadIdentity(params.client_assertion!, params.client_assertion_type, params.client_id, deps),
  },
};

/**
 * Authenticates the client of a request. Exactly one method may be used (RFC 6749 §2.3: "MUST
 * NOT use more than one authentication method in each request") else invalid_request; the
 * method must be the one the client registered; disabled clients and expired secrets fail like
 * a wrong secret: 401 invalid_client.
 */
export async function authenticateClient(input: ClientAuthInput, deps: ClientAuthDeps, options: AuthenticateOptions): Promise<AuthenticatedClient> {
  const request: PresentedCredentials = {
    params: readParams(input.body, ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type']),
    basic: parseBasic(input.authorization),
    workload: false,
  };
  request.workload = workloadAssertion(request.params.client_assertion);
  const presented = Object.values(METHODS).filter((method) => method.presented(request));
  if (presented.length > 1) throw new InvalidRequest('more than one client authentication method used (RFC 6749 §2.3)');
  if (request.params.client_assertion_type !== undefined && request.params.client_assertion === undefined) {
    throw new InvalidRequest('client_assertion_type without client_assertion');
  }
  if (presented.length === 0) throw new ClientAuthenticationFailed('unknown', undefined, 'no client authentication');
  const authenticated = await presented[0]!.authenticate(request, deps, options);
  // Only now, once every check passed (an assertion's jti spent): the client was used.
  deps.clientUsage?.record(authenticated.client.clientId);
  return authenticated;
}

/**
 * A client that has proven who it is, once this endpoint's per-client limit admits it (429 beyond
 * it): the step after every authentication method's credential check, before the request changes
 * anything (for an assertion, before its jti is spent).
 */
function admitted(client: Client, method: ClientAuthMethod, deps: ClientAuthDeps): AuthenticatedClient {
  // The client's own limit (rate_limits, an administrator's override) from the cached client: no read.
  deps.clientRateLimit?.admit(client.clientId, client.metadata.rate_limits);
  return { client, method };
}

/**
 * The client named `clientId`, if it exists, is enabled and registered for `method`. A client
 * registered for another method is told which, and how to send it, only when `proven` says the
 * request proves the credential anyway (a secret sent by the other secret method that matches:
 * the caller knows the secret, so it learns nothing by being told); otherwise the refusal is
 * bare, like an unknown client's.
 */
async function usableClient(clientId: string, method: ClientAuthMethod, deps: ClientAuthDeps, proven?: (client: Client) => boolean): Promise<Client> {
  // An id no client can have (a NUL byte, which PostgreSQL text cannot even hold, …) is unknown without a lookup.
  const client = CLIENT_ID.test(clientId) ? await deps.clients.get(clientId) : undefined;
  if (!client) throw new ClientAuthenticationFailed(method, clientId, 'unknown client');
  if (client.disabled) throw new ClientAuthenticationFailed(method, clientId, 'client is disabled');
  const registered = client.metadata.token_endpoint_auth_method;
  if (registered !== method) {
    const debug = `client is registered for ${registered}, not ${method}`;
    if (proven === undefined || !proven(client)) throw new ClientAuthenticationFailed(method, clientId, debug);
    const err = new ClientAuthenticationFailed(method, clientId, debug, `this client is registered for ${registered}: ${METHODS[registered].how}`);
    // RFC 6749 §5.2: a 401 MAY name the HTTP authentication scheme the client should use.
    if (registered === 'client_secret_basic') err.headers['WWW-Authenticate'] = `Basic realm="${BASIC_REALM}"`;
    throw err;
  }
  return client;
}

/** Whether `secret` is a live secret of a client registered for a secret method. */
const secretProves = (secret: string, clock: Clock) => (client: Client) =>
  usesClientSecret(client.metadata.token_endpoint_auth_method) && secretMatches(secret, client.secrets, clock.now());

async function bySecret(method: 'client_secret_basic' | 'client_secret_post', clientId: string, secret: string, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  const proves = secretProves(secret, deps.clock);
  const client = await usableClient(clientId, method, deps, proves);
  // A wrong or expired secret is never described: that would be an oracle.
  if (!proves(client)) throw new ClientAuthenticationFailed(method, clientId, 'wrong or expired client secret');
  return admitted(client, method, deps);
}

type VerifyKey = Awaited<ReturnType<JWTVerifyGetKey>>;

/** How many of a client's keys are tried, ignoring the kid, to explain an unknown kid. */
const KID_DIAGNOSIS_MAX_KEYS = 10;

/**
 * Whether one of the client's keys (ignoring the header's kid) verifies the assertion's signature:
 * the proof of key possession that lets an unknown kid be described. Run only on the failure path.
 */
async function signedByAnotherKid(assertion: string, getKey: JWTVerifyGetKey): Promise<boolean> {
  const candidates: Array<VerifyKey> = [];
  const withoutKid: JWTVerifyGetKey = async (header, token) => {
    try {
      return await getKey({ ...header, kid: undefined }, token);
    } catch (err) {
      // jose's JWKSMultipleMatchingKeys iterates over its candidates.
      const many = err as Partial<AsyncIterable<VerifyKey>>;
      if (typeof many[Symbol.asyncIterator] !== 'function') throw err;
      for await (const key of many as AsyncIterable<VerifyKey>) {
        candidates.push(key);
        if (candidates.length >= KID_DIAGNOSIS_MAX_KEYS) break;
      }
      return candidates.shift()!;
    }
  };
  try {
    await compactVerify(assertion, withoutKid, { algorithms: [...CLIENT_ASSERTION_ALGS] });
    return true;
  } catch { /* the first candidate, or the only key, did not verify it */ }
  for (const key of candidates) {
    try {
      await compactVerify(assertion, key, { algorithms: [...CLIENT_ASSERTION_ALGS] });
      return true;
    } catch { /* next */ }
  }
  return false;
}

/** RFC 7523 §3 and §2.2, RFC 7521 §4.2. */
async function byAssertion(assertion: string, assertionType: string | undefined, clientIdParam: string | undefined, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  // `told` only past the signature check (ClientAuthenticationFailed).
  const fail = (debug: string, clientId?: string, told?: string) => new ClientAuthenticationFailed('private_key_jwt', clientId, debug, told);
  if (assertionType !== JWT_BEARER_ASSERTION_TYPE) throw fail(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`);
  if (assertion.length > CLIENT_ASSERTION_MAX_LENGTH) throw fail('client_assertion too long');
  let unverified: ReturnType<typeof decodeJwt>;
  try {
    unverified = decodeJwt(assertion);
  } catch {
    throw fail('client_assertion is not a JWT');
  }
  const clientId = unverified.iss;
  // RFC 7523 §3 (1), (2): iss and sub are both the client_id.
  if (typeof clientId !== 'string' || !clientId) throw fail('client_assertion has no iss');
  if (unverified.sub !== clientId) throw fail('client_assertion sub must equal iss (the client_id)', clientId);
  if (clientIdParam !== undefined && clientIdParam !== clientId) throw fail('client_id does not match the assertion iss', clientId);

  const client = await usableClient(clientId, 'private_key_jwt', deps);
  const now = deps.clock.now();
  const keys = deps.clientKeys.keysFor(client);
  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
  try {
    ({ payload } = await jwtVerify(assertion, keys, {
      algorithms: [...CLIENT_ASSERTION_ALGS],
      issuer: clientId,
      subject: clientId,
      currentDate: now,
      clockTolerance: ASSERTION_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    const code = (err as { code?: string }).code;
    const debug = `client_assertion rejected: ${code ?? 'error'}: ${(err as Error).message}`;
    // jose checks the claims only after the signature verified: an expired assertion was signed by the client.
    if (code === 'ERR_JWT_EXPIRED') {
      const ago = epochSeconds(deps.clock) - Number(unverified.exp);
      throw fail(debug, clientId, `client_assertion has expired: its exp is ${ago} seconds before this server's time, more than the ${ASSERTION_CLOCK_TOLERANCE_SECONDS} seconds of leeway (make a new assertion for each request; check the client's clock)`);
    }
    if (code === 'ERR_JWKS_NO_MATCHING_KEY' && await signedByAnotherKid(assertion, keys)) {
      throw fail(debug, clientId, 'the kid in the client_assertion header names no key registered for this client, though one of its keys signed it (send that key\'s kid)');
    }
    throw fail(debug, clientId);
  }
  // RFC 7523 §3 (3) as draft-ietf-oauth-rfc7523bis narrows it (checked here, not by jose, which
  // accepts any list that contains one expected value).
  const audienceProblem = assertionAudienceProblem(payload.aud, deps.assertionAudience);
  if (audienceProblem !== undefined) throw fail(audienceProblem, clientId);
  const exp = payload.exp!;
  const maxLifetime = deps.maxAssertionLifetime ?? DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS;
  const lifetime = exp - epochSeconds(deps.clock);
  if (lifetime > maxLifetime + ASSERTION_CLOCK_TOLERANCE_SECONDS) {
    throw fail(`client_assertion exp is more than ${maxLifetime}s away`, clientId,
      `client_assertion is valid for too long: its exp is ${lifetime} seconds away, and this server accepts at most ${maxLifetime} seconds (plus ${ASSERTION_CLOCK_TOLERANCE_SECONDS} of leeway)`);
  }
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw fail('client_assertion jti must be a non-empty string', clientId);
  // Counted before the jti is spent, so a request over the limit spends nothing (concurrent ones
  // included); a replay gives its count back, so it spends nothing of the client's allowance.
  const authenticated = admitted(client, 'private_key_jwt', deps);
  // RFC 7523 §3 (7): the jti is remembered until exp (+ leeway) and a second use is refused.
  const firstUse = await deps.assertionJtis.consume(clientId, hashJti(jti), new Date((exp + ASSERTION_CLOCK_TOLERANCE_SECONDS) * 1000));
  if (!firstUse) {
    deps.clientRateLimit?.release(clientId);
    throw fail('client_assertion replayed (jti already used)', clientId,
      'client_assertion was already used (its jti has been seen before): make a new assertion, with a new jti, for each request');
  }
  return authenticated;
}

/**
 * workload_identity: the assertion is a token of a trusted external issuer (verified by the
 * external-token port: keys, algorithms, aud, age, single use) whose `iss` and `sub` are exactly
 * the client's registered workload_identity. The client holds no secret or key. Every refusal
 * is the bare invalid_client (the workload's token proves nothing about the client until it
 * matches).
 */
async function byWorkloadIdentity(assertion: string, assertionType: string | undefined, clientId: string | undefined, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  // The assertion's iss is its issuer, so only the form names the client.
  if (clientId === undefined) throw new InvalidRequest('client_id is required with a workload identity token as client_assertion');
  const fail = (debug: string) => new ClientAuthenticationFailed('workload_identity', clientId, debug);
  if (assertionType !== JWT_BEARER_ASSERTION_TYPE && assertionType !== JWT_SPIFFE_ASSERTION_TYPE) {
    throw fail(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE} or ${JWT_SPIFFE_ASSERTION_TYPE}`);
  }
  const client = await usableClient(clientId, 'workload_identity', deps);
  const identity = client.metadata.workload_identity;
  if (!identity) throw fail('client has no workload_identity');
  let authenticated: AuthenticatedClient | undefined;
  try {
    await (deps.externalTokens ?? NO_TRUSTED_ISSUERS).verify(assertion, 'client_assertion', {
      beforeSpend(token) {
        if (token.issuer !== identity.issuer) throw fail('workload token of another issuer than the client\'s workload_identity');
        if (token.subject !== identity.subject) throw fail('workload token sub is not the client\'s workload_identity subject');
        // Counted before the jti is spent, as for private_key_jwt.
        authenticated = admitted(client, 'workload_identity', deps);
      },
    });
  } catch (err) {
    if (authenticated) deps.clientRateLimit?.release(clientId);
    if (err instanceof ExternalTokenRejected) throw fail(`workload token rejected: ${err.reason}`);
    throw err;
  }
  if (!authenticated) throw fail('workload token not checked against the client');
  return authenticated;
}

/** What discovery advertises of client authentication (RFC 8414 §2): this module's methods and algorithms. */
export function supportedAuthMethods(): { methods: string[]; signingAlgs: string[] } {
  return { methods: Object.keys(METHODS), signingAlgs: [...CLIENT_ASSERTION_ALGS] };
}
