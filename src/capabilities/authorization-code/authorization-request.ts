import { LOOPBACK_HOSTS } from '../../platform/uris.js';
import type { Client } from '../../oauth/client.js';
import { parseClaimsRequest, type ClaimsRequest } from '../../oauth/claims.js';
import { pkceExempt } from '../../oauth/client-metadata.js';
import {
  AccessDenied, InvalidRequest, InvalidRequestUri, LoginRequired, ConsentRequired, OAuthError, RequestNotSupported,
  RequestUriNotSupported, TemporarilyUnavailable, UnauthorizedClient, UnsupportedResponseType,
} from '../../oauth/errors.js';
import { readParams, readRepeatedParam, type FormBody } from '../../oauth/params.js';
import { CODE_CHALLENGE } from './pkce.js';
import { grantedScope } from '../../oauth/scope.js';
import { resolveAudience } from '../../oauth/audience.js';
import { issuesIdToken } from '../../oauth/tokens.js';
import { ACR_VALUES, levelOf, requestedAcrValues, satisfies } from '../../oauth/assurance.js';

/**
 * The authorization endpoint's rules (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2, RFC 7636,
 * RFC 9126, RFC 9207), framework-free: validate a request, decide whether the browser must sign
 * in or consent, and shape the response that goes back to the client.
 */

export const RESPONSE_MODES = ['query', 'form_post'] as const;
export type ResponseMode = (typeof RESPONSE_MODES)[number];

/** OpenID Connect Core §3.1.2.1 `prompt` values this server honours (select_account: sign in again). */
export const PROMPT_VALUES = ['none', 'login', 'consent', 'select_account'] as const;
export type Prompt = (typeof PROMPT_VALUES)[number];

/** RFC 9126 §2.2: the request_uri of a pushed request. */
export const PAR_URN_PREFIX = 'urn:ietf:params:oauth:request_uri:';

const MAX_STATE_LENGTH = 2048;
const MAX_NONCE_LENGTH = 512;
const MAX_LOGIN_HINT_LENGTH = 254;
const MAX_MAX_AGE = 10 * 365 * 86400;

/** A validated authorization request: everything later steps need, nothing they must re-check. */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  responseMode: ResponseMode;
  state?: string;
  /** The granted scope, space-separated (RFC 6749 §3.3). */
  scope: string;
  /** RFC 7636 S256 challenge; absent only for a client exempted from PKCE (require_pkce: false) on an OpenID Connect request with a nonce. */
  codeChallenge?: string;
  nonce?: string;
  prompt: Prompt[];
  maxAge?: number;
  loginHint?: string;
  /** The `sub` of a valid id_token_hint: the user the client expects to be signed in. */
  hintedSub?: string;
  /** The access token audience (RFC 8707). */
  audience: string | string[];
  /** The `claims` request parameter (OpenID Connect Core §5.5), validated; absent when not sent. */
  claims?: ClaimsRequest;
  /**
   * The advertised acr levels asked for (acr_values, an `acr` claim request, or the client's
   * default_acr_values), weakest first: the session must reach the first (src/oauth/assurance.ts).
   */
  acrValues?: string[];
}

/** Where and how an authorization response (success or error) goes back to the client. */
export interface RedirectTarget {
  redirectUri: string;
  responseMode: ResponseMode;
  state?: string;
}

/**
 * An authorization request that cannot be served. With a `target` the error goes back to the
 * client (RFC 6749 §4.1.2.1); without one — client_id or redirect_uri not proven valid — the
 * browser must not be redirected, and the user sees an error page (§4.1.2.1 first paragraph).
 */
export class AuthorizationError extends Error {
  constructor(readonly oauth: OAuthError, readonly target?: RedirectTarget) {
    super(oauth.message);
    this.name = 'AuthorizationError';
  }
}

/** Everything the authorization endpoint reads; anything else is ignored (RFC 6749 §3.1). */
const AUTHORIZATION_PARAMETERS = [
  'response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method',
  'nonce', 'prompt', 'max_age', 'login_hint', 'response_mode', 'request', 'request_uri',
  'id_token_hint', 'ui_locales', 'claims_locales', 'acr_values', 'display', 'claims',
] as const;

const LOOPBACK_REDIRECT = new RegExp(`^http://(${[...LOOPBACK_HOSTS].map(escapeRegExp).join('|')})(?::(\\d{1,5}))?([/?].*)?$`);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * RFC 6749 §3.1.2.3 + RFC 9700 §4.1.3: exact string match against a registered redirect URI.
 * RFC 8252 §7.3: for an http loopback redirect URI registered without a port, the port is not
 * compared, since a native app's port is picked at run time.
 */
