import { randomUUID } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import type { NewAuthorizationCode } from './code-store.js';
import type { AuthorizationRequestKind } from './request-store.js';
import {
  AuthorizationError, authorizationErrorResponse, authorizationResponse, initialInteraction, nextStep,
  PAR_URN_PREFIX, pushedRequestUri, requestedClientId, targetOf, validateAuthorizationRequest,
  type AuthorizationRequest, type AuthorizationResponse, type InteractionState,
} from './authorization-request.js';
import { authenticateClient, type ClientAuthDeps, type ClientAuthInput } from '../../oauth/client-auth/authenticate.js';
import { CLIENT_ID, redirectUrisTrusted, type Client } from '../../oauth/client.js';
import { AccessDenied, InvalidRequest, InvalidRequestUri, OAuthError } from '../../oauth/errors.js';
import type { FormBody } from '../../oauth/params.js';
import { randomToken, sha256 } from '../../platform/crypto.js';
import { issuesIdToken } from '../../oauth/tokens.js';
import { reportedAcr } from '../../oauth/assurance.js';

/**
 * The authorization code flow from the authorization request to the code (RFC 6749 §4.1,
 * OpenID Connect Core §3.1.2), over narrow stores: the browser's session comes in as plain
 * facts, and what comes out is a step for the HTTP layer — answer the client, or show the
 * sign-in or consent page for a pending interaction.
 */

/** What the browser's SSO session says (src/users/session-store.ts), if it has a live one. */
export interface BrowserSession {
  userId: string;
  sid: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
}

export interface AuthorizationDeps {
  clients: { get(clientId: string): Promise<Client | undefined> };
  requests: {
    save(kind: AuthorizationRequestKind, idHash: Buffer, clientId: string, params: unknown, now: Date, ttlSeconds: number): Promise<void>;
    find(kind: AuthorizationRequestKind, idHash: Buffer, now: Date): Promise<{ clientId: string; params: unknown } | undefined>;
    consume(kind: AuthorizationRequestKind, idHash: Buffer, clientId: string, now: Date): Promise<unknown>;
  };
  codes: { create(code: NewAuthorizationCode, now: Date, ttlSeconds: number): Promise<void> };
  /** Back-Channel Logout §2.3: the clients to tell when a session ends (src/oauth/backchannel-logout.ts). */
  sessionClients: { add(sid: string, clientId: string, now: Date): Promise<void> };
  consents: {
    grantedScopes(userId: string, clientId: string): Promise<Set<string>>;
    grant(userId: string, clientId: string, scopes: readonly string[], now: Date): Promise<Set<string>>;
  };
  clock: Clock;
  issuer: string;
  codeTtl: number;
  /** How long a browser has to sign in and consent before the pending request expires. */
  interactionTtl: number;
  /** RFC 9126 §2.2: lifetime of a pushed request's request_uri. */
  parTtl: number;
  /** The algorithms with an active signing key (ID tokens can be signed in these). */
  signingAlgs(): readonly string[];
  /** The subject of an id_token_hint this server issued, or undefined. */
  idTokenHintSubject(token: string): string | undefined;
}

/** Why an authorization ended, for the metric and the audit trail (bounded values). */
export type AuthorizationOutcome = 'code_issued' | 'access_denied' | 'login_required' | 'consent_required' | 'invalid_request' | 'error';

export type AuthorizationStep =
  | {
      kind: 'respond';
      response: AuthorizationResponse;
      outcome: AuthorizationOutcome;
      client: Client;
      /** Set when a code was issued: the audit event's identifiers (never the code). */
      issued?: { sub: string; scope: string; grantId: string };
      error?: OAuthError;
      /**
       * RFC 9700 §4.11.2: an error for a redirect URI the server does not trust (yet): the
       * browser is not sent there automatically; the person sees the error and may follow a link.
       */
      untrustedRedirect?: true;
    }
  | { kind: 'login'; interactionId: string; loginHint?: string }
  /** Signed in below the level the request asks for: prove more (src/oauth/assurance.ts). */
  | { kind: 'step_up'; interactionId: string; acr: string }
  | { kind: 'consent'; interactionId: string; client: Client; request: AuthorizationRequest; userId: string };

