import { html, SafeHtml } from '../../platform/ui/html.js';
import { page } from '../../platform/ui/layout.js';
import { PASSKEY_SCRIPT } from './passkey-script.js';

/**
 * The second-factor, enrolment and account pages: server-rendered like the sign-in page, with
 * the one passkey script (src/capabilities/mfa/passkey-script.ts) where a passkey can be used.
 * Every form carries the CSRF token; the passkey forms post JSON through the script.
 */

const script = () => new SafeHtml(`<script>${PASSKEY_SCRIPT}</script>`);

const hidden = (fields: Record<string, string | undefined>) =>
  Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => html`  <input type="hidden" name="${k}" value="${v}">
`);

const when = (d: Date | null) => (d ? d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : 'never');

/** The passkey button of a sign-in or second-factor page: the script runs the WebAuthn ceremony (data-passkey="get"). */
export function passkeyGetForm(m: { csrf: string; returnTo: string; acr?: string; options: string; verify: string; autofill?: boolean; label: string }): SafeHtml {
  return html`<form method="post" action="${m.verify}" data-passkey="get" data-options="${m.options}" data-verify="${m.verify}" ${m.autofill ? html`data-autofill` : ''}>
${hidden({ csrf: m.csrf, return_to: m.returnTo, acr: m.acr })}  <button type="submit" class="secondary">${m.label}</button>
  <p class="error" data-passkey-error role="alert" hidden></p>
</form>
${script()}`;
}

/** Adding a passkey (data-passkey="create"), with the name it will be listed under. */
function passkeyCreateForm(m: { csrf: string; returnTo: string; acr?: string }): SafeHtml {
  return html`<form method="post" action="/account/passkeys" data-passkey="create" data-options="/account/passkeys/options" data-verify="/account/passkeys">
${hidden({ csrf: m.csrf, return_to: m.returnTo, acr: m.acr })}  <label for="passkey-name">Name for this passkey</label>
  <input type="text" id="passkey-name" name="name" maxlength="64" value="Passkey" autocomplete="off">
  <button type="submit">Add a passkey</button>
  <p class="error" data-passkey-error role="alert" hidden></p>
</form>`;
}

export interface FactorPageModel {
  csrf: string;
  returnTo: string;
  /** The level asked for by the request (step-up), passed back with each form. */
  acr?: string;
  username: string;
  /** Why more is asked: the account's second factor, a policy, or an app's step-up. */
  reason: 'second_factor' | 'step_up' | 'enrol';
  passkey: boolean;
  totp: boolean;
  recovery: boolean;
  /** Enrolment offered: a passkey, and TOTP unless only a passkey reaches the level. */
  enrol?: { totp: boolean; phishingResistant: boolean };
  /** Factors exist that reach the level, but one must be used first before another can be added. */
  verifyFirst?: boolean;
  error?: string;
}

const REASONS = {
  second_factor: 'Confirm it is you with your second factor.',
  step_up: 'The application asks for a stronger sign-in for what you are about to do.',
  enrol: 'Your organisation requires a second factor for signing in. Set one up to continue.',
};

