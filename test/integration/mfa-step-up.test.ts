import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { basic, form, FORM_HEADERS } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import {
  allowIfAsked, auditEvents, authorizeUrl, codeFlowClient, codeOf, csrfCookie, enrolPasskey, enrolTotp, ORIGIN, passkeySecondFactor, redeem, RP_ID,
  totpCode, type TestClient,
} from '../support/mfa.js';
import { createUser, FAST_ARGON2, PASSWORD, redirectParams } from '../support/oidc.js';
import { SoftwareAuthenticator } from '../support/webauthn.js';

const ACR = {
  password: 'urn:latchkey:acr:password',
  mfa: 'urn:latchkey:acr:mfa',
  phishingResistant: 'urn:latchkey:acr:phishing-resistant',
};
const IAT = 'initial-access-token-0123456789-abcdefghij';
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** Step-up through /authorize: acr_values, an acr claims request, a client's default_acr_values (OpenID Connect Core §3.1.2.1, §5.5.1.1; Registration §2). */
describe('step-up through the authorization endpoint', () => {
  let app: TestApp;
  let client: TestClient;
  const clock = new ManualClock('2030-01-01T00:00:10Z');
  let sam: { id: string; secret: string; key: SoftwareAuthenticator };

  beforeAll(async () => {
    app = await createTestApp({ ...FAST_ARGON2, INITIAL_ACCESS_TOKEN: IAT }, { clock });
    client = await codeFlowClient(app);
    // sam: a TOTP factor and a passkey.
    const user = await createUser(app.context, 'sam');
    const b = new Browser(app);
    expect((await b.signIn('sam', PASSWORD)).headers.location).toBe('/');
    const { secret } = await enrolTotp(b, clock.now());
    const key = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP_ID });
    expect((await enrolPasskey(b, key)).statusCode).toBe(200);
    sam = { id: user.id, secret, key };
  });
  afterAll(async () => { await app.close(); });

  /** A browser of sam's signed in with the password and TOTP: the mfa level. */
  async function samAtMfa(): Promise<Browser> {
    clock.advance(30);
    const b = new Browser(app);
    expect((await b.signIn('sam', PASSWORD)).headers.location).toBe('/login/factor?return_to=%2F');
    const ok = await b.request('POST', '/login/factor/totp', { csrf: csrfCookie(b), return_to: '/', code: totpCode(sam.secret, clock.now()) });
    expect(ok.statusCode).toBe(303);
    expect((await b.request('GET', '/')).statusCode).toBe(200);
    return b;
  }

  it('an mfa session asked for phishing-resistant steps up with a passkey; the tokens carry the new acr and auth_time', async () => {
    const b = await samAtMfa();
    const signedInAt = clock.now();
    // The session is at mfa: a plain request gets its code at once (after consent) with acr mfa.
    const plain = authorizeUrl(client);
    const first = await redeem(app, client, codeOf(await allowIfAsked(b, await b.request('GET', plain.url))), plain.verifier);
    expect(first.id).toMatchObject({ sub: sam.id, acr: ACR.mfa, amr: ['pwd', 'otp', 'mfa'], auth_time: seconds(signedInAt) });

    clock.advance(120);
    // prompt=none cannot show the passkey page: login_required goes back to the client.
    const silent = await b.request('GET', authorizeUrl(client, { prompt: 'none', acr_values: ACR.phishingResistant }).url);
    expect(silent.statusCode).toBe(303);
    expect(redirectParams(silent.headers.location)).toMatchObject({ error: 'login_required', state: 'st' });

    const request = authorizeUrl(client, { acr_values: ACR.phishingResistant });
    const stepUp = await b.request('GET', request.url);
    expect(stepUp.statusCode).toBe(303);
    const m = /^\/login\/factor\?return_to=%2Finteraction%2F([A-Za-z0-9_-]{43})&acr=urn%3Alatchkey%3Aacr%3Aphishing-resistant$/.exec(stepUp.headers.location!);
    expect(m, stepUp.headers.location).not.toBeNull();
    const interaction = `/interaction/${m![1]}`;

    const page = await b.request('GET', stepUp.headers.location!);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('The application asks for a stronger sign-in for what you are about to do.');
    expect(page.body).toContain('data-options="/login/factor/passkey/options"');
    expect(page.body).not.toContain('action="/login/factor/totp"'); // TOTP does not reach this level
    // The session stays signed in at mfa meanwhile.
    expect((await b.request('GET', '/')).statusCode).toBe(200);

    const proved = await passkeySecondFactor(b, sam.key, { uv: false }, { return_to: interaction, acr: ACR.phishingResistant });
    expect(proved.statusCode).toBe(200);
    expect(proved.body.location).toBe(stepUp.headers.location);
    const back = await b.request('GET', proved.body.location as string);
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toBe(interaction);
    const done = await b.request('GET', interaction);
    const tokens = await redeem(app, client, codeOf(done), request.verifier);
    expect(tokens.id).toMatchObject({
      sub: sam.id, acr: ACR.phishingResistant, amr: ['pwd', 'otp', 'hwk', 'user', 'mfa'], auth_time: seconds(clock.now()),
    });
    expect(tokens.id.auth_time).toBe(seconds(signedInAt) + 120);
    // The access token (a JWT) carries them too.
    expect(tokens.at).toMatchObject({ sub: sam.id, acr: ACR.phishingResistant, auth_time: seconds(clock.now()) });

    // Asked for mfa, a phishing-resistant session is reported as mfa: the value asked for that it meets.
    const lower = authorizeUrl(client, { acr_values: ACR.mfa });
    const mfaTokens = await redeem(app, client, codeOf(await b.request('GET', lower.url)), lower.verifier);
    expect(mfaTokens.id.acr).toBe(ACR.mfa);
    expect(mfaTokens.at.acr).toBe(ACR.mfa);
    // Asked for nothing, it is reported as it is.
    const none = authorizeUrl(client);
    expect((await redeem(app, client, codeOf(await b.request('GET', none.url)), none.verifier)).id.acr).toBe(ACR.phishingResistant);
    // An essential acr claims request is a request for those values too (Core §5.5.1.1).
    const claims = authorizeUrl(client, { claims: JSON.stringify({ id_token: { acr: { essential: true, values: [ACR.mfa] } } }) });
    expect((await redeem(app, client, codeOf(await b.request('GET', claims.url)), claims.verifier)).id.acr).toBe(ACR.mfa);
  });

  it('a refresh keeps the acr and auth_time of the sign-in the grant came from', async () => {
    const b = await samAtMfa();
    const signedInAt = clock.now();
    const request = authorizeUrl(client, { scope: 'openid profile offline_access', prompt: 'consent' });
    const tokens = await redeem(app, client, codeOf(await allowIfAsked(b, await b.request('GET', request.url))), request.verifier);
    expect(tokens.at).toMatchObject({ acr: ACR.mfa, auth_time: seconds(signedInAt) });
    clock.advance(300);
    const refreshed = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic(client.id, client.secret) },
      payload: form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
    });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    const body = refreshed.json() as { access_token: string; id_token: string };
    expect(decodeJwt(body.access_token)).toMatchObject({ sub: sam.id, acr: ACR.mfa, auth_time: seconds(signedInAt) });
    expect(decodeJwt(body.id_token)).toMatchObject({ sub: sam.id, acr: ACR.mfa, amr: ['pwd', 'otp', 'mfa'], auth_time: seconds(signedInAt) });
  });

  it('an acr claims request for phishing-resistant steps up like acr_values', async () => {
    const b = await samAtMfa();
    const request = authorizeUrl(client, { claims: JSON.stringify({ id_token: { acr: { essential: true, values: [ACR.phishingResistant] } } }) });
    const stepUp = await b.request('GET', request.url);
    expect(stepUp.statusCode).toBe(303);
    expect(stepUp.headers.location).toMatch(/^\/login\/factor\?return_to=%2Finteraction%2F[A-Za-z0-9_-]{43}&acr=urn%3Alatchkey%3Aacr%3Aphishing-resistant$/);
  });

  it('a client registered with default_acr_values [mfa] steps a password session up without acr_values', async () => {
    const strict = await codeFlowClient(app, { default_acr_values: [ACR.mfa] });
    const user = await createUser(app.context, 'ann');
    const b = new Browser(app);
    expect((await b.signIn('ann', PASSWORD)).headers.location).toBe('/');
    // The password session is enough for a client without defaults …
    const plain = authorizeUrl(client);
    expect((await redeem(app, client, codeOf(await allowIfAsked(b, await b.request('GET', plain.url))), plain.verifier)).id.acr).toBe(ACR.password);

    // … not for this one.
    const request = authorizeUrl(strict);
    const stepUp = await b.request('GET', request.url);
    expect(stepUp.statusCode).toBe(303);
    const m = /^\/login\/factor\?return_to=%2Finteraction%2F([A-Za-z0-9_-]{43})&acr=urn%3Alatchkey%3Aacr%3Amfa$/.exec(stepUp.headers.location!);
    expect(m, stepUp.headers.location).not.toBeNull();
    const interaction = `/interaction/${m![1]}`;
    const silent = await b.request('GET', authorizeUrl(strict, { prompt: 'none' }).url);
    expect(redirectParams(silent.headers.location).error).toBe('login_required');

    // ann has no factor: the page offers enrolment (passkey or TOTP), carrying the level on.
    const page = await b.request('GET', stepUp.headers.location!);
    expect(page.statusCode).toBe(200);
    const totpLink = `/account/totp?${new URLSearchParams({ return_to: interaction, acr: ACR.mfa })}`;
    expect(page.body).toContain(`<a href="${totpLink.replace(/&/g, '&amp;')}">Use an authenticator app instead</a>`);
    const setup = await b.request('GET', totpLink);
    expect(setup.statusCode).toBe(200);
    const secret = /<code id="totp-secret">([^<]+)<\/code>/.exec(setup.body)![1]!.replace(/\s+/g, '');
    const confirmed = await b.request('POST', '/account/totp', { csrf: csrfCookie(b), return_to: interaction, acr: ACR.mfa, code: totpCode(secret, clock.now()) });
    expect(confirmed.statusCode).toBe(303);
    const factorPath = `/login/factor?${new URLSearchParams({ return_to: interaction, acr: ACR.mfa })}`;
    expect(confirmed.headers.location).toBe(`/account/recovery-codes?${new URLSearchParams({ return_to: factorPath })}`);
    const back = await b.request('GET', factorPath);
    expect(back.statusCode).toBe(303);
    expect(back.headers.location).toBe(interaction);
    const done = await allowIfAsked(b, await b.request('GET', interaction));
    const tokens = await redeem(app, strict, codeOf(done), request.verifier);
    expect(tokens.id).toMatchObject({ sub: user.id, acr: ACR.mfa, amr: ['pwd', 'otp', 'mfa'] });
    // The client's default is a floor: an acr_values asking for less still gets (and reports) mfa.
    const explicit = authorizeUrl(strict, { acr_values: ACR.password });
    expect((await redeem(app, strict, codeOf(await b.request('GET', explicit.url)), explicit.verifier)).id.acr).toBe(ACR.mfa);
    expect((await auditEvents(app, 'mfa.totp.enrolled', user.id))).toHaveLength(1);
  });

  it('advertises its levels in discovery; a value it does not advertise asks for nothing (acr_values is voluntary)', async () => {
    const discovery = (await app.server.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json() as Record<string, string[]>;
    expect(discovery.acr_values_supported).toEqual([ACR.password, ACR.mfa, ACR.phishingResistant]);
    expect(discovery.claims_supported).toEqual(expect.arrayContaining(['acr', 'amr', 'auth_time']));

    const b = await samAtMfa();
    const request = authorizeUrl(client, { acr_values: 'urn:example:loa:4' });
    const tokens = await redeem(app, client, codeOf(await allowIfAsked(b, await b.request('GET', request.url))), request.verifier);
    expect(tokens.id.acr).toBe(ACR.mfa);
    // Unknown values next to a known one: the known one counts.
    const mixed = authorizeUrl(client, { acr_values: `urn:example:loa:4 ${ACR.phishingResistant}` });
    const stepUp = await b.request('GET', mixed.url);
    expect(stepUp.statusCode).toBe(303);
    expect(stepUp.headers.location).toMatch(/^\/login\/factor\?return_to=%2Finteraction%2F[A-Za-z0-9_-]{43}&acr=urn%3Alatchkey%3Aacr%3Aphishing-resistant$/);
  });

  it('refuses default_acr_values with a value it does not advertise at registration (invalid_client_metadata)', async () => {
    const register = (metadata: Record<string, unknown>) => app.server.inject({
      method: 'POST', url: '/register', headers: { authorization: `Bearer ${IAT}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ redirect_uris: ['https://rp.example.com/cb'], grant_types: ['authorization_code'], scope: 'openid', ...metadata }),
    });
    const refused = await register({ default_acr_values: [ACR.mfa, 'urn:example:loa:3'] });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toBe('invalid_client_metadata');
    const accepted = await register({ default_acr_values: [ACR.phishingResistant] });
    expect(accepted.statusCode).toBe(201);
    expect(accepted.json().default_acr_values).toEqual([ACR.phishingResistant]);
  });
});
