import { describe, expect, it } from 'vitest';
import { postLogoutRedirectUrl, redirectsAutomatically, validateEndSessionRequest, type EndSessionDeps } from '../../src/capabilities/logout/end-session.js';
import { InvalidRequest } from '../../src/oauth/errors.js';
import type { IdTokenHint } from '../../src/oauth/tokens.js';
import { MemoryClients, testClient } from '../support/kernel.js';

const AFTER = 'https://app.example.com/signed-out';

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

function setup() {
  const clients = new MemoryClients([
    testClient('app', { post_logout_redirect_uris: [AFTER, 'https://app.example.com/bye?lang=en'] }),
    testClient('other', { post_logout_redirect_uris: ['https://other.example.com/out'] }),
    testClient('off', { post_logout_redirect_uris: [AFTER] }, { disabled: true }),
    { ...testClient('selfreg', { post_logout_redirect_uris: ['https://selfreg.example.net/out'] }), source: 'registration' },
    { ...testClient('vouched', { post_logout_redirect_uris: ['https://vouched.example.net/out'], skip_consent: true }), source: 'registration' },
  ]);
  /** The ID tokens "this server issued", by their text (the real check is readIdTokenHint, tested with tokens). */
  const hints = new Map<string, IdTokenHint>([
    ['hint-app', { sub: 'alice', aud: ['app'] }],
    ['hint-off', { sub: 'alice', aud: ['off'] }],
    ['hint-gone', { sub: 'alice', aud: ['gone'] }],
    ['hint-two', { sub: 'alice', aud: ['app', 'other'] }],
    ['hint-selfreg', { sub: 'mallory', aud: ['selfreg'], sid: 'sid-mallory' }],
    ['hint-vouched', { sub: 'mallory', aud: ['vouched'], sid: 'sid-mallory' }],
  ]);
  const deps: EndSessionDeps = { clients, readIdTokenHint: (t) => hints.get(t) };
  const validate = (body: Record<string, string | string[]>) => validateEndSessionRequest(body, deps);
  return { clients, validate };
}

describe('validating a logout request (RP-Initiated Logout 1.0 §2–§4)', () => {
  it('no parameters: sign out, no client, no redirect', async () => {
    const { validate } = setup();
    expect(await validate({})).toEqual({ client: undefined, redirect: undefined, params: {} });
  });
  it('an id_token_hint names the client it was issued to', async () => {
    const { validate, clients } = setup();
    expect(await validate({ id_token_hint: 'hint-app' })).toEqual({ client: clients.byId.get('app'), redirect: undefined, params: { id_token_hint: 'hint-app' } });
  });
  it('redirects, with state, to a post_logout_redirect_uri registered exactly for the hint\'s client (§3)', async () => {
    const { validate, clients } = setup();
    expect(await validate({ id_token_hint: 'hint-app', post_logout_redirect_uri: AFTER, state: 'xyz', logout_hint: 'alice', ui_locales: 'fr' })).toEqual({
      client: clients.byId.get('app'),
      redirect: { uri: AFTER, state: 'xyz' },
      params: { id_token_hint: 'hint-app', post_logout_redirect_uri: AFTER, state: 'xyz' },
    });
    expect((await validate({ id_token_hint: 'hint-app', post_logout_redirect_uri: AFTER })).redirect).toEqual({ uri: AFTER, state: undefined });
  });
  it('a client_id with a hint issued to several clients picks the client', async () => {
    const { validate, clients } = setup();
    const result = await validate({ id_token_hint: 'hint-two', client_id: 'other', post_logout_redirect_uri: 'https://other.example.com/out' });
    expect(result.client).toBe(clients.byId.get('other'));
    expect(result.redirect).toEqual({ uri: 'https://other.example.com/out', state: undefined });
    expect(result.params).toEqual({ id_token_hint: 'hint-two', client_id: 'other', post_logout_redirect_uri: 'https://other.example.com/out' });
  });
  it('a client_id without a hint proves nothing: checked to exist, not returned', async () => {
    const { validate } = setup();
    expect(await validate({ client_id: 'app' })).toEqual({ client: undefined, redirect: undefined, params: { client_id: 'app' } });
  });
  it('refuses each invalid request with invalid_request, and then does nothing', async () => {
    const { validate } = setup();
    const cases: Array<[Record<string, string | string[]>, string]> = [
      [{ id_token_hint: 'forged' }, 'id_token_hint is not an ID token this server issued'],
      [{ id_token_hint: 'hint-app', client_id: 'other' }, 'client_id is not the client the id_token_hint was issued to'],
      [{ client_id: 'nobody' }, 'unknown client_id'],
      [{ client_id: 'not a client id' }, 'unknown client_id'],
      [{ id_token_hint: 'hint-gone', client_id: 'gone' }, 'unknown client_id'],
      [{ post_logout_redirect_uri: AFTER }, 'post_logout_redirect_uri requires an id_token_hint'],
      [{ client_id: 'app', post_logout_redirect_uri: AFTER }, 'post_logout_redirect_uri requires an id_token_hint'],
      [{ id_token_hint: 'hint-off', post_logout_redirect_uri: AFTER }, 'the client of the id_token_hint is unknown or disabled'],
      [{ id_token_hint: 'hint-gone', post_logout_redirect_uri: AFTER }, 'the client of the id_token_hint is unknown or disabled'],
      [{ id_token_hint: 'hint-two', post_logout_redirect_uri: AFTER }, 'the client of the id_token_hint is unknown or disabled'],
      [{ id_token_hint: 'hint-app', post_logout_redirect_uri: 'https://other.example.com/out' }, 'post_logout_redirect_uri is not registered for this client'],
      [{ id_token_hint: 'hint-app', post_logout_redirect_uri: `${AFTER}/` }, 'post_logout_redirect_uri is not registered for this client'],
      [{ id_token_hint: 'hint-app', post_logout_redirect_uri: `${AFTER}?x=1` }, 'post_logout_redirect_uri is not registered for this client'],
      [{ id_token_hint: ['hint-app', 'hint-app'] }, 'the id_token_hint parameter must not be repeated (RFC 6749 §3.1)'],
      [{ id_token_hint: 'hint-app', state: ['a', 'b'] }, 'the state parameter must not be repeated (RFC 6749 §3.1)'],
    ];
    for (const [body, description] of cases) {
      const err = await rejection(validate(body));
      expect(err, description).toBeInstanceOf(InvalidRequest);
      expect(err, JSON.stringify(body)).toMatchObject({ error: 'invalid_request', status: 400, description });
    }
  });
  it('does not look up a client_id no client can have', async () => {
    const { validate, clients } = setup();
    await rejection(validate({ client_id: 'a b' }));
    expect(clients.lookups).toEqual([]);
  });
});