/** After the password, or for a step-up: the factors that reach the level, or enrolment. */
export function factorPage(m: FactorPageModel): string {
  const common = { csrf: m.csrf, return_to: m.returnTo, acr: m.acr };
  const totpSetup = `/account/totp?${new URLSearchParams({ return_to: m.returnTo, ...(m.acr ? { acr: m.acr } : {}) })}`;
  return page(m.reason === 'enrol' ? 'Set up a second factor' : 'Confirm it is you', html`
<h1>${m.reason === 'enrol' ? 'Set up a second factor' : 'Confirm it is you'}</h1>
<p class="muted">Signed in as <strong>${m.username}</strong>.</p>
<p>${REASONS[m.reason]}</p>
${m.error ? html`<p class="error" role="alert" id="form-error">${m.error}</p>` : ''}
${m.passkey ? passkeyGetForm({ csrf: m.csrf, returnTo: m.returnTo, ...(m.acr ? { acr: m.acr } : {}), options: '/login/factor/passkey/options', verify: '/login/factor/passkey', label: 'Use a passkey' }) : ''}
${m.totp ? html`<form method="post" action="/login/factor/totp">
${hidden(common)}  <label for="totp-code">Code from your authenticator app</label>
  <input type="text" id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" required autofocus>
  <button type="submit">Verify</button>
</form>` : ''}
${m.recovery ? html`<details><summary>Use a recovery code</summary>
<form method="post" action="/login/factor/recovery">
${hidden(common)}  <label for="recovery-code">Recovery code</label>
  <input type="text" id="recovery-code" name="code" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="40" required>
  <button type="submit" class="secondary">Use recovery code</button>
</form></details>` : ''}
${m.verifyFirst ? html`<p class="muted">After confirming, you will be asked to add a passkey: this requires one.</p>` : ''}
${m.enrol ? html`${m.enrol.phishingResistant ? html`<p>This requires a passkey (a security key, or your device's screen lock).</p>` : ''}
${passkeyCreateForm({ csrf: m.csrf, returnTo: m.returnTo, ...(m.acr ? { acr: m.acr } : {}) })}
${script()}
${m.enrol.totp ? html`<p><a href="${totpSetup}">Use an authenticator app instead</a></p>` : ''}` : ''}
<form method="post" action="/logout">
  <input type="hidden" name="csrf" value="${m.csrf}">
  <button type="submit" class="secondary">Cancel and sign out</button>
</form>`);
}

/** TOTP enrolment (RFC 6238): the QR code and the secret, shown once, and the first code that confirms it. */
export function totpSetupPage(m: { csrf: string; returnTo: string; acr?: string; secret: string; uri: string; qrSvg: string; error?: string }): string {
  const grouped = m.secret.replace(/(.{4})/g, '$1 ').trim();
  return page('Set up an authenticator app', html`
<h1>Set up an authenticator app</h1>
<p>Scan this code with your authenticator app, or enter the key by hand.</p>
<div aria-label="QR code of the key">${new SafeHtml(m.qrSvg)}</div>
<p>Key: <code id="totp-secret">${grouped}</code></p>
<p class="muted">The key is shown only now. Anyone who sees it can make your codes.</p>
${m.error ? html`<p class="error" role="alert">${m.error}</p>` : ''}
<form method="post" action="/account/totp">
${hidden({ csrf: m.csrf, return_to: m.returnTo, acr: m.acr })}  <label for="totp-code">Code shown by the app</label>
  <input type="text" id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required autofocus>
  <button type="submit">Confirm</button>
</form>`);
}

/** A first TOTP code that did not match: the enrolment starts again with a new key. */
export function totpRetryPage(m: { again: string }): string {
  return page('Code not right', html`
<h1>That code did not match</h1>
<p class="error" role="alert">The code from your authenticator app was not right, so the key was not saved.</p>
<p><a href="${m.again}">Start again with a new key</a> (remove the old entry from the app first).</p>`);
}

/** A new set of recovery codes, shown once. */
export function recoveryCodesPage(m: { codes: readonly string[]; continueTo: string }): string {
  return page('Recovery codes', html`
<h1>Save your recovery codes</h1>
<p>Each code signs you in once if you lose your passkey or authenticator app. They are shown only now: print them or keep them in a password manager.</p>
<ul id="recovery-codes">
${m.codes.map((c) => html`  <li><code>${c}</code></li>
`)}</ul>
<p><a href="${m.continueTo}">I have saved them, continue</a></p>`);
}

/** After a first factor: make recovery codes now (a POST: making them replaces any earlier set), or later. */
export function recoveryOfferPage(m: { csrf: string; returnTo: string }): string {
  return page('Recovery codes', html`
<h1>Make recovery codes</h1>
<p>Recovery codes sign you in if you lose your passkey or authenticator app. Each works once.</p>
<form method="post" action="/account/recovery-codes">
${hidden({ csrf: m.csrf, return_to: m.returnTo })}  <button type="submit">Make recovery codes</button>
</form>
<p><a href="${m.returnTo}">Not now</a></p>`);
}