export function redirectUriMatches(candidate: string, registered: string): boolean {
  if (candidate === registered) return true;
  const c = LOOPBACK_REDIRECT.exec(candidate);
  const r = LOOPBACK_REDIRECT.exec(registered);
  // Only a loopback URI registered without a port takes any port: one registered with a port
  // is matched exactly, and the port must be a real one (it becomes a URL the browser is sent to).
  if (!c || !r || r[2] !== undefined) return false;
  if (c[2] !== undefined && Number(c[2]) > 65535) return false;
  return c[1] === r[1] && (c[3] ?? '') === (r[3] ?? '');
}

/** The client_id of a request, read strictly: a repeated one is never guessed at. */
export function requestedClientId(body: FormBody): string {
  const { client_id: clientId } = readParams(body, ['client_id']);
  if (clientId === undefined) throw new InvalidRequest('client_id is required');
  return clientId;
}

/** The request_uri of a request, if any: only a pushed request's URN is accepted. */
export function pushedRequestUri(body: FormBody): string | undefined {
  const { request_uri: uri } = readParams(body, ['request_uri']);
  if (uri === undefined) return undefined;
  if (!uri.startsWith(PAR_URN_PREFIX)) {
    throw new RequestUriNotSupported('request_uri must be one returned by the pushed authorization request endpoint (RFC 9126)');
  }
  return uri;
}

/**
 * Validates the parameters of an authorization request of `client` (an enabled client) and
 * returns the request. Used by /authorize and by /par, so both apply the very same rules.
 * Errors before the redirect URI is proven carry no target; errors after it do.
 */
