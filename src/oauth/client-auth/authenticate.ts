import { SIGNING_ALGS } from '../../platform/keys/keyring.js';
import { createHash } from 'node:crypto';
import { decodeJwt, jwtVerify } from 'jose';
import { epochSeconds, type Clock } from '../../platform/clock.js';
import type { Client } from '../client.js';
import { CLIENT_ID, secretMatches } from '../client.js';
import { usesClientSecret, type TokenEndpointAuthMethod } from '../client-metadata.js';
import type { ClientKeys } from './client-keys.js';
import type { ClientRateLimit } from './client-rate-limit.js';
import { InvalidClient, InvalidRequest } from '../errors.js';
import { formBody, readParams, type FormBody } from '../params.js';

/**
 * Client authentication at the token, introspection and revocation endpoints: one module, one
 * rule per method. Framework-free: it takes the Authorization header and the form body.
 */

/** RFC 7523 §2.2 */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Client assertion algorithms: asymmetric only. `none` and every HS* are refused (RFC 8725 §3.1). */
export const CLIENT_ASSERTION_ALGS = SIGNING_ALGS;
/**
 * RFC 7523 §3 (4) asks for an exp; a client assertion is made for one request, so Latchkey
 * rejects one valid for longer than this from now (a long-lived assertion is a bearer
 * credential in all but name, and its jti would have to be remembered as long).
 */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
/** Leeway for the client's clock on exp/nbf/iat. */
export const ASSERTION_CLOCK_TOLERANCE_SECONDS = 30;
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
}

/**
 * 401 invalid_client (RFC 6749 §5.2). `method` (for the failure metric) is what was tried;
 * `clientId` what was claimed, if anything. With Basic, the response challenges for Basic.
 */
