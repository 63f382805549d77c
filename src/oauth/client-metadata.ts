import { ACR_VALUES, levelOf } from './assurance.js';
import { z } from 'zod';
import { SIGNING_ALGS } from '../platform/keys/keyring.js';
import type { OutboundPolicy } from '../platform/outbound/policy.js';
import { isHttpsOrLoopbackHttp, isLoopbackHost } from '../platform/uris.js';
import { InvalidClientMetadata, InvalidRedirectUri } from './errors.js';
import { isScopeToken } from './scope.js';

/**
 * The one schema every way of managing clients goes through (CLI, admin API, Dynamic Client
 * Registration, the bootstrap file). Member names are RFC 7591 §2's (plus RFC 9126 §6's
 * `require_pushed_authorization_requests`); Latchkey's own additions are documented where they
 * are declared. Problems become RFC 7591 §3.2.2 errors: `invalid_redirect_uri` for a redirect
 * URI, `invalid_client_metadata` for anything else.
 */

/**
 * `workload_identity` (Latchkey; draft-ietf-oauth-spiffe-client-auth): the client presents a
 * token of a trusted external issuer naming its workload_identity, and holds no secret or key.
 */
export const TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', 'workload_identity'] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

export const KNOWN_RESPONSE_TYPES = ['code'] as const;


/**
 * Why a redirect URI is refused, or undefined when it is acceptable: https; http only on a
 * loopback host (RFC 8252 §7.3, §8.3); a private-use scheme in reverse-domain form, i.e.
 * containing a dot (RFC 8252 §7.1); never a fragment (RFC 6749 §3.1.2) nor a wildcard (exact
 * matching, OAuth 2.1 / RFC 9700 §4.1.3).
 */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.includes('*')) return 'must not contain wildcards';
  if (uri.includes('#')) return 'must not contain a fragment (RFC 6749 §3.1.2)';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'must be an absolute URI';
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'https') return url.hostname ? undefined : 'must name a host';
  if (scheme === 'http') {
    return isLoopbackHost(url.hostname) ? undefined : 'http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https';
  }
  if (['javascript', 'data', 'file', 'vbscript', 'about', 'blob'].includes(scheme)) return `the ${scheme}: scheme is not allowed`;
  // RFC 8252 §7.1: private-use schemes are reverse domain names, e.g. com.example.app:/callback
  if (!scheme.includes('.')) return 'a private-use scheme must be a reverse domain name containing a dot (RFC 8252 §7.1), e.g. com.example.app';
  return undefined;
}

/**
 * RFC 8252 §8.3: `localhost` in a loopback redirect URI is NOT RECOMMENDED — the name can resolve
 * to something other than the loopback interface the app listens on (a hosts file, a resolver,
 * IPv4 against IPv6), and a client that relies on it can be sent elsewhere. Latchkey accepts it
 * only from a server whose own issuer is on loopback (a development set-up); elsewhere a new one
 * is refused, naming the IP literals to use. URIs the client already has are kept: a client
 * stored before the rule, or declared again unchanged, goes on working.
 */
function localhostRedirectProblem(
  metadata: Pick<ClientMetadata, 'redirect_uris' | 'post_logout_redirect_uris'>,
  issuer: string,
  registered: readonly string[],
): string | undefined {
  if (isLoopbackHost(new URL(issuer).hostname)) return undefined;
  for (const member of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    for (const uri of metadata[member]) {
      const url = new URL(uri); // an absolute URI: the schema checked it
      if (url.hostname !== 'localhost' || (url.protocol !== 'http:' && url.protocol !== 'https:') || registered.includes(uri)) continue;
      const literal = /^(https?:\/\/)localhost(?=[:/?]|$)/i;
      const instead = literal.test(uri)
        ? `${uri.replace(literal, '$1127.0.0.1')} or ${uri.replace(literal, '$1[::1]')}`
        : '127.0.0.1 or [::1] as the host';
      return `${member}: ${uri}: localhost is NOT RECOMMENDED in a loopback redirect URI (RFC 8252 §8.3) and is accepted only when the issuer is on loopback; use ${instead}`;
    }
  }
  return undefined;
}