export function validateAuthorizationRequest(
  body: FormBody,
  client: Client,
  options: { issuer: string; pushed: boolean; signingAlgs: readonly string[]; idTokenHintSubject: (token: string) => string | undefined },
): AuthorizationRequest {
  // The redirect URI first: until it is proven, nothing may be sent to it.
  let redirect: { redirect_uri?: string };
  try {
    redirect = readParams(body, ['redirect_uri']);
  } catch (err) {
    throw new AuthorizationError(err as OAuthError);
  }
  const redirectUri = redirect.redirect_uri;
  // OpenID Connect Core §3.1.2.1 makes redirect_uri required; one rule for every request.
  if (redirectUri === undefined) throw new AuthorizationError(new InvalidRequest('redirect_uri is required'));
  if (!client.metadata.redirect_uris.some((registered) => redirectUriMatches(redirectUri, registered))) {
    throw new AuthorizationError(new InvalidRequest('redirect_uri is not one registered for this client'));
  }

  // RFC 6749 §4.1.2.1: from here on, errors go back to the client, with its state.
  const state = typeof body.state === 'string' && body.state.length <= MAX_STATE_LENGTH && !body.state.includes('\u0000') ? body.state : undefined;
  let target: RedirectTarget = { redirectUri, responseMode: 'query', ...(state !== undefined ? { state } : {}) };
  try {
    const p = readParams(body, AUTHORIZATION_PARAMETERS);
    if (p.response_mode !== undefined) {
      if (!(RESPONSE_MODES as readonly string[]).includes(p.response_mode)) throw new InvalidRequest('response_mode must be query or form_post');
      target = { ...target, responseMode: p.response_mode as ResponseMode };
    }
    if (p.state !== undefined && p.state.length > MAX_STATE_LENGTH) throw new InvalidRequest(`state must be at most ${MAX_STATE_LENGTH} characters`);
    // OpenID Connect Core §6: request objects are not supported (advertised in discovery).
    if (p.request !== undefined) throw new RequestNotSupported('request objects are not supported; use pushed authorization requests');
    if (p.request_uri !== undefined) {
      throw options.pushed
        ? new InvalidRequest('request_uri must not be pushed (RFC 9126 §2.1)')
        : new InvalidRequestUri('request_uri cannot be combined with other authorization parameters here');
    }
    // RFC 9126 §5: a client registered to push its requests must.
    if (!options.pushed && client.metadata.require_pushed_authorization_requests) {
      throw new InvalidRequest('this client must use pushed authorization requests (RFC 9126 §5)');
    }
    if (p.response_type === undefined) throw new InvalidRequest('response_type is required');
    if (p.response_type !== 'code') throw new UnsupportedResponseType('only response_type=code is supported');
    if (!client.metadata.grant_types.includes('authorization_code') || !(client.metadata.response_types ?? []).includes('code')) {
      throw new UnauthorizedClient('this client is not registered for the authorization code flow');
    }
    const scope = grantedScope(p.scope, client);
    // The ID token must be signable in the client's algorithm: a key of it may not be active
    // yet (published ahead of use), which is a passing condition (RFC 6749 §4.1.2.1).
    const alg = client.metadata.id_token_signed_response_alg;
    if (alg && issuesIdToken(scope) && !options.signingAlgs.includes(alg)) {
      throw new TemporarilyUnavailable(`no ${alg} signing key is active yet for this client's ID tokens`);
    }
    const prompt = parsePrompt(p.prompt);
    let maxAge: number | undefined;
    if (p.max_age !== undefined) {
      if (!/^\d{1,10}$/.test(p.max_age) || Number(p.max_age) > MAX_MAX_AGE) throw new InvalidRequest('max_age must be a non-negative integer number of seconds');
      maxAge = Number(p.max_age);
    }
    if (p.nonce !== undefined && p.nonce.length > MAX_NONCE_LENGTH) throw new InvalidRequest(`nonce must be at most ${MAX_NONCE_LENGTH} characters`);
    // RFC 7636 + OAuth 2.1 §4.1.1: PKCE with S256 for every client — but RFC 9700 §2.1.1 lets a
    // confidential client's OpenID Connect request rely on its nonce instead, and an
    // administrator can grant a client that (require_pkce: false) for libraries without PKCE.
    const withoutPkce = p.code_challenge === undefined && pkceExempt(client.metadata) && issuesIdToken(scope) && p.nonce !== undefined;
    if (!withoutPkce) {
      if (p.code_challenge === undefined) throw new InvalidRequest('code_challenge is required (PKCE, RFC 7636)');
      if (p.code_challenge_method !== 'S256') throw new InvalidRequest('code_challenge_method must be S256 (plain is not allowed)');
      if (!CODE_CHALLENGE.test(p.code_challenge)) throw new InvalidRequest('code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)');
    }
    if (p.login_hint !== undefined && p.login_hint.length > MAX_LOGIN_HINT_LENGTH) throw new InvalidRequest('login_hint is too long');
    let hintedSub: string | undefined;
    if (p.id_token_hint !== undefined) {
      hintedSub = options.idTokenHintSubject(p.id_token_hint);
      if (hintedSub === undefined) throw new InvalidRequest('id_token_hint is not an ID token this server issued');
    }
    const claims = p.claims !== undefined ? parseClaimsRequest(p.claims) : undefined;
    if (p.acr_values !== undefined && (p.acr_values.length > 1000 || !/^[\x21-\x7e]+( [\x21-\x7e]+)*$/.test(p.acr_values))) {
      throw new InvalidRequest('acr_values must be space-separated values');
    }
    const acrValues = requestedAcrValues(p.acr_values, claims?.acr, client.metadata.default_acr_values);
    // OpenID Connect Core §5.5.1.1: an essential acr this server cannot reach fails the request rather than being ignored.
    if (claims?.acr?.essential && claims.acr.values.length > 0 && !claims.acr.values.some((v) => levelOf(v) > 0)) {
      throw new AccessDenied(`none of the essential acr values is supported (${ACR_VALUES.join(', ')})`);
    }
    const audience = resolveAudience(readRepeatedParam(body, 'resource'), client, options.issuer);
    return {
      clientId: client.clientId,
      redirectUri,
      responseMode: target.responseMode,
      ...(p.state !== undefined ? { state: p.state } : {}),
      scope,
      ...(p.code_challenge !== undefined ? { codeChallenge: p.code_challenge } : {}),
      ...(p.nonce !== undefined ? { nonce: p.nonce } : {}),
      prompt,
      ...(maxAge !== undefined ? { maxAge } : {}),
      ...(p.login_hint !== undefined ? { loginHint: p.login_hint } : {}),
      ...(hintedSub !== undefined ? { hintedSub } : {}),
      audience,
      ...(claims !== undefined ? { claims } : {}),
      ...(acrValues.length > 0 ? { acrValues } : {}),
    };
  } catch (err) {
    if (err instanceof OAuthError) throw new AuthorizationError(err, target);
    throw err;
  }
}

/** OpenID Connect Core §3.1.2.1: space-separated values; `none` stands alone. */
function parsePrompt(value: string | undefined): Prompt[] {
  if (value === undefined) return [];
  const values = value.split(' ');
  if (values.some((v) => !(PROMPT_VALUES as readonly string[]).includes(v))) {
    throw new InvalidRequest(`prompt values must be among: ${PROMPT_VALUES.join(', ')}`);
  }
  if (values.includes('none') && values.length > 1) throw new InvalidRequest('prompt=none must not be combined with other values');
  return [...new Set(values)] as Prompt[];
}

export function targetOf(request: AuthorizationRequest): RedirectTarget {
  return { redirectUri: request.redirectUri, responseMode: request.responseMode, ...(request.state !== undefined ? { state: request.state } : {}) };
}

/** What a browser's SSO session says about the person at it (src/users/session-store.ts). */
export interface SessionFacts {
  userId: string;
  authTime: Date;
  /** The level the session reached (src/oauth/assurance.ts). */
  acr?: string | null;
}

