import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { ManualClock } from '../support/clock.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';

const IAT = 'initial-access-token-for-rate-limit-tests-0123456789';

/** The value of one sample line of the registry, e.g. `latchkey_rate_limited_total{endpoint="token",limit="ip"}`. */
async function sample(app: TestApp, series: string): Promise<number | undefined> {
  const line = (await app.context.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function expectLimited(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, windowSeconds: number): void {
  expect(res.statusCode).toBe(429);
  expect(res.json()).toEqual({ error: 'too_many_requests', error_description: 'too many requests; retry after the time in Retry-After' });
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(res.headers['cache-control']).toBe('no-store');
}

describe('rate limits on introspection and revocation (per IP, and per client once it has authenticated)', () => {
  let app: TestApp;
  let secret: string;
  beforeAll(async () => {
    app = await createTestApp({
      INTROSPECTION_RATE_LIMIT_PER_CLIENT: '2', INTROSPECTION_RATE_LIMIT_PER_IP: '3',
      REVOCATION_RATE_LIMIT_PER_CLIENT: '2', REVOCATION_RATE_LIMIT_PER_IP: '3', RATE_LIMIT_WINDOW: '1h',
    });
    secret = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'rs')).clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  for (const [path, endpoint] of [['/introspect', 'introspection'], ['/revoke', 'revocation']] as const) {
    it(`${path}: 429 with Retry-After after the client's limit, then the IP's`, async () => {
      const post = (ip: string, authorization?: string) => app.server.inject({
        method: 'POST', url: path, remoteAddress: ip,
        headers: { ...FORM_HEADERS, ...(authorization ? { authorization } : {}) }, payload: form({ token: 'not-a-token' }),
      });
      for (let i = 0; i < 2; i++) expect((await post('10.1.0.1', basic('rs', secret))).statusCode).toBe(200);
      expectLimited(await post('10.1.0.1', basic('rs', secret)), 3600);
      expect(await sample(app, `latchkey_rate_limited_total{endpoint="${endpoint}",limit="client"}`)).toBe(1);
      // The client's limit is per client, whatever the address.
      expectLimited(await post('10.1.0.2', basic('rs', secret)), 3600);
      // A request claiming no client counts against its IP only: 10.1.0.1 has made 3 requests.
      expectLimited(await post('10.1.0.1'), 3600);
      expect(await sample(app, `latchkey_rate_limited_total{endpoint="${endpoint}",limit="ip"}`)).toBe(1);
      expect((await post('10.1.0.3')).statusCode).toBe(401);
    });
  }

  for (const path of ['/introspect', '/revoke'] as const) {
    it(`${path}: requests in a client's name with wrong credentials spend none of its allowance`, async () => {
      const name = `rs-${path.slice(1)}`;
      const own = (await createClient(app.context, { grant_types: ['client_credentials'] }, name)).clientSecret!;
      const post = (ip: string, authorization: string) => app.server.inject({
        method: 'POST', url: path, remoteAddress: ip, headers: { ...FORM_HEADERS, authorization }, payload: form({ token: 'not-a-token' }),
      });
      for (const ip of ['10.1.2.1', '10.1.2.2', '10.1.2.3']) expect((await post(ip, basic(name, 'wrong'))).statusCode).toBe(401);
      for (const ip of ['10.1.3.1', '10.1.3.2']) expect((await post(ip, basic(name, own))).statusCode).toBe(200);
      expectLimited(await post('10.1.3.3', basic(name, own)), 3600);
    });
  }

  it('counts an IPv6 address as its /64', async () => {
    const post = (ip: string) => app.server.inject({ method: 'POST', url: '/introspect', remoteAddress: ip, headers: FORM_HEADERS, payload: form({ token: 'x' }) });
    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff::3']) expect((await post(ip)).statusCode).toBe(401);
    expectLimited(await post('2001:db8:1:2::4'), 3600);
    expect((await post('2001:db8:1:3::1')).statusCode).toBe(401);
  });
});

describe('the back-off after failed client authentications', () => {
  let app: TestApp;
  let secret: string;
  const clock = new ManualClock(new Date());
  beforeAll(async () => {
    app = await createTestApp({ CLIENT_AUTH_FAILURE_LIMIT: '3', RATE_LIMIT_WINDOW: '10m' }, { clock });
    secret = (await createClient(app.context, { grant_types: ['client_credentials'] }, 'svc')).clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  const post = (path: string, ip: string, authorization: string) => app.server.inject({
    method: 'POST', url: path, remoteAddress: ip, headers: { ...FORM_HEADERS, authorization },
    payload: form(path === '/token' ? { grant_type: 'client_credentials' } : { token: 'x' }),
  });

  it('refuses every client-authenticating request from an IP after its failures reach the limit, at every endpoint', async () => {
    expect((await post('/token', '10.2.0.1', basic('svc', 'wrong'))).statusCode).toBe(401);
    expect((await post('/introspect', '10.2.0.1', basic('svc', 'wrong'))).statusCode).toBe(401);
    // Successes are not counted.
    expect((await post('/token', '10.2.0.1', basic('svc', secret))).statusCode).toBe(200);
    expect((await post('/revoke', '10.2.0.1', basic('nobody', 'wrong'))).statusCode).toBe(401);
    // Three failures: now even the right secret is refused from this address, at each endpoint.
    expectLimited(await post('/token', '10.2.0.1', basic('svc', secret)), 600);
    expectLimited(await post('/introspect', '10.2.0.1', basic('svc', secret)), 600);
    expectLimited(await post('/revoke', '10.2.0.1', basic('svc', secret)), 600);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="token",limit="auth_failures"}')).toBe(1);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="introspection",limit="auth_failures"}')).toBe(1);
    // Keyed by address, not by client: the same client from elsewhere is served.
    expect((await post('/token', '10.2.0.2', basic('svc', secret))).statusCode).toBe(200);
  });

  it('forgets the failures when the window ends', async () => {
    clock.advance(601);
    expect((await post('/token', '10.2.0.1', basic('svc', secret))).statusCode).toBe(200);
  });

  it('counts the failures of an IPv6 address by its /64, and of an IPv4-mapped address as that IPv4 address', async () => {
    for (const ip of ['2001:db8:5:6::1', '2001:db8:5:6::2', '2001:db8:5:6:ffff::3']) expect((await post('/token', ip, basic('svc', 'wrong'))).statusCode).toBe(401);
    expectLimited(await post('/token', '2001:db8:5:6::99', basic('svc', secret)), 600);
    expect((await post('/token', '2001:db8:5:7::1', basic('svc', secret))).statusCode).toBe(200);
    for (const ip of ['10.2.0.9', '::ffff:10.2.0.9', '10.2.0.9']) expect((await post('/token', ip, basic('svc', 'wrong'))).statusCode).toBe(401);
    expectLimited(await post('/token', '10.2.0.9', basic('svc', secret)), 600);
  });
});

describe('rate limits on registration (RFC 7591 / RFC 7592)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ INITIAL_ACCESS_TOKEN: IAT, REGISTRATION_RATE_LIMIT_PER_IP: '3', REGISTRATION_RATE_LIMIT_PER_CLIENT: '2', RATE_LIMIT_WINDOW: '1h' });
  });
  afterAll(async () => { await app.close(); });

  it('limits /register per IP and /register/:client_id per client, with 429 and Retry-After', async () => {
    const register = (ip: string) => app.server.inject({
      method: 'POST', url: '/register', remoteAddress: ip,
      headers: { authorization: `Bearer ${IAT}` }, payload: { grant_types: ['client_credentials'] },
    });
    const created = await register('10.3.0.1');
    expect(created.statusCode).toBe(201);
    const { client_id: clientId, registration_access_token: rat } = created.json() as { client_id: string; registration_access_token: string };
    const read = (ip: string) => app.server.inject({ method: 'GET', url: `/register/${clientId}`, remoteAddress: ip, headers: { authorization: `Bearer ${rat}` } });
    // Requests in its name with a wrong registration access token spend none of its allowance.
    for (const ip of ['10.3.1.1', '10.3.1.2', '10.3.1.3']) {
      const wrong = await app.server.inject({ method: 'GET', url: `/register/${clientId}`, remoteAddress: ip, headers: { authorization: 'Bearer not-its-token' } });
      expect(wrong.statusCode).toBe(401);
    }
    expect((await read('10.3.0.2')).statusCode).toBe(200);
    expect((await read('10.3.0.3')).statusCode).toBe(200);
    expectLimited(await read('10.3.0.4'), 3600);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="registration",limit="client"}')).toBe(1);
    expect((await register('10.3.0.1')).statusCode).toBe(201);
    expect((await register('10.3.0.1')).statusCode).toBe(201);
    expectLimited(await register('10.3.0.1'), 3600);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="registration",limit="ip"}')).toBe(1);
  });
});