interface StoredInteraction {
  request: AuthorizationRequest;
  loginAfter?: string;
  consentPrompted: boolean;
}

const interactionState = (stored: StoredInteraction): InteractionState => ({
  ...(stored.loginAfter ? { loginAfter: new Date(stored.loginAfter) } : {}),
  consentPrompted: stored.consentPrompted,
});

/** The client of a request, enabled; otherwise an error page (never a redirect). */
async function enabledClient(clientId: string, deps: AuthorizationDeps): Promise<Client> {
  // An id no client can have is unknown without a lookup.
  const client = CLIENT_ID.test(clientId) ? await deps.clients.get(clientId) : undefined;
  if (!client || client.disabled) throw new AuthorizationError(new InvalidRequest('client_id is not a registered, enabled client'));
  return client;
}

/**
 * Whether an error may go back to the client's redirect URI automatically (RFC 9700 §4.11.2:
 * only to a trusted one, else the server is an open redirector: a phishing link bounces
 * through its trusted origin). Trusted: a client an administrator registered, or one the person
 * signed in here has approved — now or before, since a request with prompt=none would then be
 * sent there with a code anyway. Until then a self-registered client's errors are shown here.
 */
async function errorRedirectTrusted(client: Client, session: BrowserSession | undefined, deps: AuthorizationDeps): Promise<boolean> {
  if (redirectUrisTrusted(client)) return true;
  return session !== undefined && (await deps.consents.grantedScopes(session.userId, client.clientId)).size > 0;
}

async function errorStep(err: AuthorizationError, client: Client, session: BrowserSession | undefined, deps: AuthorizationDeps): Promise<AuthorizationStep> {
  const e = err.oauth;
  return {
    kind: 'respond',
    response: authorizationErrorResponse(e, err.target!, deps.issuer),
    outcome: e.error === 'login_required' || e.error === 'consent_required' || e.error === 'access_denied' ? e.error : e.error === 'invalid_request' ? 'invalid_request' : 'error',
    client,
    error: e,
    ...(await errorRedirectTrusted(client, session, deps) ? {} : { untrustedRedirect: true as const }),
  };
}

/**
 * GET/POST /authorize: validates the request (or takes the pushed one its request_uri names,
 * once), then answers at once (prompt=none, or signed in with consent on record) or opens an
 * interaction for the sign-in and consent pages. Throws AuthorizationError without a target
 * when the browser must not be redirected.
 */
export async function beginAuthorization(body: FormBody, session: BrowserSession | undefined, deps: AuthorizationDeps): Promise<AuthorizationStep> {
  let clientId: string;
  let requestUri: string | undefined;
  try {
    clientId = requestedClientId(body);
    requestUri = pushedRequestUri(body);
  } catch (err) {
    if (err instanceof OAuthError) throw new AuthorizationError(err);
    throw err;
  }
  const client = await enabledClient(clientId, deps);
  const now = deps.clock.now();
  let request: AuthorizationRequest;
  try {
    if (requestUri !== undefined) {
      // RFC 9126 §4: the pushed request, once, and only for the client that pushed it.
      const pushed = await deps.requests.consume('par', sha256(requestUri.slice(PAR_URN_PREFIX.length)), client.clientId, now);
      if (pushed === undefined) throw new AuthorizationError(new InvalidRequestUri('request_uri is unknown, expired, already used, or another client\'s'));
      request = pushed as AuthorizationRequest;
    } else {
      request = validateAuthorizationRequest(body, client, { issuer: deps.issuer, pushed: false, signingAlgs: deps.signingAlgs(), idTokenHintSubject: deps.idTokenHintSubject });
    }
  } catch (err) {
    if (err instanceof AuthorizationError && err.target) return errorStep(err, client, session, deps);
    throw err;
  }
  return proceed(request, initialInteraction(request, session, now), client, session, undefined, deps);
}