const redirectUri = z.string().superRefine((uri, ctx) => {
  const problem = redirectUriProblem(uri);
  if (problem) ctx.addIssue({ code: 'custom', message: `${uri}: ${problem}`, params: { redirect: true } });
});

const webUri = z.string().superRefine((uri, ctx) => {
  let url: URL | undefined;
  try { url = new URL(uri); } catch { /* below */ }
  if (!url || !isHttpsOrLoopbackHttp(url)) {
    ctx.addIssue({ code: 'custom', message: 'must be an https URL (http only on loopback)' });
  }
});

/**
 * Why a web origin (RFC 6454 §6.2 serialization: scheme "://" host [":" port], as a browser
 * sends it in Origin) is refused, or undefined: https, or http on a loopback host; nothing after
 * the authority; the serialization exactly (lower case, no default port), so that comparing it
 * with a request's Origin is string equality.
 */
export function webOriginProblem(origin: string): string | undefined {
  if (origin.includes('*')) return 'must not contain wildcards: name each origin';
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return 'must be an origin: scheme://host[:port]';
  }
  if (!isHttpsOrLoopbackHttp(url)) return 'must be https (http only on a loopback host)';
  if (url.origin !== origin) return `must be an origin exactly as a browser sends it (scheme://host[:port], lower case, no path or default port): ${url.origin}`;
  return undefined;
}

/**
 * The origins a browser app of this client may call the token, revocation, introspection,
 * UserInfo and registration endpoints from (CORS): those of its http(s) redirect URIs and its
 * `allowed_origins`. An http loopback redirect URI registered without a port takes any port at
 * /authorize (RFC 8252 §7.3), so its host's origin does here too, on any port. Computed once per
 * metadata object.
 */
export type OriginMembers = Pick<ClientMetadata, 'redirect_uris' | 'allowed_origins'>;
interface ClientOriginSets { exact: ReadonlySet<string>; loopbackAnyPort: ReadonlySet<string> }
const originsOf = new WeakMap<OriginMembers, ClientOriginSets>();
function clientOriginSets(metadata: OriginMembers): ClientOriginSets {
  let sets = originsOf.get(metadata);
  if (!sets) {
    const exact = new Set<string>(metadata.allowed_origins ?? []);
    const loopbackAnyPort = new Set<string>();
    for (const uri of metadata.redirect_uris) {
      const url = new URL(uri); // absolute: checked by the schema (or by the caller)
      if (url.protocol !== 'https:' && url.protocol !== 'http:') continue;
      exact.add(url.origin);
      if (url.protocol === 'http:' && isLoopbackHost(url.hostname) && !uri.toLowerCase().startsWith(`http://${url.hostname}:`)) loopbackAnyPort.add(url.hostname);
    }
    sets = { exact, loopbackAnyPort };
    originsOf.set(metadata, sets);
  }
  return sets;
}

/** Whether a request's Origin header names one of this client's origins (see clientOriginSets). */
export function clientAllowsOrigin(metadata: OriginMembers, origin: string): boolean {
  const { exact, loopbackAnyPort } = clientOriginSets(metadata);
  if (exact.has(origin)) return true;
  if (loopbackAnyPort.size === 0 || !origin.startsWith('http://')) return false;
  try {
    const url = new URL(origin);
    return url.origin === origin && loopbackAnyPort.has(url.hostname);
  } catch {
    return false;
  }
}

/** RFC 8707 §2: a resource indicator is an absolute URI without a fragment. */
export function isResourceIndicator(value: string): boolean {
  if (value.includes('#')) return false;
  try {
    const url = new URL(value);
    return url.protocol.length > 1;
  } catch {
    return false;
  }
}