describe('rate limits on the login form', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ LOGIN_RATE_LIMIT_PER_IP: '4', LOGIN_RATE_LIMIT_PER_LOGIN: '2', RATE_LIMIT_WINDOW: '1h', ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' });
  });
  afterAll(async () => { await app.close(); });

  // No CSRF cookie: each attempt is refused with 403 by the form, after the limiter counted it.
  const attempt = (ip: string, login: string) => app.server.inject({
    method: 'POST', url: '/login', remoteAddress: ip, headers: FORM_HEADERS, payload: form({ login, password: 'whatever password', csrf: 'x' }),
  });

  it('limits one login name (whatever its case) from one address, then one address, answering the login page with 429 and Retry-After', async () => {
    expect((await attempt('10.4.0.1', 'alice')).statusCode).toBe(403);
    expect((await attempt('10.4.0.1', 'ALICE ')).statusCode).toBe(403);
    // Another address is not locked out of alice by the first one's attempts.
    expect((await attempt('10.4.0.2', 'alice')).statusCode).toBe(403);
    const limited = await attempt('10.4.0.1', 'Alice');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(3600);
    expect(limited.body).toContain('role="alert"');
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="login",limit="login"}')).toBe(1);
    for (const login of ['bob', 'carol']) expect((await attempt('10.4.0.9', login)).statusCode).toBe(403);
    for (const login of ['dave', 'erin']) expect((await attempt('10.4.0.9', login)).statusCode).toBe(403);
    expect((await attempt('10.4.0.9', 'frank')).statusCode).toBe(429);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="login",limit="ip"}')).toBe(1);
  });
});