/**
 * Decides and performs the next step of a request: issue the code, or save (or keep) the
 * interaction and send the browser to sign in or consent.
 */
async function proceed(
  request: AuthorizationRequest, state: InteractionState, client: Client, session: BrowserSession | undefined,
  interactionId: string | undefined, deps: AuthorizationDeps,
): Promise<AuthorizationStep> {
  const now = deps.clock.now();
  let step;
  try {
    const granted = session ? await deps.consents.grantedScopes(session.userId, client.clientId) : new Set<string>();
    step = nextStep(request, state, session, { skip: client.metadata.skip_consent, granted }, now);
  } catch (err) {
    if (err instanceof AuthorizationError && err.target) {
      if (interactionId) await consumeInteraction(interactionId, client, deps);
      return errorStep(err, client, session, deps);
    }
    throw err;
  }
  if (step.step === 'issue') {
    if (interactionId) await consumeInteraction(interactionId, client, deps);
    return issueCode(request, session!, client, deps);
  }
  let id = interactionId;
  if (!id) {
    id = randomToken();
    const stored: StoredInteraction = {
      request,
      ...(step.step === 'login' ? { loginAfter: step.loginAfter.toISOString() } : {}),
      consentPrompted: state.consentPrompted,
    };
    await deps.requests.save('interaction', sha256(id), client.clientId, stored, now, deps.interactionTtl);
  }
  if (step.step === 'login') return { kind: 'login', interactionId: id, ...(request.loginHint ? { loginHint: request.loginHint } : {}) };
  if (step.step === 'step_up') return { kind: 'step_up', interactionId: id, acr: step.acr };
  return { kind: 'consent', interactionId: id, client, request, userId: session!.userId };
}

async function consumeInteraction(interactionId: string, client: Client, deps: AuthorizationDeps): Promise<void> {
  const consumed = await deps.requests.consume('interaction', sha256(interactionId), client.clientId, deps.clock.now());
  // Two tabs finishing the same request: the first one wins, the second sees an error page.
  if (consumed === undefined) throw new AuthorizationError(new InvalidRequest('this sign-in request was already completed'));
}

async function loadInteraction(interactionId: string, deps: AuthorizationDeps): Promise<{ stored: StoredInteraction; client: Client }> {
  const found = /^[A-Za-z0-9_-]{43}$/.test(interactionId)
    ? await deps.requests.find('interaction', sha256(interactionId), deps.clock.now())
    : undefined;
  if (!found) throw new AuthorizationError(new InvalidRequest('this sign-in request has expired or was already completed; return to the application and start again'));
  const client = await enabledClient(found.clientId, deps);
  return { stored: found.params as StoredInteraction, client };
}

/** The redirect URI a pending interaction will end at (the sign-in page's CSP names its origin), if it is live. */
export async function interactionRedirectUri(interactionId: string, deps: Pick<AuthorizationDeps, 'requests' | 'clock'>): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(interactionId)) return undefined;
  const found = await deps.requests.find('interaction', sha256(interactionId), deps.clock.now());
  return found ? (found.params as StoredInteraction).request.redirectUri : undefined;
}

/** GET /interaction/:id — after the sign-in page, or when the consent page is (re)loaded. */
export async function continueAuthorization(interactionId: string, session: BrowserSession | undefined, deps: AuthorizationDeps): Promise<AuthorizationStep> {
  const { stored, client } = await loadInteraction(interactionId, deps);
  return proceed(stored.request, interactionState(stored), client, session, interactionId, deps);
}

/**
 * POST /interaction/:id — the consent decision (its CSRF token already checked). Allow
 * records the grant and issues the code; deny answers access_denied (RFC 6749 §4.1.2.1).
 */
