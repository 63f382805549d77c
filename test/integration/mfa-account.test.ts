import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import {
  allowIfAsked, auditEvents, authorizeUrl, codeFlowClient, codeOf, csrfCookie, enrolPasskey, enrolTotp, expectScriptsAllowed, metricSample, ORIGIN, passkeySecondFactor, redeem, RP_ID,
  type TestClient,
} from '../support/mfa.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';

/** The account page (/account): changing factors needs a recent sign-in (MFA_RECENT_SIGN_IN); withdrawing an app's consent does not. */
describe('the account page', () => {
  let app: TestApp;
  let client: TestClient;
  let resourceServer: TestClient;
  const clock = new ManualClock('2030-01-01T00:00:10Z');

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, MFA_RECENT_SIGN_IN: '60' }, { clock });
    client = await codeFlowClient(app);
    const rs = await createClient(app.context, { grant_types: ['client_credentials'], scope: 'api:read', introspect_any_token: true });
    resourceServer = { id: rs.client.clientId, secret: rs.clientSecret! };
  });
  afterAll(async () => { await app.close(); });

  const removeForm = (id: string) => `action="/account/passkeys/${id}/remove"`;

  it('after MFA_RECENT_SIGN_IN factors cannot be changed; a fresh sign-in with the passkey may remove it (audited)', async () => {
    const user = await createUser(app.context, 'kim');
    const b = new Browser(app);
    expect((await b.signIn('kim', PASSWORD)).headers.location).toBe('/');
    const key = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID });
    expect((await enrolPasskey(b, key)).statusCode).toBe(200);
    const id = key.credentials[0]!.id;
    // Adding it proved nothing: until the session uses a factor of the account, it changes none.
    expect((await b.request('GET', '/account')).body).not.toContain(removeForm(id));
    expect((await passkeySecondFactor(b, key, { uv: false })).statusCode).toBe(200);
    const recent = await b.request('GET', '/account');
    expect(recent.body).toContain(removeForm(id));
    expect(recent.body).toContain('data-passkey="create"');
    expectScriptsAllowed(recent);

    clock.advance(61);
    const stale = await b.request('GET', '/account');
    expect(stale.statusCode).toBe(200);
    expect(stale.body).toContain('Changing how you sign in needs a sign-in within the last 1 minutes.');
    expect(stale.body).toContain('<strong>Key</strong>');
    expect(stale.body).not.toContain(removeForm(id));
    expect(stale.body).not.toContain('data-passkey="create"');
    expect(stale.body).not.toContain('action="/account/recovery-codes"');
    const options = await b.json('/account/passkeys/options', { csrf: csrfCookie(b) });
    expect(options.statusCode).toBe(403);
    expect(options.body).toEqual({ error: 'login_required', error_description: 'Sign in again (with one of your passkeys, if you have any) to add a passkey.' });
    const refused = await b.request('POST', `/account/passkeys/${id}/remove`, { csrf: csrfCookie(b) });
    expect(refused.statusCode).toBe(303);
    expect(refused.headers.location).toBe('/login?return_to=%2Faccount');
    expect((await b.request('GET', '/account/recovery-codes')).headers.location).toBe('/login?return_to=%2Faccount');
    expect(await app.context.store.db.selectFrom('webauthn_credentials').select('id').where('user_id', '=', user.id).execute()).toEqual([{ id }]);

    // Sign in again: password, then the passkey (the account's factor). Now it may change factors.
    const c = new Browser(app);
    expect((await c.signIn('kim', PASSWORD, '/account')).headers.location).toBe('/login/factor?return_to=%2Faccount');
    expect((await passkeySecondFactor(c, key, { uv: false })).statusCode).toBe(200);
    const fresh = await c.request('GET', '/account');
    expect(fresh.body).toContain(removeForm(id));
    const removedBefore = await metricSample(app, 'latchkey_mfa_factor_changes_total{factor="passkey",change="removed"}');
    const removed = await c.request('POST', `/account/passkeys/${id}/remove`, { csrf: csrfCookie(c) });
    expect(removed.statusCode).toBe(303);
    expect(removed.headers.location).toBe('/account?notice=passkey_removed');
    const after = await c.request('GET', removed.headers.location!);
    expect(after.body).toContain('The passkey was removed.');
    expect(after.body).toContain('No passkeys.');
    expect(await app.context.store.db.selectFrom('webauthn_credentials').select('id').where('user_id', '=', user.id).execute()).toEqual([]);
    expect(await metricSample(app, 'latchkey_mfa_factor_changes_total{factor="passkey",change="removed"}')).toBe(removedBefore + 1);
    const audited = await auditEvents(app, 'mfa.passkey.removed', user.id);
    expect(audited).toHaveLength(1);
    expect(audited[0]!.details).toMatchObject({ credential_id: id });
    // Removing it again finds nothing.
    const again = await c.request('POST', `/account/passkeys/${id}/remove`, { csrf: csrfCookie(c) });
    expect(again.headers.location).toBe('/account?notice=not_found');
    // Without the CSRF token nothing is changed.
    expect((await c.request('POST', '/account/totp/remove', {})).statusCode).toBe(403);
  });

  it('turning off TOTP (recent) removes the factor: audited, and the next sign-in needs the password only', async () => {
    const user = await createUser(app.context, 'tia');
    const b = new Browser(app);
    expect((await b.signIn('tia', PASSWORD)).headers.location).toBe('/');
    await enrolTotp(b, clock.now());
    const page = await b.request('GET', '/account');
    expect(page.body).toMatch(/<p id="totp-status">On since 2030-01-01 \d\d:\d\d UTC; last used never\.<\/p>/);
    expect(page.body).toContain('action="/account/totp/remove"');
    const removed = await b.request('POST', '/account/totp/remove', { csrf: csrfCookie(b) });
    expect(removed.statusCode).toBe(303);
    expect(removed.headers.location).toBe('/account?notice=totp_removed');
    const after = await b.request('GET', removed.headers.location!);
    expect(after.body).toContain('The authenticator app was turned off.');
    expect(after.body).toContain('<p id="totp-status">Off.</p>');
    expect(await auditEvents(app, 'mfa.totp.removed', user.id)).toHaveLength(1);
    const c = new Browser(app);
    expect((await c.signIn('tia', PASSWORD)).headers.location).toBe('/');
  });

  it('withdrawing an app\'s consent (no recent sign-in needed) removes it and revokes its tokens', async () => {
    const user = await createUser(app.context, 'wes');
    const b = new Browser(app);
    expect((await b.signIn('wes', PASSWORD)).headers.location).toBe('/');
    const request = authorizeUrl(client, { scope: 'openid profile offline_access', prompt: 'consent' });
    const tokens = await redeem(app, client, codeOf(await allowIfAsked(b, await b.request('GET', request.url))), request.verifier);
    expect(tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const introspect = async (token: string) => (await app.server.inject({
      method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(resourceServer.id, resourceServer.secret) }, payload: form({ token }),
    })).json() as { active: boolean };
    expect((await introspect(tokens.access_token)).active).toBe(true);

    clock.advance(120); // past MFA_RECENT_SIGN_IN: withdrawing only takes access away
    const page = await b.request('GET', '/account');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<strong>Invoices</strong> <span class="muted">(openid profile offline_access;');
    const action = `/account/apps/${encodeURIComponent(client.id)}/withdraw`;
    expect(page.body).toContain(`action="${action}"`);
    // Without the CSRF token: refused, nothing withdrawn.
    expect((await b.request('POST', action, {})).statusCode).toBe(403);
    expect((await introspect(tokens.access_token)).active).toBe(true);

    const withdrawn = await b.request('POST', action, { csrf: csrfCookie(b) });
    expect(withdrawn.statusCode).toBe(303);
    expect(withdrawn.headers.location).toBe('/account?notice=app_removed');
    const after = await b.request('GET', withdrawn.headers.location!);
    expect(after.body).toContain('The app no longer has access: its refresh tokens and the access tokens issued with them were revoked');
    expect(after.body).not.toContain('<strong>Invoices</strong>');
    expect(await app.context.store.db.selectFrom('consents').select('client_id').where('user_id', '=', user.id).execute()).toEqual([]);

    const refreshed = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) },
      payload: form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
    });
    expect(refreshed.statusCode).toBe(400);
    expect(refreshed.json().error).toBe('invalid_grant');
    expect((await introspect(tokens.access_token)).active).toBe(false);

    const audited = await auditEvents(app, 'consent.withdrawn', user.id);
    expect(audited).toHaveLength(1);
    expect(audited[0]!.client_id).toBe(client.id);
    expect(audited[0]!.details).toMatchObject({ families: 1 });
    // Withdrawn once: the second time there is nothing to withdraw.
    expect((await b.request('POST', action, { csrf: csrfCookie(b) })).headers.location).toBe('/account?notice=not_found');
    // The next authorization asks for consent again.
    const next = await b.request('GET', authorizeUrl(client).url);
    expect(next.statusCode).toBe(200);
    expect(next.body).toContain('Allow access?');
  });

  it('a browser not signed in is sent to sign in; one waiting for its second factor to the factor page', async () => {
    const anonymous = new Browser(app);
    const res = await anonymous.request('GET', '/account');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login?return_to=%2Faccount');
    const withdraw = await anonymous.request('POST', `/account/apps/${encodeURIComponent(client.id)}/withdraw`, { csrf: 'x'.repeat(43) });
    expect(withdraw.statusCode).toBe(403); // no CSRF cookie to match

    const user = await createUser(app.context, 'lee');
    await app.context.store.db.insertInto('totp_factors').values({
      user_id: user.id, secret_ciphertext: 'x', secret_nonce: 'y', confirmed_at: clock.now(), last_used_step: null, created_at: clock.now(), last_used_at: null,
    }).execute();
    const pending = new Browser(app);
    expect((await pending.signIn('lee', PASSWORD)).headers.location).toBe('/login/factor?return_to=%2F');
    const page = await pending.request('GET', '/account');
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toBe('/login/factor?return_to=%2Faccount');
    // Nor may it act on the account page.
    const act = await pending.request('POST', `/account/apps/${encodeURIComponent(client.id)}/withdraw`, { csrf: csrfCookie(pending) });
    expect(act.statusCode).toBe(303);
    expect(act.headers.location).toBe('/login?return_to=%2Faccount');
    const options = await pending.json('/account/passkeys/options', { csrf: csrfCookie(pending) });
    expect(options.statusCode).toBe(403);
    expect(options.body.error).toBe('login_required');
  });
});
