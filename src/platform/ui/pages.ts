import { html, SafeHtml } from './html.js';
import { page } from './layout.js';

export interface LoginPageModel {
  csrf: string;
  returnTo: string;
  /** The login name typed before, or the client's login_hint (OpenID Connect Core §3.1.2.1). */
  login?: string;
  error?: 'rejected' | 'throttled' | 'csrf';
  retryAfterSeconds?: number;
  /** What a sign-in factor adds below the form (passkey sign-in: a button and its script). */
  addition?: SafeHtml;
  /** The login field also offers passkeys the browser knows (WebAuthn conditional mediation). */
  passkeyAutofill?: boolean;
}

const ERRORS = {
  rejected: 'The username or password is not right.',
  csrf: 'The form expired. Please sign in again.',
};

export function loginPage(m: LoginPageModel): string {
  const message = m.error === 'throttled'
    ? `Too many attempts. Try again in ${m.retryAfterSeconds ?? 1} seconds.`
    : m.error ? ERRORS[m.error] : undefined;
  return page('Sign in', html`
<h1>Sign in</h1>
${message ? html`<p class="error" role="alert" id="form-error">${message}</p>` : ''}
<form method="post" action="/login" ${message ? html`aria-describedby="form-error"` : ''}>
  <input type="hidden" name="csrf" value="${m.csrf}">
  <input type="hidden" name="return_to" value="${m.returnTo}">
  <label for="login">Username or email</label>
  <input type="text" id="login" name="login" autocomplete="${m.passkeyAutofill ? 'username webauthn' : 'username'}" autocapitalize="none" spellcheck="false" required maxlength="254" value="${m.login ?? ''}" ${m.login ? '' : html`autofocus`}>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024" ${m.login ? html`autofocus` : ''}>
  <button type="submit">Sign in</button>
</form>
${m.addition ?? ''}`);
}

export function accountPage(m: { username: string; csrf: string }): string {
  return page('Signed in', html`
<h1>Signed in</h1>
<p>You are signed in as <strong>${m.username}</strong>.</p>
<p><a href="/account">Manage passkeys, second factors and apps</a></p>
<form method="post" action="/logout">
  <input type="hidden" name="csrf" value="${m.csrf}">
  <button type="submit" class="secondary">Sign out</button>
</form>`);
}

/** Where a redirect URI takes the browser, as a person reads it: its host, or a native app's private-use scheme. */
export function destinationOf(uri: string): string {
  try {
    const url = new URL(uri);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : `the app ${url.protocol.slice(0, -1)}`;
  } catch {
    return uri;
  }
}

/** A client that registered itself (RFC 7591): what it says about itself is unchecked. */
export interface SelfRegistered {
  clientName: string;
  /** The host of this server's issuer, whose users the warning is for. */
  issuerHost: string;
}

function selfRegisteredNotice(m: SelfRegistered): SafeHtml {
  return html`<p class="warning"><strong>${m.clientName}</strong> registered itself with ${m.issuerHost}: its name and links are its own claims, not verified by ${m.issuerHost}.</p>`;
}

/** A link back to a client the server does not send browsers to on its own (RFC 9700 §4.11.2). */
export interface OfferedReturn extends SelfRegistered {
  href: string;
}

function offeredReturn(m: OfferedReturn): SafeHtml {
  const to = destinationOf(m.href);
  return html`${selfRegisteredNotice(m)}
<p>You were not sent back to ${to} automatically. Go back only if you trust it: <a href="${m.href}" rel="noreferrer">return to ${to}</a>.</p>`;
}

/** After a sign-out; with `back`, a link to the application that asked (when it is not redirected to automatically). */
export function signedOutPage(back?: OfferedReturn): string {
  return page('Signed out', html`
<h1>Signed out</h1>
<p>You are signed out.</p>
${back ? html`${offeredReturn(back)}
` : ''}<p><a href="/login">Sign in again</a></p>`);
}

/**
 * An authorization error for a client the server does not redirect to on its own (RFC 9700
 * §4.11.2: "inform the user and rely on the user to make the correct decision"): the error,
 * who the client is, and the response to carry back — a link, or a form for form_post (never
 * submitted by script).
 */
export function untrustedAuthorizationErrorPage(m: SelfRegistered & {
  error: string;
  description: string;
  response: { mode: 'query'; location: string } | { mode: 'form_post'; action: string; fields: Record<string, string> };
}): string {
  const back = m.response.mode === 'query'
    ? offeredReturn({ ...m, href: m.response.location })
    : html`${selfRegisteredNotice(m)}
<p>You were not sent back to ${destinationOf(m.response.action)} automatically. Go back only if you trust it.</p>
<form method="post" action="${m.response.action}">
${Object.entries(m.response.fields).map(([k, v]) => html`  <input type="hidden" name="${k}" value="${v}">
`)}  <button type="submit" class="secondary">Return to ${destinationOf(m.response.action)}</button>
</form>`;
  return page('Request not completed', html`
<h1>Request not completed</h1>
<p class="error" role="alert">${m.description} (${m.error})</p>
${back}`);
}