const scopeString = z.string().max(2000).refine(
  (s) => s === '' || s.split(' ').every(isScopeToken),
  'must be scope tokens separated by single spaces (RFC 6749 §3.3)',
);

/** A public JWK as a client may register it: asymmetric only, never a private member. */
const publicJwk = z.looseObject({
  kty: z.enum(['EC', 'RSA', 'OKP'], { error: 'kty must be EC, RSA or OKP (symmetric keys are not accepted)' }),
  kid: z.string().optional(),
}).refine((jwk) => !['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((m) => m in jwk), 'must hold public keys only (no private members)');

/** The JWS algs a client may ask its signed responses (ID tokens, JWT introspection) in: those the key manager can hold. */
const signedResponseAlg = z.enum(SIGNING_ALGS, { error: `must be ${SIGNING_ALGS.slice(0, -1).join(', ')} or ${SIGNING_ALGS.at(-1)}` });

/** The endpoints whose per-client limit a client's `rate_limits` may override (src/oauth/client-auth/client-rate-limit.ts). */
export const CLIENT_RATE_LIMITED_ENDPOINTS = ['token', 'introspection', 'revocation', 'par'] as const;
export type ClientRateLimitedEndpoint = typeof CLIENT_RATE_LIMITED_ENDPOINTS[number];

/** One endpoint's limit in `rate_limits`: requests per window, at least 1 (a client to be stopped is disabled instead). */
const rateLimit = z.number().int().min(1).max(1_000_000).optional();

const metadataObject = z.strictObject({
  redirect_uris: z.array(redirectUri).max(50).default([]),
  post_logout_redirect_uris: z.array(redirectUri).max(50).default([]),
  token_endpoint_auth_method: z.enum(TOKEN_ENDPOINT_AUTH_METHODS).default('client_secret_basic'),
  /** The grant types the server serves, no other (metadataSchema checks them against the registry). */
  grant_types: z.array(z.string()).min(1).max(10).default(['authorization_code']),
  response_types: z.array(z.enum(KNOWN_RESPONSE_TYPES)).max(5).optional(),
  client_name: z.string().min(1).max(200).optional(),
  client_uri: webUri.optional(),
  logo_uri: webUri.optional(),
  policy_uri: webUri.optional(),
  tos_uri: webUri.optional(),
  contacts: z.array(z.string().max(320)).max(20).optional(),
  /** RFC 7591 §2: the scopes the client may request (space-separated). */
  scope: scopeString.default(''),
  /**
   * Latchkey: the scopes granted when a request names none (RFC 6749 §3.3 lets the server
   * pick a default). Must be within `scope`; unset means all of `scope`.
   */
  default_scope: scopeString.optional(),
  /**
   * Latchkey: the resources (RFC 8707 audiences) tokens of this client may be issued for.
   * A request without `resource` gets the first one; with none registered the audience is the issuer.
   */
  resources: z.array(z.string().refine(isResourceIndicator, 'each resource must be an absolute URI without a fragment (RFC 8707 §2)')).max(50).default([]),
  /** RFC 7591 §2. Fetched by the server: OutboundPolicy's rule, checked in parseClientMetadata. */
  jwks_uri: z.string().max(2000).optional(),
  jwks: z.object({ keys: z.array(publicJwk).min(1).max(20) }).optional(),
  /** Latchkey: access token lifetime for this client, in seconds (default ACCESS_TOKEN_TTL). */
  access_token_ttl: z.number().int().min(10).max(86400).optional(),
  /** Latchkey: refresh token idle lifetime for this client, in seconds (default REFRESH_TOKEN_IDLE_TTL, or REFRESH_TOKEN_PUBLIC_IDLE_TTL for a public client). */
  refresh_token_idle_ttl: z.number().int().min(60).max(400 * 86400).optional(),
  /** Latchkey: refresh token family absolute lifetime for this client, in seconds (default REFRESH_TOKEN_ABSOLUTE_TTL, or REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL). */
  refresh_token_absolute_ttl: z.number().int().min(60).max(400 * 86400).optional(),
  /** Latchkey: a first-party client; consent is not asked. Only an administrator may set it. */
  skip_consent: z.boolean().default(false),
  /**
   * Latchkey: a resource server that may learn the details of any live token at /introspect
   * (RFC 7662 §4 leaves who may learn what to the server). Without it a client learns only about
   * its own tokens and tokens naming it in their `aud`. Only an administrator may set it.
   */
  introspect_any_token: z.boolean().optional(),
  /**
   * Latchkey: origins (scheme://host[:port]) a browser app of this client may call the token,
   * revocation, introspection, UserInfo and registration endpoints from, besides those of its
   * redirect URIs (CORS; README "Browser apps (SPA) and CORS").
   */
  allowed_origins: z.array(z.string().max(300).superRefine((origin, ctx) => {
    const problem = webOriginProblem(origin);
    if (problem) ctx.addIssue({ code: 'custom', message: `${origin}: ${problem}` });
  })).max(50).optional(),
  /**
   * Latchkey: `false` lets a confidential client skip PKCE on an OpenID Connect request that
   * carries a `nonce` (RFC 9700 §2.1.1 allows it: the nonce then does PKCE's work against code
   * injection), for libraries without PKCE such as passport-openidconnect. Unset or true: PKCE
   * is required. Only an administrator may set it to false; only for a confidential client.
   */
  require_pkce: z.boolean().optional(),
  /**
   * OpenID Connect Dynamic Client Registration §2: the `acr_values` this client's requests ask
   * for when they name none — how a client demands MFA (or a phishing-resistant sign-in) of
   * every person signing in to it. Values this server does not advertise are refused.
   */
  default_acr_values: z.array(z.string().max(200).refine((v) => levelOf(v) > 0, { message: `must be one of ${ACR_VALUES.join(', ')}` })).min(1).max(10).optional(),
  /** RFC 9126 §6 */
  require_pushed_authorization_requests: z.boolean().default(false),
  /**
   * OpenID Connect Back-Channel Logout 1.0 §2.2: where this server posts a logout token when a
   * session the client took part in ends. An absolute URL without a fragment, posted to by the
   * server: OutboundPolicy's rule, checked in parseClientMetadata.
   */
  backchannel_logout_uri: z.string().max(2000).refine((uri) => !uri.includes('#'), 'must not include a fragment (Back-Channel Logout §2.2)').optional(),
  /** Back-Channel Logout §2.2: the logout token must carry `sid` (this server always sends it). */
  backchannel_logout_session_required: z.boolean().optional(),
  /** OpenID Connect Dynamic Client Registration §2: the JWS alg of this client's ID tokens (default: the server's default, ES256). */
  id_token_signed_response_alg: signedResponseAlg.optional(),
  /**
   * Latchkey: the ID token carries every claim of the granted scopes (profile, email, address,
   * phone), not only those a `claims` request names, for clients that read the profile from the
   * ID token (Auth.js "oidc", many SPA libraries). Keycloak's "Add to ID token" mapper switch;
   * node-oidc-provider's `conformIdTokenClaims: false`. It releases nothing the user did not
   * consent to (only granted scopes' claims), so any client may set it, /register included.
   */
  id_token_scope_claims: z.boolean().optional(),
  /**
   * RFC 9701 §6: the JWS alg of the JWT introspection responses this client (a resource server)
   * asks for. Default: the server's default, as for ID tokens (the RFC's default is RS256, a key
   * Latchkey keeps only when SIGNING_ALGS names it). Responses are signed, never encrypted.
   */
  introspection_signed_response_alg: signedResponseAlg.optional(),
  /**
   * Latchkey: the resource identifiers (RFC 9728 §2 `resource`) of the APIs this client is the
   * resource server of. A token whose `aud` names one was sent to this client: it may introspect
   * it and exchange it (RFC 8693) as it may a token naming its client_id. Only an administrator
   * may set it.
   */
  served_resources: z.array(z.string().max(2000).refine(isResourceIndicator, 'each must be an absolute URI without a fragment (RFC 8707 §2)')).min(1).max(20).optional(),
  /**
   * Latchkey: what this client may do with the token-exchange grant (RFC 8693) beyond the
   * default — delegation, within its own registration, of a Latchkey access token issued to it or
   * sent to it. Only an administrator may set it.
   */
  token_exchange: z.strictObject({
    /** `impersonation`: the new token names no actor (RFC 8693 §1.1); `delegation` (default): its `act` names this client. */
    mode: z.enum(['delegation', 'impersonation']).default('delegation'),
    /** Subject token types it may present (RFC 8693 §3, short names): `jwt` and `id_token` come from its trusted_subject_issuers. */
    subject_token_types: z.array(z.enum(['access_token', 'jwt', 'id_token'])).min(1).max(3).default(['access_token']),
    /** Latchkey access tokens of any client and audience, not only those issued or sent to it. */
    any_subject: z.boolean().default(false),
    /** Audiences (RFC 8693 §2.1 `audience`, logical names) it may ask for besides its `resources`. */
    audiences: z.array(z.string().min(1).max(300)).max(50).default([]),
  }).optional(),
  /**
   * Latchkey: the trusted external issuers (their `issuer` URLs) whose tokens this client may
   * present as a JWT bearer assertion (RFC 7523 §2.1) or a token-exchange subject token. Only an
   * administrator may set it.
   */
  trusted_subject_issuers: z.array(z.string().min(1).max(2000)).min(1).max(20).optional(),
  /**
   * Latchkey: workload identity — the trusted external issuer (its `issuer` URL) and the exact
   * `sub` whose tokens authenticate this client (token_endpoint_auth_method
   * `workload_identity`): no secret or key is stored. Only an administrator may set it.
   */
  workload_identity: z.strictObject({ issuer: z.string().min(1).max(2000), subject: z.string().min(1).max(1000) }).optional(),
  /**
   * Latchkey: this client's own per-client request limits, per RATE_LIMIT_WINDOW, by endpoint
   * (`token`, `introspection`, `revocation`, `par`), instead of the server's
   * TOKEN_RATE_LIMIT_PER_CLIENT, INTROSPECTION_RATE_LIMIT_PER_CLIENT, … for that endpoint. An
   * endpoint left out keeps the server's limit. Only an administrator may set it.
   */
  rate_limits: z.strictObject(Object.fromEntries(CLIENT_RATE_LIMITED_ENDPOINTS.map((e) => [e, rateLimit])) as Record<ClientRateLimitedEndpoint, typeof rateLimit>)
    .refine((limits) => Object.keys(limits).length > 0, 'must name at least one endpoint: token, introspection, revocation or par').optional(),
});

export type ClientMetadata = z.output<typeof metadataObject>;

/**
 * Members that grant a client trust, each with the value that grants it, so only an
 * administrator (CLI, admin API, clients file) may give them: Dynamic Client Registration
 * refuses them (RFC 7591 §2 lets the server refuse metadata).
 */
export const ADMINISTRATOR_ONLY_MEMBERS = {
  skip_consent: true,
  introspect_any_token: true,
  require_pkce: false,
} as const satisfies { readonly [K in keyof ClientMetadata]?: boolean };

/**
 * Members that grant a client trust whatever their value — it may act for others (token
 * exchange beyond the default), accept external issuers' tokens, be the resource server of
 * an API, authenticate as a workload, or have its own request limits — so Dynamic Client
 * Registration refuses them.
 */
export const ADMINISTRATOR_ONLY_GRANTS = ['served_resources', 'token_exchange', 'trusted_subject_issuers', 'workload_identity', 'rate_limits'] as const satisfies readonly (keyof ClientMetadata)[];

/** Whether this client may leave PKCE out of an OpenID Connect request with a nonce (RFC 9700 §2.1.1): an administrator's exemption, for a confidential client. */
export function pkceExempt(metadata: Pick<ClientMetadata, 'require_pkce' | 'token_endpoint_auth_method'>): boolean {
  return metadata.require_pkce === false && metadata.token_endpoint_auth_method !== 'none';
}

/** The grant types a client may register for, and each one's rules on the rest of its metadata (src/oauth/token-endpoint/registry.ts). */
export interface RegistrableGrantTypes {
  has(grantType: string): boolean;
  grantTypes(): string[];
  clientMetadataProblems(metadata: ClientMetadata): string[];
}

/**
 * What a server's client metadata is judged by: the grant types it serves, its issuer, and
 * where it may send requests (OutboundPolicy: OUTBOUND_ALLOWED_HOSTS and the issuer's scheme).
 */
export interface ClientMetadataRules {
  grantTypes: RegistrableGrantTypes;
  /** This server's issuer: whether `localhost` may name a redirect URI's host (localhostRedirectProblem). */
  issuer: string;
  /** The outbound fetcher's rule, which jwks_uri and backchannel_logout_uri must pass. */
  outbound: Pick<OutboundPolicy, 'targetProblem'>;
}

/**
 * The members the server itself sends requests to. Each must pass the outbound fetcher's URL
 * rule — whoever enters the client, registrant or operator: the fetcher would refuse the URL
 * anyway, so it is refused where it can be corrected, naming the member.
 */
const FETCHED_MEMBERS = ['jwks_uri', 'backchannel_logout_uri'] as const;

/** The metadata schema of a server with these grant types: an unknown grant type is refused where the member is read. */
const schemas = new WeakMap<RegistrableGrantTypes, z.ZodType<ClientMetadata>>();
function metadataSchema(grantTypes: RegistrableGrantTypes): z.ZodType<ClientMetadata> {
  let schema = schemas.get(grantTypes);
  if (!schema) {
    const served = grantTypes.grantTypes() as [string, ...string[]];
    schema = metadataObject.extend({ grant_types: z.array(z.enum(served)).min(1).max(10).default(['authorization_code']) });
    schemas.set(grantTypes, schema);
  }
  return schema;
}

/** The cross-member rules: each a problem message or nothing. */
function consistencyProblems(m: ClientMetadata, grantTypes: RegistrableGrantTypes): string[] {
  const problems: string[] = [];
  if (m.jwks && m.jwks_uri) problems.push('jwks and jwks_uri must not both be present (RFC 7591 §2)');
  if (m.token_endpoint_auth_method === 'private_key_jwt' && !m.jwks && !m.jwks_uri) {
    problems.push('private_key_jwt requires jwks or jwks_uri');
  }
  // The workload's token is its only credential: no key of its own beside it.
  if ((m.token_endpoint_auth_method === 'workload_identity') !== (m.workload_identity !== undefined)) {
    problems.push('token_endpoint_auth_method workload_identity and the workload_identity member go together (one requires the other)');
  }
  if (m.token_endpoint_auth_method === 'workload_identity' && (m.jwks || m.jwks_uri)) {
    problems.push('a workload_identity client has no jwks or jwks_uri (its workload\'s token is its credential)');
  }
  problems.push(...grantTypes.clientMetadataProblems(m));
  if (m.refresh_token_idle_ttl !== undefined && m.refresh_token_absolute_ttl !== undefined && m.refresh_token_idle_ttl > m.refresh_token_absolute_ttl) {
    problems.push('refresh_token_idle_ttl must not exceed refresh_token_absolute_ttl');
  }
  if (m.require_pkce === false && m.token_endpoint_auth_method === 'none') {
    problems.push('require_pkce: only a confidential client may be exempted from PKCE (RFC 9700 §2.1.1)');
  }
  if (m.default_scope !== undefined) {
    const allowed = new Set(m.scope.split(' ').filter(Boolean));
    const outside = m.default_scope.split(' ').filter((s) => s && !allowed.has(s));
    if (outside.length > 0) problems.push(`default_scope must be within scope (not allowed: ${outside.join(' ')})`);
  }
  return problems;
}

/** The path of the first member name or string value holding a NUL byte, or undefined. */
function pathWithNul(value: unknown, path = '', depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [key, member] of Object.entries(value)) {
    const here = path ? `${path}.${key}` : key;
    if (key.includes('\u0000')) return here;
    const found = pathWithNul(member, here, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

export interface ParseClientMetadataOptions extends ClientMetadataRules {
  /** RFC 7591 §2: drop unknown members (Dynamic Client Registration) instead of refusing them. */
  ignoreUnknown?: boolean;
  /** The redirect and post-logout redirect URIs the client already has, kept as they are. */
  registeredRedirectUris?: readonly string[];
}

/**
 * Validates client metadata and fills in the RFC 7591 defaults. Throws InvalidRedirectUri or
 * InvalidClientMetadata naming the member at fault.
 */
export function parseClientMetadata(input: unknown, options: ParseClientMetadataOptions): ClientMetadata {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidClientMetadata('client metadata must be a JSON object');
  }
  // RFC 7591 §2: a registration endpoint MUST ignore metadata it does not understand. The
  // administrative paths (CLI, admin API, bootstrap file) are strict instead, so a typo is an error.
  const known = options.ignoreUnknown
    ? Object.fromEntries(Object.entries(input).filter(([name]) => name in metadataObject.shape))
    : input;
  // PostgreSQL cannot store a NUL byte in text or jsonb, and no metadata value needs one.
  const nul = pathWithNul(known);
  if (nul !== undefined) throw new InvalidClientMetadata(`${nul || 'metadata'}: must not contain a NUL byte`);
  const parsed = metadataSchema(options.grantTypes).safeParse(known);
  if (!parsed.success) {
    const redirect = parsed.error.issues.find((i) => i.path[0] === 'redirect_uris' || i.path[0] === 'post_logout_redirect_uris');
    if (redirect) throw new InvalidRedirectUri(`${String(redirect.path[0])}: ${redirect.message}`);
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : 'metadata';
    throw new InvalidClientMetadata(`${where}: ${issue.message}`);
  }
  const metadata = parsed.data;
  const localhost = localhostRedirectProblem(metadata, options.issuer, options.registeredRedirectUris ?? []);
  if (localhost) throw new InvalidRedirectUri(localhost);
  for (const member of FETCHED_MEMBERS) {
    const uri = metadata[member];
    const problem = uri === undefined ? undefined : options.outbound.targetProblem(uri);
    if (problem) throw new InvalidClientMetadata(`${member}: ${problem}`);
  }
  // RFC 7591 §2.1: response_types follow from grant_types.
  if (metadata.response_types === undefined) {
    metadata.response_types = metadata.grant_types.includes('authorization_code') ? ['code'] : [];
  } else if (metadata.response_types.includes('code') !== metadata.grant_types.includes('authorization_code')) {
    throw new InvalidClientMetadata('response_types: "code" goes with the authorization_code grant type and only with it (RFC 7591 §2.1)');
  }
  const problems = consistencyProblems(metadata, options.grantTypes);
  if (problems.length > 0) throw new InvalidClientMetadata(problems[0]!);
  return metadata;
}

/** A public client cannot keep a secret (RFC 6749 §2.1): it is the one that authenticates with `none`. */
export function clientTypeOf(metadata: ClientMetadata): 'confidential' | 'public' {
  return metadata.token_endpoint_auth_method === 'none' ? 'public' : 'confidential';
}

/** Methods whose client holds a server-generated secret. */
export function usesClientSecret(method: TokenEndpointAuthMethod): boolean {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}
