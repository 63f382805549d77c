import { CLIENT_ID, redirectUrisTrusted, type Client } from '../../oauth/client.js';
import { InvalidRequest } from '../../oauth/errors.js';
import { readParams, type FormBody } from '../../oauth/params.js';
import type { IdTokenHint } from '../../oauth/tokens.js';

/**
 * OpenID Connect RP-Initiated Logout 1.0: a relying party sends the browser to the
 * end_session_endpoint to sign the user out of this server, and may ask to be sent back.
 */
export interface EndSessionRequest {
  /**
   * The client asking, as far as the id_token_hint proves it: the token's audience (the
   * client_id, when one is given, must be among it). A client_id without a hint proves nothing
   * (anyone can name a client), so it is only checked to exist.
   */
  client?: Client | undefined;
  /**
   * Where the browser goes afterwards: one of the client's post_logout_redirect_uris, exactly,
   * with `state` — automatically only when redirectsAutomatically says so.
   */
  redirect?: { uri: string; state?: string | undefined } | undefined;
  /** The SSO session the id_token_hint was issued in, if it says. */
  hintSid?: string | undefined;
  /** The parameters as accepted, to carry through the confirmation form unchanged. */
  params: Record<string, string>;
}

export interface EndSessionDeps {
  clients: { get(clientId: string): Promise<Client | undefined> };
  /** An ID token this server issued (src/oauth/tokens.ts readIdTokenHint), or undefined. */
  readIdTokenHint(token: string): IdTokenHint | undefined;
}

const PARAMS = ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'logout_hint', 'ui_locales'] as const;

/**
 * Validates a logout request (RP-Initiated Logout 1.0 §2–§4); invalid_request for anything
 * wrong, and then nothing happens: no sign-out, no redirect (§4: the OP MUST NOT redirect after
 * an error). Post-logout redirection needs an id_token_hint issued to the client whose
 * registered post_logout_redirect_uris hold the URI exactly (§3: without the hint the OP has no
 * way to confirm the redirect target is legitimate). `logout_hint` and `ui_locales` are accepted
 * and not used. A parameter given twice is refused, as everywhere.
 */
export async function validateEndSessionRequest(body: FormBody, deps: EndSessionDeps): Promise<EndSessionRequest> {
  const p = readParams(body, PARAMS);
  let hint: IdTokenHint | undefined;
  if (p.id_token_hint !== undefined) {
    hint = deps.readIdTokenHint(p.id_token_hint);
    if (!hint) throw new InvalidRequest('id_token_hint is not an ID token this server issued');
  }
  // §2: with both, the client_id must be the one the ID token was issued to.
  if (p.client_id !== undefined && hint && !hint.aud.includes(p.client_id)) {
    throw new InvalidRequest('client_id is not the client the id_token_hint was issued to');
  }
  const named = p.client_id ?? (hint?.aud.length === 1 ? hint.aud[0] : undefined);
  const client = named !== undefined && CLIENT_ID.test(named) ? await deps.clients.get(named) : undefined;
  if (p.client_id !== undefined && !client) throw new InvalidRequest('unknown client_id');

  let redirect: EndSessionRequest['redirect'];
  if (p.post_logout_redirect_uri !== undefined) {
    if (!hint) throw new InvalidRequest('post_logout_redirect_uri requires an id_token_hint');
    if (!client || client.disabled) throw new InvalidRequest('the client of the id_token_hint is unknown or disabled');
    if (!client.metadata.post_logout_redirect_uris.includes(p.post_logout_redirect_uri)) {
      throw new InvalidRequest('post_logout_redirect_uri is not registered for this client');
    }
    redirect = { uri: p.post_logout_redirect_uri, state: p.state };
  }

  const params: Record<string, string> = {};
  for (const name of ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state'] as const) {
    if (p[name] !== undefined) params[name] = p[name];
  }
  return { client: hint ? client : undefined, redirect, params, ...(hint?.sid !== undefined ? { hintSid: hint.sid } : {}) };
}

/**
 * RFC 9700 §4.11.2 at logout: is the browser sent to the validated post_logout_redirect_uri on
 * its own? A hint proves which client asks, not that this browser's person uses it: anyone can
 * get an ID token (an expired one is still a hint) of a client they registered themselves and
 * make /logout bounce a victim to it. So a self-registered client is redirected to only when
 * the hint was issued in the browser's own session (`sid`, checked before the session ends);
 * otherwise the signed-out page offers a link. A client an administrator registered is
 * redirected to as RP-Initiated Logout §3 describes.
 */
export function redirectsAutomatically(request: EndSessionRequest, sessionSid: string | undefined): boolean {
  if (!request.redirect || !request.client) return false;
  if (redirectUrisTrusted(request.client)) return true;
  return sessionSid !== undefined && request.hintSid === sessionSid;
}

/** §3: the post-logout redirect, with `state` added to the URI's query when the request had one. */
export function postLogoutRedirectUrl(redirect: NonNullable<EndSessionRequest['redirect']>): string {
  if (redirect.state === undefined) return redirect.uri;
  return `${redirect.uri}${redirect.uri.includes('?') ? '&' : '?'}${new URLSearchParams({ state: redirect.state })}`;
}
