import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { notifyBackchannelLogout, type BackchannelLogoutDeps } from '../../src/oauth/backchannel-logout.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/oauth/tokens.js';
import { OutboundError } from '../../src/platform/outbound/fetcher.js';
import { ManualClock } from '../support/clock.js';
import { MemoryClients, MemoryKeyRing, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;
const SESSION = { sid: 'sid-1', sub: 'alice' };

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

function setup(recorded: string[], answer: (url: string) => Promise<number> = async () => 200) {
  const keys = new MemoryKeyRing(['ES256', 'EdDSA']);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const clients = new MemoryClients([
    testClient('a', { backchannel_logout_uri: 'https://a.example.com/logout' }),
    testClient('b', { backchannel_logout_uri: 'https://b.example.com/logout', id_token_signed_response_alg: 'EdDSA' }),
    testClient('quiet'),
    testClient('off', { backchannel_logout_uri: 'https://off.example.com/logout' }, { disabled: true }),
  ]);
  const taken: string[] = [];
  const posts: Array<{ url: string; form: URLSearchParams }> = [];
  const deps: BackchannelLogoutDeps = {
    keys, clock, issuer: ISSUER, clients, tokenTtl: 120,
    sessionClients: { async take(sid) { taken.push(sid); return recorded; } },
    async post(url, form) { posts.push({ url, form }); return answer(url); },
  };
  return { keys, clock, deps, taken, posts };
}

describe('back-channel logout (OpenID Connect Back-Channel Logout 1.0)', () => {
  it('posts one logout token to each client of the session that registered a backchannel_logout_uri (§2.5)', async () => {
    const { deps, taken, posts } = setup(['a', 'quiet', 'gone', 'off', 'b']);
    const results = await notifyBackchannelLogout(SESSION, deps);
    expect(taken).toEqual(['sid-1']);
    expect(results).toEqual([
      { clientId: 'a', outcome: 'delivered', detail: 'HTTP 200' },
      { clientId: 'b', outcome: 'delivered', detail: 'HTTP 200' },
    ]);
    expect(posts.map((p) => p.url).sort()).toEqual(['https://a.example.com/logout', 'https://b.example.com/logout']);
    for (const { form } of posts) expect([...form.keys()]).toEqual(['logout_token']);
  });
  it('the logout token: typ logout+jwt, iss, sub, aud, iat, exp, jti, sid and the event, never a nonce (§2.4)', async () => {
    const { deps, keys, clock, posts } = setup(['a']);
    await notifyBackchannelLogout(SESSION, deps);
    const token = posts[0]!.form.get('logout_token')!;
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'logout+jwt', kid: 'k-ES256' });
    const { payload } = await jwtVerify(token, keys.publicKey('ES256'), { typ: 'logout+jwt', issuer: ISSUER, audience: 'a', currentDate: clock.now() });
    expect(payload).toEqual({
      iss: ISSUER, sub: 'alice', aud: 'a', iat: NOW, exp: NOW + 120, jti: expect.stringMatching(/^[0-9a-f-]{36}$/), sid: 'sid-1',
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    });
  });
  it('signs each client\'s token with its id_token_signed_response_alg', async () => {
    const { deps, keys, clock, posts } = setup(['b']);
    await notifyBackchannelLogout(SESSION, deps);
    const token = posts[0]!.form.get('logout_token')!;
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'logout+jwt', kid: 'k-EdDSA' });
    await expect(jwtVerify(token, keys.publicKey('EdDSA'), { currentDate: clock.now() })).resolves.toBeDefined();
  });
  it('a 2xx answer is delivered (204 too); anything else failed, with its status', async () => {
    for (const [status, outcome] of [[200, 'delivered'], [204, 'delivered'], [299, 'delivered'], [300, 'failed'], [302, 'failed'], [400, 'failed'], [503, 'failed'], [199, 'failed']] as const) {
      const { deps } = setup(['a'], async () => status);
      expect(await notifyBackchannelLogout(SESSION, deps), String(status)).toEqual([{ clientId: 'a', outcome, detail: `HTTP ${status}` }]);
    }
  });
  it('a post that fails is failed, saying why in the fetcher\'s words (timeout, the system error code, a refusal, a redirect), 200 characters at most', async () => {
    const cases: Array<[unknown, string]> = [
      [new OutboundError('timeout', 'timeout'), 'timeout'],
      [new OutboundError('network', 'ECONNREFUSED'), 'ECONNREFUSED'],
      [new OutboundError('refused', 'refused: must not point at an internal address (10.0.0.1 is private)'), 'refused: must not point at an internal address (10.0.0.1 is private)'],
      [new OutboundError('redirect', 'redirect not followed (HTTP 302)'), 'redirect not followed (HTTP 302)'],
      [new Error('boom'), 'boom'],
      [new Error('x'.repeat(300)), 'x'.repeat(200)],
      ['a string', 'a string'],
    ];
    for (const [thrown, detail] of cases) {
      const { deps } = setup(['a'], async () => { throw thrown; });
      expect(await notifyBackchannelLogout(SESSION, deps), detail).toEqual([{ clientId: 'a', outcome: 'failed', detail }]);
    }
  });
  it('one client failing does not stop the others', async () => {
    const { deps } = setup(['a', 'b'], async (url) => { if (url.startsWith('https://a.')) throw new Error('down'); return 200; });
    expect(await notifyBackchannelLogout(SESSION, deps)).toEqual([
      { clientId: 'a', outcome: 'failed', detail: 'down' },
      { clientId: 'b', outcome: 'delivered', detail: 'HTTP 200' },
    ]);
  });
  it('a token that cannot be signed (the client\'s alg has no active key) fails that client only, without a post', async () => {
    const { deps, keys, posts } = setup(['a', 'b']);
    keys.revoke('k-EdDSA');
    expect(await notifyBackchannelLogout(SESSION, deps)).toEqual([
      { clientId: 'a', outcome: 'delivered', detail: 'HTTP 200' },
      { clientId: 'b', outcome: 'failed', detail: 'no active EdDSA key' },
    ]);
    expect(posts.map((p) => p.url)).toEqual(['https://a.example.com/logout']);
  });
  it('a session no client took part in: nothing to do', async () => {
    const { deps, posts } = setup([]);
    expect(await notifyBackchannelLogout(SESSION, deps)).toEqual([]);
    expect(posts).toEqual([]);
  });
});