export async function decideConsent(
  interactionId: string, session: BrowserSession | undefined, decision: { allow: boolean; shownTo: string }, deps: AuthorizationDeps,
): Promise<AuthorizationStep & { decided?: 'granted' | 'denied' }> {
  const { stored, client } = await loadInteraction(interactionId, deps);
  const state = interactionState(stored);
  const request = stored.request;
  // The decision counts only from the person the page was shown to, signed in recently enough
  // for this request (the same rule as before the page: nextStep, consent aside). Anyone else
  // — signed out, another account since, max_age run out — starts over from sign-in or a
  // consent page of their own.
  const signedIn = session !== undefined &&
    nextStep(request, state, session, { skip: true, granted: new Set() }, deps.clock.now()).step === 'issue';
  if (!signedIn || session.userId !== decision.shownTo) {
    return proceed(request, state, client, session, interactionId, deps);
  }
  // The interaction is consumed first: a second submission (or a Deny racing an Allow in
  // another tab) records nothing.
  await consumeInteraction(interactionId, client, deps);
  if (!decision.allow) {
    return { ...await errorStep(new AuthorizationError(new AccessDenied('the user denied the request'), targetOf(request)), client, session, deps), decided: 'denied' };
  }
  await deps.consents.grant(session.userId, client.clientId, request.scope.split(' ').filter(Boolean), deps.clock.now());
  return { ...await issueCode(request, session, client, deps), decided: 'granted' };
}

/** RFC 6749 §4.1.2: a 256-bit code, stored hashed, bound to everything the token request must prove. */
async function issueCode(request: AuthorizationRequest, session: BrowserSession, client: Client, deps: AuthorizationDeps): Promise<AuthorizationStep> {
  const code = randomToken();
  const grantId = randomUUID();
  await deps.codes.create({
    codeHash: sha256(code),
    grantId,
    clientId: client.clientId,
    userId: session.userId,
    redirectUri: request.redirectUri,
    codeChallenge: request.codeChallenge ?? null,
    scope: request.scope,
    audience: request.audience,
    nonce: request.nonce ?? null,
    sid: session.sid,
    authTime: session.authTime,
    amr: session.amr,
    // The level reached, as one of the values asked for when it meets one (Core §5.5.1.1).
    acr: reportedAcr(session.acr, request.acrValues ?? []),
    claims: request.claims ?? null,
  }, deps.clock.now(), deps.codeTtl);
  // An ID token (with this sid) will follow: the client takes part in the session from now on.
  if (client.metadata.backchannel_logout_uri && issuesIdToken(request.scope)) {
    await deps.sessionClients.add(session.sid, client.clientId, deps.clock.now());
  }
  return {
    kind: 'respond',
    response: authorizationResponse(targetOf(request), deps.issuer, { code }),
    outcome: 'code_issued',
    client,
    issued: { sub: session.userId, scope: request.scope, grantId },
  };
}

/**
 * POST /par (RFC 9126 §2): the client authenticates, its request is validated by the same
 * rules as at /authorize, and it gets a single-use request_uri.
 */
export async function pushAuthorizationRequest(input: ClientAuthInput, deps: AuthorizationDeps & ClientAuthDeps): Promise<{ client: Client; response: { request_uri: string; expires_in: number } }> {
  const { client } = await authenticateClient(input, deps, { allowPublic: true });
  // RFC 9126 §2.1: client_id, when sent, names the authenticated client.
  if (input.body.client_id !== undefined && input.body.client_id !== client.clientId) {
    throw new InvalidRequest('client_id does not match the authenticated client');
  }
  let request: AuthorizationRequest;
  try {
    request = validateAuthorizationRequest(input.body, client, { issuer: deps.issuer, pushed: true, signingAlgs: deps.signingAlgs(), idTokenHintSubject: deps.idTokenHintSubject });
  } catch (err) {
    // RFC 9126 §2.3: errors are the token endpoint's JSON errors, never a redirect.
    if (err instanceof AuthorizationError) throw err.oauth;
    throw err;
  }
  const id = randomToken();
  await deps.requests.save('par', sha256(id), client.clientId, request, deps.clock.now(), deps.parTtl);
  return { client, response: { request_uri: `${PAR_URN_PREFIX}${id}`, expires_in: deps.parTtl } };
}