describe('the post-logout redirect (§3)', () => {
  it('is the URI as registered, with state added to its query', () => {
    expect(postLogoutRedirectUrl({ uri: AFTER })).toBe(AFTER);
    expect(postLogoutRedirectUrl({ uri: AFTER, state: 'xyz' })).toBe(`${AFTER}?state=xyz`);
    expect(postLogoutRedirectUrl({ uri: 'https://app.example.com/bye?lang=en', state: 'a b&c=d' })).toBe('https://app.example.com/bye?lang=en&state=a+b%26c%3Dd');
  });
});

describe('redirecting automatically after logout (RFC 9700 §4.11.2)', () => {
  it('to a client an administrator registered: whenever the request is valid', async () => {
    const { validate } = setup();
    const request = await validate({ id_token_hint: 'hint-app', post_logout_redirect_uri: AFTER });
    expect(redirectsAutomatically(request, undefined)).toBe(true);
    expect(redirectsAutomatically(request, 'any-sid')).toBe(true);
  });
  it('to a self-registered client: only when the hint was issued in this browser\'s session', async () => {
    const { validate } = setup();
    const request = await validate({ id_token_hint: 'hint-selfreg', post_logout_redirect_uri: 'https://selfreg.example.net/out' });
    expect(request.hintSid).toBe('sid-mallory');
    expect(redirectsAutomatically(request, 'sid-mallory')).toBe(true);
    expect(redirectsAutomatically(request, 'sid-victim')).toBe(false);
    expect(redirectsAutomatically(request, undefined)).toBe(false);
  });
  it('to a self-registered client an administrator made first-party: as to any of theirs', async () => {
    const { validate } = setup();
    const request = await validate({ id_token_hint: 'hint-vouched', post_logout_redirect_uri: 'https://vouched.example.net/out' });
    expect(redirectsAutomatically(request, undefined)).toBe(true);
  });
  it('never without a redirect', async () => {
    const { validate } = setup();
    expect(redirectsAutomatically(await validate({ id_token_hint: 'hint-app' }), undefined)).toBe(false);
  });
});