/** After a recovery code: how many are left. */
export function recoveryUsedPage(m: { remaining: number; continueTo: string }): string {
  return page('Recovery code used', html`
<h1>Recovery code used</h1>
<p id="recovery-remaining">You have <strong>${m.remaining}</strong> recovery ${m.remaining === 1 ? 'code' : 'codes'} left.${m.remaining <= 3 ? ' Make new ones on your account page, and set up a new second factor if you lost yours.' : ''}</p>
<p><a href="${m.continueTo}">Continue</a></p>`);
}

export interface AccountPageModel {
  csrf: string;
  username: string;
  acr: string | null;
  amr: readonly string[];
  /** Changing factors needs a recent sign-in; when false the page offers one. */
  mayChange: boolean;
  recentMinutes: number;
  passkeys: readonly { id: string; name: string; createdAt: Date; lastUsedAt: Date | null; deviceBound: boolean }[];
  totp: { confirmedAt: Date; lastUsedAt: Date | null } | undefined;
  recoveryRemaining: number;
  apps: readonly { clientId: string; name: string; scopes: readonly string[]; grantedAt: Date }[];
  notice?: string;
}

/** The account page: passkeys, TOTP, recovery codes, the apps the person allowed. */
export function accountSecurityPage(m: AccountPageModel): string {
  const csrf = html`<input type="hidden" name="csrf" value="${m.csrf}">`;
  const change = (form: SafeHtml) => (m.mayChange ? form : '');
  return page('Your account', html`
<h1>Your account</h1>
<p class="muted">Signed in as <strong>${m.username}</strong> (${m.amr.join(', ')}).</p>
${m.notice ? html`<p class="warning" role="status">${m.notice}</p>` : ''}
${m.mayChange ? '' : html`<p class="muted">Changing how you sign in needs a sign-in within the last ${m.recentMinutes} minutes. <a href="/login?return_to=%2Faccount">Sign in again</a></p>`}
<h2>Passkeys</h2>
<ul id="passkeys">
${m.passkeys.map((p) => html`  <li><strong>${p.name}</strong> <span class="muted">(${p.deviceBound ? 'this device only' : 'synced'}; added ${when(p.createdAt)}; last used ${when(p.lastUsedAt)})</span>
${change(html`  <form method="post" action="/account/passkeys/${p.id}/remove">${csrf}<button type="submit" class="secondary">Remove ${p.name}</button></form>`)}</li>
`)}</ul>
${m.passkeys.length === 0 ? html`<p class="muted">No passkeys.</p>` : ''}
${change(html`${passkeyCreateForm({ csrf: m.csrf, returnTo: '/account' })}${script()}`)}
<h2>Authenticator app</h2>
${m.totp ? html`<p id="totp-status">On since ${when(m.totp.confirmedAt)}; last used ${when(m.totp.lastUsedAt)}.</p>
${change(html`<form method="post" action="/account/totp/remove">${csrf}<button type="submit" class="secondary">Turn off the authenticator app</button></form>`)}`
    : html`<p id="totp-status">Off.</p>${change(html`<p><a href="/account/totp?return_to=%2Faccount">Set up an authenticator app</a></p>`)}`}
<h2>Recovery codes</h2>
<p id="recovery-status">${m.recoveryRemaining} unused.</p>
${change(html`<form method="post" action="/account/recovery-codes">${csrf}<button type="submit" class="secondary">Make new recovery codes</button></form>`)}
<h2>Apps you allowed</h2>
<ul id="apps">
${m.apps.map((a) => html`  <li><strong>${a.name}</strong> <span class="muted">(${a.scopes.join(' ')}; since ${when(a.grantedAt)})</span>
  <form method="post" action="/account/apps/${encodeURIComponent(a.clientId)}/withdraw">${csrf}<button type="submit" class="secondary">Remove access for ${a.name}</button></form></li>
`)}</ul>
${m.apps.length === 0 ? html`<p class="muted">None.</p>` : ''}
<form method="post" action="/logout">${csrf}<button type="submit" class="secondary">Sign out</button></form>`);
}
