import { hash } from 'node:crypto';

/**
 * The browser half of the passkey ceremonies, inlined in the pages (allowed by its hash: the
 * CSP forbids every other script). Plain ES2020, no library. A form says what to do:
 *
 *   <form data-passkey="get|create" data-options="/url" data-verify="/url" [data-autofill]>
 *
 * On submit it POSTs the form's fields as JSON to data-options, calls navigator.credentials with
 * the options (base64url → ArrayBuffer, WebAuthn §5.1.3/§5.1.4), and POSTs the fields and the
 * credential serialised as RegistrationResponseJSON/AuthenticationResponseJSON (§5.1.10) to
 * data-verify, which answers { location } or { error, error_description }. With data-autofill a
 * "get" form also starts a conditional request on load (§5.1.4.1: the passkeys are offered in the
 * autofill of an input with autocomplete="username webauthn"), aborted when the form is submitted.
 * Errors are shown in the form's [data-passkey-error] element (made when missing), never thrown.
 */
export const PASSKEY_SCRIPT = `(function () {
  'use strict';
  var MESSAGES = {
    NotAllowedError: 'The passkey request was cancelled or timed out.',
    InvalidStateError: 'This device already holds a passkey for this account.',
    SecurityError: 'Passkeys cannot be used on this address.',
    unsupported: 'This browser does not support passkeys.',
    failed: 'Something went wrong. Please try again.'
  };

  function toBuffer(text) {
    var base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    var binary = atob(base64 + '==='.slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer), binary = '';
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/[+]/g, '-').replace(/[/]/g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBuffer(d.id) }); });
  }

  function fields(form) {
    var data = {};
    new FormData(form).forEach(function (value, name) { if (typeof value === 'string') data[name] = value; });
    return data;
  }

  async function post(url, body) {
    var res = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
    });
    return res.json();
  }

  function serialise(credential) {
    var r = credential.response, response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: credential.id, rawId: toBase64url(credential.rawId), type: credential.type, response: response,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined
    };
  }

  function show(form, message) {
    var box = form.querySelector('[data-passkey-error]');
    var next = form.nextElementSibling;
    if (!box && next && next.hasAttribute('data-passkey-error')) box = next;
    if (!box) {
      box = document.createElement('p');
      box.setAttribute('data-passkey-error', '');
      form.after(box);
    }
    box.setAttribute('role', 'alert');
    box.hidden = !message;
    box.textContent = message || '';
  }

  async function ceremony(form, mediation, signal) {
    var options = await post(form.dataset.options, fields(form));
    if (options.error) return show(form, options.error_description || MESSAGES.failed);
    var credential;
    if (form.dataset.passkey === 'create') {
      credential = await navigator.credentials.create({ signal: signal, publicKey: Object.assign({}, options, {
        challenge: toBuffer(options.challenge),
        user: Object.assign({}, options.user, { id: toBuffer(options.user.id) }),
        excludeCredentials: descriptors(options.excludeCredentials)
      }) });
    } else {
      var request = { signal: signal, publicKey: Object.assign({}, options, {
        challenge: toBuffer(options.challenge),
        allowCredentials: descriptors(options.allowCredentials)
      }) };
      if (mediation) request.mediation = mediation;
      credential = await navigator.credentials.get(request);
    }
    if (!credential) return show(form, MESSAGES.failed);
    var result = await post(form.dataset.verify, Object.assign(fields(form), { response: serialise(credential) }));
    if (result.location) window.location.assign(result.location);
    else show(form, result.error_description || MESSAGES.failed);
  }

  function start(form, mediation, signal) {
    if (!mediation) show(form, '');
    return ceremony(form, mediation, signal).catch(function (error) {
      // A conditional request ends with AbortError when the form is submitted instead, and may be
      // refused by the browser without the person having done anything: neither is theirs to read.
      if ((error && error.name === 'AbortError') || mediation === 'conditional') return;
      show(form, (error && MESSAGES[error.name]) || MESSAGES.failed);
    });
  }

  function init(form) {
    var conditional = null, submitted = false, busy = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      submitted = true;
      if (conditional) conditional.abort();
      conditional = null;
      if (!window.PublicKeyCredential || !navigator.credentials) return show(form, MESSAGES.unsupported);
      if (busy) return;
      busy = true;
      start(form).then(function () { busy = false; });
    });
    if (form.dataset.passkey !== 'get' || !form.hasAttribute('data-autofill')) return;
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available || submitted) return;
      conditional = new AbortController();
      start(form, 'conditional', conditional.signal);
    }, function () {});
  }

  function ready() { document.querySelectorAll('form[data-passkey]').forEach(init); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready);
  else ready();
})();
`;

/** Its CSP source (CSP Level 3 §2.3.1 hash-source), for the pages that embed it. */
export const PASSKEY_SCRIPT_HASH = `'sha256-${hash('sha256', PASSKEY_SCRIPT, 'base64')}'`;