describe('rate limits on the authorization side (/authorize, /interaction, /par)', () => {
  let app: TestApp;
  let secret: string;
  beforeAll(async () => {
    app = await createTestApp({
      AUTHORIZE_RATE_LIMIT_PER_CLIENT: '2', AUTHORIZE_RATE_LIMIT_PER_IP: '4', PAR_RATE_LIMIT_PER_CLIENT: '2', PAR_RATE_LIMIT_PER_IP: '3',
      USERINFO_RATE_LIMIT_PER_IP: '2', RATE_LIMIT_WINDOW: '1h',
    });
    secret = (await createClient(app.context, { redirect_uris: ['https://app.example.com/cb'], scope: 'openid' }, 'web')).clientSecret!;
  });
  afterAll(async () => { await app.close(); });

  it('/authorize: an HTML 429 with Retry-After per client_id, then per IP, never a redirect', async () => {
    const get = (ip: string, clientId: string) => app.server.inject({ method: 'GET', url: `/authorize?client_id=${clientId}`, remoteAddress: ip });
    expect((await get('10.1.0.1', 'web')).statusCode).toBe(400);
    expect((await get('10.1.0.2', 'web')).statusCode).toBe(400);
    const client = await get('10.1.0.3', 'web');
    expect(client.statusCode).toBe(429);
    expect(client.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(Number(client.headers['retry-after'])).toBeGreaterThan(0);
    expect(client.headers.location).toBeUndefined();
    for (const id of ['a', 'b', 'c']) expect((await get('10.1.0.9', id)).statusCode).toBe(400);
    expect((await app.server.inject({ method: 'GET', url: '/interaction/x', remoteAddress: '10.1.0.9' })).statusCode).toBe(400);
    expect((await get('10.1.0.9', 'd')).statusCode).toBe(429);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="authorize",limit="client"}')).toBe(1);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="authorize",limit="ip"}')).toBe(1);
  });

  it('/authorize: no per-client_id limit unless AUTHORIZE_RATE_LIMIT_PER_CLIENT is set (anyone could spend it)', async () => {
    const open = await createTestApp({ AUTHORIZE_RATE_LIMIT_PER_IP: '2', RATE_LIMIT_WINDOW: '1h' });
    try {
      expect(open.context.config.authorizeRateLimitPerClient).toBe(0);
      for (let i = 1; i <= 12; i++) {
        const res = await open.server.inject({ method: 'GET', url: '/authorize?client_id=web', remoteAddress: `10.4.0.${i}` });
        expect(res.statusCode, `request ${i}`).toBe(400);
      }
      // The per-IP limit still holds.
      for (let i = 0; i < 2; i++) await open.server.inject({ method: 'GET', url: '/authorize?client_id=web', remoteAddress: '10.4.1.1' });
      expect((await open.server.inject({ method: 'GET', url: '/authorize?client_id=web', remoteAddress: '10.4.1.1' })).statusCode).toBe(429);
      expect((await sample(open, 'latchkey_rate_limited_total{endpoint="authorize",limit="client"}')) ?? 0).toBe(0);
    } finally {
      await open.close();
    }
  });

  it('/userinfo: JSON 429 per IP', async () => {
    for (let i = 0; i < 2; i++) expect((await app.server.inject({ method: 'GET', url: '/userinfo', remoteAddress: '10.3.0.1' })).statusCode).toBe(401);
    expectLimited(await app.server.inject({ method: 'GET', url: '/userinfo', remoteAddress: '10.3.0.1' }), 3600);
  });

  it('/par: JSON 429 per authenticated client, then per IP', async () => {
    const post = (ip: string, authorization?: string) => app.server.inject({
      method: 'POST', url: '/par', remoteAddress: ip, headers: { ...FORM_HEADERS, ...(authorization ? { authorization } : {}) }, payload: form({ response_type: 'code' }),
    });
    expect((await post('10.2.0.1', basic('web', secret))).statusCode).toBe(400);
    expect((await post('10.2.0.2', basic('web', secret))).statusCode).toBe(400);
    expectLimited(await post('10.2.0.3', basic('web', secret)), 3600);
    for (let i = 0; i < 3; i++) expect((await post('10.2.0.9')).statusCode).toBe(401);
    expectLimited(await post('10.2.0.9'), 3600);
    expect(await sample(app, 'latchkey_rate_limited_total{endpoint="par",limit="client"}')).toBe(1);
  });

  it('/par: requests in a client\'s name with wrong credentials spend none of its allowance', async () => {
    const own = (await createClient(app.context, { redirect_uris: ['https://app.example.com/cb'], scope: 'openid' }, 'web-par')).clientSecret!;
    const post = (ip: string, authorization: string) => app.server.inject({
      method: 'POST', url: '/par', remoteAddress: ip, headers: { ...FORM_HEADERS, authorization }, payload: form({ response_type: 'code' }),
    });
    for (const ip of ['10.2.1.1', '10.2.1.2', '10.2.1.3']) expect((await post(ip, basic('web-par', 'wrong'))).statusCode).toBe(401);
    for (const ip of ['10.2.2.1', '10.2.2.2']) expect((await post(ip, basic('web-par', own))).statusCode).toBe(400);
    expectLimited(await post('10.2.2.3', basic('web-par', own)), 3600);
  });
});