/**
 * What happens next for a request: sign in, consent, or issue the code. `loginAfter` is the
 * instant a sign-in must be newer than (prompt=login, or max_age exceeded); once the browser
 * signed in again it is satisfied, so max_age=0 does not loop.
 */
export type NextStep =
  | { step: 'login'; loginAfter: Date }
  /** Signed in, but below the level the request asks for: prove more in this session (step-up). */
  | { step: 'step_up'; acr: string }
  | { step: 'consent' }
  | { step: 'issue' };

export interface InteractionState {
  /** A sign-in must be at or after this instant (unset: any live session will do). */
  loginAfter?: Date;
  /** prompt=consent: the consent page is shown even when the scopes were granted before. */
  consentPrompted: boolean;
}

/** The state a fresh request starts its interaction with (OpenID Connect Core §3.1.2.3). */
export function initialInteraction(request: AuthorizationRequest, session: SessionFacts | undefined, now: Date): InteractionState {
  const reauthenticate = request.prompt.includes('login') || request.prompt.includes('select_account') ||
    (session !== undefined && request.maxAge !== undefined && session.authTime.getTime() < now.getTime() - request.maxAge * 1000);
  return { ...(reauthenticate ? { loginAfter: now } : {}), consentPrompted: request.prompt.includes('consent') };
}

/**
 * Decides the next step. With prompt=none no page may be shown (OpenID Connect Core
 * §3.1.2.6): login_required or consent_required go back to the client instead.
 */
export function nextStep(
  request: AuthorizationRequest,
  interaction: InteractionState,
  session: SessionFacts | undefined,
  consent: { skip: boolean; granted: ReadonlySet<string> },
  now: Date,
): NextStep {
  const silent = request.prompt.includes('none');
  const loginAfter = interaction.loginAfter;
  // OpenID Connect Core §3.1.2.1 max_age holds until the code is issued (time spent on the
  // consent page counts), unless the browser signed in during this request.
  const signedInHere = session !== undefined && loginAfter !== undefined && session.authTime.getTime() >= loginAfter.getTime();
  const tooOld = session !== undefined && request.maxAge !== undefined && !signedInHere &&
    session.authTime.getTime() < now.getTime() - request.maxAge * 1000;
  // OpenID Connect Core §3.1.2.1 id_token_hint: another account signed in is not the one the
  // client expects (unless the person signed in during this request, choosing it).
  const otherUser = session !== undefined && request.hintedSub !== undefined && !signedInHere && session.userId !== request.hintedSub;
  if (!session || (loginAfter !== undefined && !signedInHere) || tooOld || otherUser) {
    if (silent) throw new AuthorizationError(new LoginRequired(session ? 'the user must sign in again' : 'the user is not signed in'), targetOf(request));
    return { step: 'login', loginAfter: tooOld || otherUser ? now : loginAfter ?? now };
  }
  // OpenID Connect Core §3.1.2.1 acr_values (and §5.5.1.1): the session must reach the weakest
  // level asked for; a lower one steps up in the same session rather than signing in afresh.
  const required = request.acrValues?.[0];
  if (required !== undefined && !satisfies(session.acr, required)) {
    if (silent) throw new AuthorizationError(new LoginRequired('the user must sign in at the authentication level requested (acr_values)'), targetOf(request));
    return { step: 'step_up', acr: required };
  }
  const requested = request.scope.split(' ').filter(Boolean);
  const needsConsent = !consent.skip && (interaction.consentPrompted || requested.some((s) => !consent.granted.has(s)));
  if (needsConsent) {
    if (silent) throw new AuthorizationError(new ConsentRequired('the user has not granted these scopes to this client'), targetOf(request));
    return { step: 'consent' };
  }
  return { step: 'issue' };
}

/** The response the browser carries back to the client (RFC 6749 §4.1.2, RFC 9207 `iss`). */
export type AuthorizationResponse =
  | { mode: 'query'; location: string }
  | { mode: 'form_post'; action: string; fields: Record<string, string> };

export function authorizationResponse(target: RedirectTarget, issuer: string, fields: Record<string, string>): AuthorizationResponse {
  const all: Record<string, string> = { ...fields, ...(target.state !== undefined ? { state: target.state } : {}), iss: issuer };
  if (target.responseMode === 'form_post') return { mode: 'form_post', action: target.redirectUri, fields: all };
  // RFC 6749 §3.1.2: keep the redirect URI's own query, add the response parameters to it.
  const url = new URL(target.redirectUri);
  for (const [name, value] of Object.entries(all)) url.searchParams.append(name, value);
  return { mode: 'query', location: url.href };
}

/** RFC 6749 §4.1.2.1: an error response sent to the client. */
export function authorizationErrorResponse(error: OAuthError, target: RedirectTarget, issuer: string): AuthorizationResponse {
  return authorizationResponse(target, issuer, { error: error.error, error_description: error.description });
}