export interface LogoutPageModel {
  csrf: string;
  /** Who is signed in. */
  username?: string | undefined;
  /** The application that asked for the sign-out (RP-Initiated Logout), if one did. */
  clientName?: string | undefined;
  /** The logout request's parameters, carried through the form. */
  hidden?: Record<string, string>;
}

export function logoutPage(m: LogoutPageModel): string {
  return page('Sign out', html`
<h1>Sign out?</h1>
${m.clientName ? html`<p>${m.clientName} asks to sign you out.</p>
` : ''}${m.username ? html`<p class="muted">Signed in as <strong>${m.username}</strong>.</p>
` : ''}<form method="post" action="/logout">
  <input type="hidden" name="csrf" value="${m.csrf}">
${Object.entries(m.hidden ?? {}).map(([k, v]) => html`  <input type="hidden" name="${k}" value="${v}">
`)}  <button type="submit" name="decision" value="sign_out">Sign out</button>
  <button type="submit" name="decision" value="stay" class="secondary">Stay signed in</button>
</form>`);
}

export function errorPage(title: string, message: string): string {
  return page(title, html`
<h1>${title}</h1>
<p class="error" role="alert">${message}</p>`);
}

/** A form whose CSRF token no longer matches (another tab signed in or out, or it sat too long): start it again. */
export const FORM_EXPIRED_PAGE = errorPage('Request expired', 'The form expired. Go back and try again.');

export interface ConsentPageModel {
  csrf: string;
  clientName: string;
  /** Where the browser goes after the decision: its host is shown. */
  redirectUri: string;
  /** Set for a self-registered client: the page says its name and links are unverified. */
  selfRegistered?: SelfRegistered | undefined;
  clientUri?: string | undefined;
  policyUri?: string | undefined;
  tosUri?: string | undefined;
  username: string;
  scopes: Array<{ scope: string; description: string }>;
  /** Hidden fields that carry the pending authorization request through the form. */
  hidden: Record<string, string>;
  action: string;
}

export function consentPage(m: ConsentPageModel): string {
  const links = [
    m.policyUri ? html`<a href="${m.policyUri}" rel="noopener noreferrer">privacy policy</a>` : '',
    m.tosUri ? html`<a href="${m.tosUri}" rel="noopener noreferrer">terms of service</a>` : '',
  ].filter(Boolean);
  return page('Allow access?', html`
<h1>Allow ${m.clientName} to access your account?</h1>
${m.selfRegistered ? html`${selfRegisteredNotice(m.selfRegistered)}
` : ''}<p class="muted">Signed in as <strong>${m.username}</strong>.</p>
<p>${m.clientName} asks to:</p>
<ul>
${m.scopes.map((s) => html`  <li>${s.description}</li>
`)}</ul>
<p>Allowing sends you on to <strong>${destinationOf(m.redirectUri)}</strong>.</p>
${links.length ? html`<p class="muted">See its ${links.length === 2 ? html`${links[0]} and ${links[1]}` : links[0]}.</p>` : ''}
<form method="post" action="${m.action}">
  <input type="hidden" name="csrf" value="${m.csrf}">
${Object.entries(m.hidden).map(([k, v]) => html`  <input type="hidden" name="${k}" value="${v}">
`)}  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`);
}

/** The one script any page carries: the form_post page submits itself (its CSP allows exactly this text). */
export const FORM_POST_SCRIPT = 'document.forms[0].submit();';

/**
 * OAuth 2.0 Form Post Response Mode: the response parameters in a form the browser posts to
 * the client's redirect URI. Without JavaScript, the person presses Continue.
 */
export function formPostPage(action: string, fields: Record<string, string>): string {
  return page('Continue', html`
<h1>Continue to the application</h1>
<form method="post" action="${action}">
${Object.entries(fields).map(([k, v]) => html`  <input type="hidden" name="${k}" value="${v}">
`)}  <noscript><button type="submit">Continue</button></noscript>
</form>
<script>${new SafeHtml(FORM_POST_SCRIPT)}</script>`);
}

/** The try-it page's result: what the demo relying party got back, claims only (no token). */
export function tryResultPage(m: { idToken: Record<string, unknown>; userInfo: Record<string, unknown>; scope: string; expiresIn: number }): string {
  return page('Signed in to the demo', html`
<h1>It worked</h1>
<p>The demo app sent you through <code>/authorize</code> (PKCE S256), you signed in and consented,
and it exchanged the code at <code>/token</code> for an access token (valid ${m.expiresIn} s,
scope <code>${m.scope}</code>) and an ID token, then called <code>/userinfo</code>.</p>
<h2>ID token claims</h2>
<pre>${JSON.stringify(m.idToken, null, 2)}</pre>
<h2>UserInfo</h2>
<pre>${JSON.stringify(m.userInfo, null, 2)}</pre>
<p><a href="/try">Run it again</a> · <a href="/logout">Sign out</a></p>`);
}