describe('connection timeouts', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ CONNECTION_TIMEOUT: '1', KEEP_ALIVE_TIMEOUT: '7', REQUEST_TIMEOUT: '9' }); });
  afterAll(async () => { await app.close(); });

  it('configures the HTTP server from REQUEST_TIMEOUT, CONNECTION_TIMEOUT and KEEP_ALIVE_TIMEOUT', () => {
    expect(app.server.server.requestTimeout).toBe(9000);
    expect(app.server.server.timeout).toBe(1000);
    expect(app.server.server.keepAliveTimeout).toBe(7000);
  });

  it('closes a connection on which the client sends nothing', async () => {
    await app.server.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('POST /token HTTP/1.1\r\nHost: x\r\n'); // and then nothing more
    const closed = await new Promise<boolean>((resolve) => {
      const giveUp = setTimeout(() => resolve(false), 15_000);
      socket.on('close', () => { clearTimeout(giveUp); resolve(true); });
    });
    expect(closed).toBe(true);
  });
});

describe('the address a limit counts behind a trusted proxy (TRUST_PROXY)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ TRUST_PROXY: '127.0.0.1', INTROSPECTION_RATE_LIMIT_PER_IP: '2', RATE_LIMIT_WINDOW: '1h' });
  });
  afterAll(async () => { await app.close(); });

  const post = (peer: string, forwardedFor: string) => app.server.inject({
    method: 'POST', url: '/introspect', remoteAddress: peer, headers: { ...FORM_HEADERS, 'x-forwarded-for': forwardedFor }, payload: form({ token: 'x' }),
  });

  it('is the nearest address the proxy reports, whatever the client put in front of it', async () => {
    expect((await post('127.0.0.1', '198.51.100.1, 10.7.0.1')).statusCode).toBe(401);
    expect((await post('127.0.0.1', '198.51.100.2, 10.7.0.1')).statusCode).toBe(401);
    expectLimited(await post('127.0.0.1', '198.51.100.3, 10.7.0.1'), 3600);
    expect((await post('127.0.0.1', '10.7.0.2')).statusCode).toBe(401);
  });

  it('is the peer itself when the peer is not a trusted proxy', async () => {
    expect((await post('10.8.0.1', '10.9.0.1')).statusCode).toBe(401);
    expect((await post('10.8.0.1', '10.9.0.2')).statusCode).toBe(401);
    expectLimited(await post('10.8.0.1', '10.9.0.3'), 3600);
  });
});