export class ClientAuthenticationFailed extends InvalidClient {
  constructor(readonly method: ClientAuthMethod | 'unknown', readonly clientId: string | undefined, debug: string) {
    super('client authentication failed', debug);
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

const hashJti = (jti: string) => createHash('sha256').update(jti, 'utf8').digest('hex');

export interface AuthenticateOptions {
  /** Whether a public client (method `none`) is accepted here: yes at /token and /revoke, no at /introspect. */
  allowPublic: boolean;
}

/** The client credentials a request presents, read once: the Basic header and the form's authentication parameters. */
interface PresentedCredentials {
  basic: { clientId: string; clientSecret: string } | undefined;
  params: Partial<Record<'client_id' | 'client_secret' | 'client_assertion' | 'client_assertion_type', string>>;
}

/** One client authentication method: whether a request presents it, and how it is checked. */
interface ClientAuthMethodHandler {
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
    presented: ({ params }) => params.client_secret !== undefined,
    async authenticate({ params }, deps) {
      if (params.client_id === undefined) throw new InvalidRequest('client_secret requires client_id');
      return bySecret('client_secret_post', params.client_id, params.client_secret!, deps);
    },
  },
  // RFC 7523 §2.2
  private_key_jwt: {
    presented: ({ params }) => params.client_assertion !== undefined,
    authenticate: ({ params }, deps) => byAssertion(params.client_assertion!, params.client_assertion_type, params.client_id, deps),
  },
  // RFC 6749 §2.3 / OAuth 2.1 §2.4: a public client identifies itself with client_id only.
  none: {
    presented: ({ basic, params }) => params.client_id !== undefined && basic === undefined &&
      params.client_secret === undefined && params.client_assertion === undefined,
    async authenticate({ params }, deps, options) {
      const client = await usableClient(params.client_id!, 'none', deps);
      if (!options.allowPublic) throw new ClientAuthenticationFailed('none', client.clientId, 'this endpoint requires an authenticated (confidential) client');
      return admitted(client, 'none', deps);
    },
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
  };
  const presented = Object.values(METHODS).filter((method) => method.presented(request));
  if (presented.length > 1) throw new InvalidRequest('more than one client authentication method used (RFC 6749 §2.3)');
  if (request.params.client_assertion_type !== undefined && request.params.client_assertion === undefined) {
    throw new InvalidRequest('client_assertion_type without client_assertion');
  }
  if (presented.length === 0) throw new ClientAuthenticationFailed('unknown', undefined, 'no client authentication');
  return presented[0]!.authenticate(request, deps, options);
}

/**
 * A client that has proven who it is, once this endpoint's per-client limit admits it (429 beyond
 * it): the step after every authentication method's credential check, before the request changes
 * anything (for an assertion, before its jti is spent).
 */
function admitted(client: Client, method: ClientAuthMethod, deps: ClientAuthDeps): AuthenticatedClient {
  deps.clientRateLimit?.admit(client.clientId);
  return { client, method };
}

async function usableClient(clientId: string, method: ClientAuthMethod, deps: ClientAuthDeps): Promise<Client> {
  // An id no client can have (a NUL byte, which PostgreSQL text cannot even hold, …) is unknown without a lookup.
  const client = CLIENT_ID.test(clientId) ? await deps.clients.get(clientId) : undefined;
  if (!client) throw new ClientAuthenticationFailed(method, clientId, 'unknown client');
  if (client.disabled) throw new ClientAuthenticationFailed(method, clientId, 'client is disabled');
  if (client.metadata.token_endpoint_auth_method !== method) {
    throw new ClientAuthenticationFailed(method, clientId, `client is registered for ${client.metadata.token_endpoint_auth_method}, not ${method}`);
  }
  return client;
}

async function bySecret(method: 'client_secret_basic' | 'client_secret_post', clientId: string, secret: string, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  const client = await usableClient(clientId, method, deps);
  if (!usesClientSecret(client.metadata.token_endpoint_auth_method) || !secretMatches(secret, client.secrets, deps.clock.now())) {
    throw new ClientAuthenticationFailed(method, clientId, 'wrong or expired client secret');
  }
  return admitted(client, method, deps);
}

/** RFC 7523 §3 and §2.2, RFC 7521 §4.2. */
async function byAssertion(assertion: string, assertionType: string | undefined, clientIdParam: string | undefined, deps: ClientAuthDeps): Promise<AuthenticatedClient> {
  const fail = (debug: string, clientId?: string) => new ClientAuthenticationFailed('private_key_jwt', clientId, debug);
  if (assertionType !== JWT_BEARER_ASSERTION_TYPE) throw fail(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`);
  if (assertion.length > 8192) throw fail('client_assertion too long');
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
  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
  try {
    ({ payload } = await jwtVerify(assertion, deps.clientKeys.keysFor(client), {
      algorithms: [...CLIENT_ASSERTION_ALGS],
      issuer: clientId,
      subject: clientId,
      currentDate: now,
      clockTolerance: ASSERTION_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    throw fail(`client_assertion rejected: ${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`, clientId);
  }
  // RFC 7523 §3 (3) as draft-ietf-oauth-rfc7523bis narrows it (checked here, not by jose, which
  // accepts any list that contains one expected value).
  const audienceProblem = assertionAudienceProblem(payload.aud, deps.assertionAudience);
  if (audienceProblem !== undefined) throw fail(audienceProblem, clientId);
  const exp = payload.exp!;
  if (exp - epochSeconds(deps.clock) > MAX_ASSERTION_LIFETIME_SECONDS + ASSERTION_CLOCK_TOLERANCE_SECONDS) {
    throw fail(`client_assertion exp is more than ${MAX_ASSERTION_LIFETIME_SECONDS}s away`, clientId);
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
    throw fail('client_assertion replayed (jti already used)', clientId);
  }
  return authenticated;
}

/** What discovery advertises of client authentication (RFC 8414 §2): this module's methods and algorithms. */
export function supportedAuthMethods(): { methods: string[]; signingAlgs: string[] } {
  return { methods: Object.keys(METHODS), signingAlgs: [...CLIENT_ASSERTION_ALGS] };
}
