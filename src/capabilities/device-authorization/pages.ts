import { html } from '../../platform/ui/html.js';
import { page } from '../../platform/ui/layout.js';

/**
 * The verification pages of the device flow (RFC 8628 §3.3): enter the code, then approve or
 * deny a device — saying plainly that a device, not this browser, will be signed in.
 */

export function deviceCodePage(m: { csrf: string; userCode?: string; username: string; error?: string }): string {
  return page('Connect a device', html`
<h1>Connect a device</h1>
<p class="muted">Signed in as <strong>${m.username}</strong>.</p>
<p>Enter the code your device (a TV, a command-line tool…) shows.</p>
${m.error ? html`<p class="error" role="alert" id="form-error">${m.error}</p>` : ''}
<form method="post" action="/device" ${m.error ? html`aria-describedby="form-error"` : ''}>
  <input type="hidden" name="csrf" value="${m.csrf}">
  <label for="user_code">Code</label>
  <input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" required maxlength="32" value="${m.userCode ?? ''}" autofocus>
  <button type="submit">Continue</button>
</form>`);
}

export function deviceConsentPage(m: {
  csrf: string; userCode: string; username: string; clientName: string; scopes: readonly { description: string }[]; shownTo: string;
}): string {
  return page('Allow a device?', html`
<h1>Allow a device to sign in as you?</h1>
<p class="warning"><strong>A device is asking</strong>, not this browser: <strong>${m.clientName}</strong> on a device that shows the code <strong id="device-user-code">${m.userCode}</strong>. Approve only if you started this on a device you have with you. If someone sent you this code, deny.</p>
<p class="muted">Signed in as <strong>${m.username}</strong>.</p>
<p>If you allow it, ${m.clientName} on that device will be able to:</p>
<ul>
${m.scopes.map((s) => html`  <li>${s.description}</li>
`)}</ul>
<form method="post" action="/device/decision">
  <input type="hidden" name="csrf" value="${m.csrf}">
  <input type="hidden" name="user_code" value="${m.userCode}">
  <input type="hidden" name="shown_to" value="${m.shownTo}">
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`);
}

export function deviceDonePage(m: { allowed: boolean; clientName: string }): string {
  return page(m.allowed ? 'Device connected' : 'Device denied', html`
<h1 id="device-result">${m.allowed ? 'Device connected' : 'Device denied'}</h1>
<p>${m.allowed ? html`${m.clientName} on your device is signing you in. You can close this page.` : html`${m.clientName} on that device was not allowed to sign in as you.`}</p>`);
}
