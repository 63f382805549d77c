import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OutboundError, OutboundFetcher, type OutboundOutcome, type Resolver } from '../../src/platform/outbound/fetcher.js';
import { OutboundPolicy } from '../../src/platform/outbound/policy.js';

/**
 * The outbound fetcher against real local servers. 127.0.0.1 is itself an address the guard
 * refuses, so each test allow-lists it (or does not, to see the refusal); host names resolve
 * through an injected resolver, so every address class and a rebinding DNS can be played
 * without a network.
 */

/** A local HTTP server whose handler each test sets; it counts the requests that reached it. */
class LocalServer {
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => { res.end('ok'); };
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; }).on('end', () => {
        this.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        this.handler(req, res);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }
  url(path = '/'): string { return `http://127.0.0.1:${this.port}${path}`; }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const LOOPBACK_ISSUER = 'http://localhost:8080';
const outcomes: Array<[string, OutboundOutcome]> = [];
const fetcher = (allowed: string[] = ['127.0.0.1'], options: { resolver?: Resolver; connectTimeoutMs?: number; timeoutMs?: number; issuer?: string } = {}) =>
  new OutboundFetcher(new OutboundPolicy({ issuer: options.issuer ?? LOOPBACK_ISSUER, allowed }), {
    connectTimeoutMs: options.connectTimeoutMs ?? 2000,
    timeoutMs: options.timeoutMs ?? 3000,
    ...(options.resolver ? { resolver: options.resolver } : {}),
    record: (purpose, outcome) => { outcomes.push([purpose, outcome]); },
  });
/** A resolver answering each name from a table (every address of it). */
const resolverOf = (table: Record<string, string[]>): Resolver => async (hostname) => {
  const addresses = table[hostname];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const failureOf = async (promise: Promise<unknown>): Promise<OutboundError> => {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(OutboundError);
  return err as OutboundError;
};

describe('outbound fetcher (src/platform/outbound/fetcher.ts)', () => {
  const server = new LocalServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());
  afterEach(() => {
    server.handler = (_req, res) => { res.end('ok'); };
    server.requests.length = 0;
  });

  describe('what it may reach', () => {
    it('refuses a local server unless its address is allow-listed, sending nothing', async () => {
      for (const allowed of [[], ['10.0.0.0/8'], ['localhost']]) {
        const err = await failureOf(fetcher(allowed).fetch({ url: server.url('/jwks'), purpose: 'test', maxBytes: 100 }));
        expect(err.failure).toBe('refused');
        expect(err.message).toBe('refused: must not point at an internal address (127.0.0.1 is loopback)');
      }
      expect(server.requests).toEqual([]);
      const res = await fetcher(['127.0.0.1']).fetch({ url: server.url('/jwks'), purpose: 'test', maxBytes: 100 });
      expect([res.status, res.body.toString()]).toEqual([200, 'ok']);
    });

    it('refuses every notation of a loopback address', async () => {
      for (const host of ['2130706433', '0177.0.0.1', '0x7f.1', '127.1', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '0', '[::]', '[::1]']) {
        const err = await failureOf(fetcher([]).fetch({ url: `https://${host}:${server.port}/`, purpose: 'test' }));
        expect(err.message, host).toMatch(/^refused: must not point at an internal address \((127\.0\.0\.1|::ffff:7f00:1|0\.0\.0\.0|::|::1) is (loopback|unspecified)\)$/);
      }
      expect(server.requests).toEqual([]);
    });

    it('refuses http on an https issuer, even to an allow-listed address, and any other scheme', async () => {
      const https = fetcher(['127.0.0.1'], { issuer: 'https://id.example.com' });
      expect((await failureOf(https.fetch({ url: server.url(), purpose: 'test' }))).message).toBe('refused: must be an https URL');
      for (const url of ['ftp://127.0.0.1/', 'file:///etc/passwd', `gopher://127.0.0.1:${server.port}/`]) {
        expect((await failureOf(fetcher().fetch({ url, purpose: 'test' }))).failure, url).toBe('refused');
      }
      expect(server.requests).toEqual([]);
    });

    it.each([
      ['127.0.0.1', 'loopback'], ['127.0.0.53', 'loopback'], ['0.0.0.0', 'unspecified'], ['10.1.2.3', 'private'], ['172.16.5.4', 'private'],
      ['192.168.1.1', 'private'], ['100.64.1.1', 'private'], ['169.254.169.254', 'link-local'], ['224.0.0.251', 'multicast'], ['240.1.1.1', 'reserved'],
      ['::1', 'loopback'], ['::', 'unspecified'], ['::ffff:127.0.0.1', 'loopback'], ['::ffff:169.254.169.254', 'link-local'], ['fe80::1', 'link-local'],
      ['fd00::1', 'unique-local'], ['ff02::1', 'multicast'], ['64:ff9b::a00:1', 'private'], ['2002:a00:1::1', 'private'],
    ])('refuses a host name resolving to %s (%s), connecting nowhere', async (address, range) => {
      const f = fetcher(['192.0.2.0/24'], { resolver: resolverOf({ 'keys.example.test': [address] }) });
      const err = await failureOf(f.fetch({ url: 'https://keys.example.test/jwks', purpose: 'test' }));
      expect(err.failure).toBe('refused');
      expect(err.message).toBe(`refused: must not point at an internal address (${address} is ${range})`);
    });

    it('checks every address a name resolves to, and connects only to accepted ones', async () => {
      const f = fetcher(['127.0.0.1'], { resolver: resolverOf({ localhost: ['10.0.0.1', '169.254.169.254', '127.0.0.1'] }) });
      const res = await f.fetch({ url: `http://localhost:${server.port}/`, purpose: 'test', maxBytes: 10 });
      expect(res.status).toBe(200);
      const none = fetcher(['127.0.0.1'], { resolver: resolverOf({ 'internal.test': ['10.0.0.1', '169.254.169.254'] }) });
      expect((await failureOf(none.fetch({ url: 'https://internal.test/', purpose: 'test' }))).message).toBe('refused: must not point at an internal address (10.0.0.1 is private)');
    });

    it('DNS rebinding: each connection checks the address it connects to, not one resolved earlier', async () => {
      // The name first answers an accepted address, then a metadata-service address.
      const answers = [['127.0.0.1'], ['169.254.169.254'], ['127.0.0.1', '169.254.169.254']];
      let calls = 0;
      const rebinding: Resolver = async () => answers[Math.min(calls++, answers.length - 1)]!.map((address) => ({ address, family: 4 }));
      const f = fetcher(['127.0.0.1/32'], { resolver: rebinding, issuer: LOOPBACK_ISSUER });
      const url = `http://localhost:${server.port}/rebind`;
      expect((await f.fetch({ url, purpose: 'test', maxBytes: 10 })).status).toBe(200);
      const err = await failureOf(f.fetch({ url, purpose: 'test', maxBytes: 10 }));
      expect(err.message).toBe('refused: must not point at an internal address (169.254.169.254 is link-local)');
      expect((await f.fetch({ url, purpose: 'test', maxBytes: 10 })).status).toBe(200); // only the accepted address is tried
      expect(server.requests).toHaveLength(2);
      expect(calls).toBe(3);
    });

    it('an allow-listed host name is trusted with whatever it resolves to', async () => {
      const f = fetcher(['localhost'], { resolver: resolverOf({ localhost: ['127.0.0.1'] }) });
      expect((await f.fetch({ url: `http://localhost:${server.port}/`, purpose: 'test' })).status).toBe(200);
    });

    it('a name that does not resolve is a network failure saying so', async () => {
      const err = await failureOf(fetcher([], { resolver: resolverOf({}) }).fetch({ url: 'https://nowhere.test/', purpose: 'test' }));
      expect([err.failure, err.message]).toEqual(['network', 'ENOTFOUND']);
    });
  });

  describe('what it does with the answer', () => {
    it('never follows a redirect', async () => {
      for (const status of [301, 302, 303, 307, 308]) {
        server.handler = (_req, res) => { res.writeHead(status, { location: server.url('/elsewhere') }).end(); };
        const err = await failureOf(fetcher().fetch({ url: server.url('/start'), purpose: 'test', maxBytes: 100 }));
        expect([err.failure, err.message]).toEqual(['redirect', `redirect not followed (HTTP ${status})`]);
      }
      expect(server.requests.map((r) => r.url)).toEqual(Array(5).fill('/start'));
    });

    it('reads a 2xx body up to maxBytes; refuses a larger one by Content-Length, or while it streams', async () => {
      server.handler = (_req, res) => { res.end('x'.repeat(1000)); };
      expect((await fetcher().fetch({ url: server.url(), purpose: 'test', maxBytes: 1000 })).body.length).toBe(1000);
      const declared = await failureOf(fetcher().fetch({ url: server.url(), purpose: 'test', maxBytes: 999 }));
      expect([declared.failure, declared.message]).toEqual(['too_large', 'response larger than 999 bytes']);

      // Chunked, no length, and endless: aborted at the cap, long before the time limit.
      let written = 0;
      let closed = false;
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(16 * 1024, 0x20);
        const pump = () => { while (!res.destroyed && res.write(chunk)) written += chunk.length; };
        res.on('drain', pump).on('close', () => { closed = true; });
        pump();
      };
      const started = Date.now();
      const streamed = await failureOf(fetcher(['127.0.0.1'], { timeoutMs: 10_000 }).fetch({ url: server.url(), purpose: 'test', maxBytes: 64 * 1024 }));
      expect(streamed.failure).toBe('too_large');
      expect(Date.now() - started).toBeLessThan(2000);
      await expect.poll(() => closed).toBe(true);
      expect(written).toBeLessThan(10 * 1024 * 1024);
    });

    it('reads no body when not asked to (maxBytes 0), and never the body of a non-2xx answer', async () => {
      server.handler = (_req, res) => { res.writeHead(500).end('x'.repeat(100_000)); };
      const failed = await fetcher().fetch({ url: server.url(), purpose: 'test', maxBytes: 10 });
      expect([failed.status, failed.body.length]).toEqual([500, 0]);
      server.handler = (_req, res) => { res.end('y'.repeat(100_000)); };
      const unread = await fetcher().fetch({ url: server.url(), purpose: 'test' });
      expect([unread.status, unread.body.length]).toEqual([200, 0]);
    });

    it('posts a body with its content type', async () => {
      const res = await fetcher().fetch({ url: server.url('/bc'), purpose: 'test', method: 'POST', body: 'logout_token=abc', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(res.status).toBe(200);
      expect(server.requests[0]).toMatchObject({ method: 'POST', url: '/bc', body: 'logout_token=abc', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '16' } });
    });

    it('may require a content type (parameters ignored)', async () => {
      server.handler = (_req, res) => { res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>'); };
      const err = await failureOf(fetcher().fetch({ url: server.url(), purpose: 'test', maxBytes: 100, contentTypes: ['application/json'] }));
      expect([err.failure, err.message]).toEqual(['content_type', 'unexpected content type "text/html"']);
      server.handler = (_req, res) => { res.writeHead(200, { 'content-type': 'Application/JSON; charset=utf-8' }).end('{}'); };
      expect((await fetcher().fetch({ url: server.url(), purpose: 'test', maxBytes: 100, contentTypes: ['application/json'] })).body.toString()).toBe('{}');
    });
  });

  describe('time limits', () => {
    it('a body that trickles in hits the total time limit', async () => {
      server.handler = (_req, res) => {
        res.writeHead(200);
        const drip = setInterval(() => { if (res.destroyed) clearInterval(drip); else res.write(' '); }, 20);
      };
      const started = Date.now();
      const err = await failureOf(fetcher(['127.0.0.1'], { timeoutMs: 300 }).fetch({ url: server.url(), purpose: 'test', maxBytes: 1_000_000 }));
      expect([err.failure, err.message]).toEqual(['timeout', 'timeout']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(1500);
    });

    it('an answer that never comes hits the total time limit; a request may set its own', async () => {
      server.handler = () => { /* never answers */ };
      const started = Date.now();
      const err = await failureOf(fetcher(['127.0.0.1'], { timeoutMs: 5000 }).fetch({ url: server.url(), purpose: 'test', timeoutMs: 200 }));
      expect(err.failure).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(1500);
    });

    it('a resolver that never answers hits the connect time limit', async () => {
      const hanging: Resolver = () => new Promise(() => {});
      const started = Date.now();
      const err = await failureOf(fetcher(['127.0.0.1'], { resolver: hanging, connectTimeoutMs: 200 }).fetch({ url: 'https://slow-dns.test/', purpose: 'test' }));
      expect([err.failure, err.message]).toEqual(['connect_timeout', 'connect timeout']);
      expect(Date.now() - started).toBeLessThan(1500);
    });

    it('a TLS handshake that never completes hits the connect time limit', async () => {
      const sockets: Socket[] = [];
      const silent: TcpServer = createTcpServer((s) => { sockets.push(s); }); // accepts, never speaks TLS
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      try {
        const port = (silent.address() as AddressInfo).port;
        const err = await failureOf(fetcher(['127.0.0.1'], { connectTimeoutMs: 200 }).fetch({ url: `https://127.0.0.1:${port}/`, purpose: 'test' }));
        expect(err.failure).toBe('connect_timeout');
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => silent.close(r));
      }
    });

    it('a closed port is a network failure with its code', async () => {
      const closed = new LocalServer();
      await closed.start();
      await closed.stop();
      const err = await failureOf(fetcher().fetch({ url: closed.url(), purpose: 'test' }));
      expect([err.failure, err.message]).toEqual(['network', 'ECONNREFUSED']);
    });
  });

  it('counts each request by purpose and outcome, and never puts the path or query in a message', async () => {
    outcomes.length = 0;
    await fetcher().fetch({ url: server.url('/secret-path?token=s3cr3t'), purpose: 'jwks_uri' });
    server.handler = (_req, res) => { res.writeHead(404).end(); };
    await fetcher().fetch({ url: server.url('/secret-path?token=s3cr3t'), purpose: 'jwks_uri' });
    const refused = await failureOf(fetcher([]).fetch({ url: server.url('/secret-path?token=s3cr3t'), purpose: 'backchannel_logout' }));
    server.handler = () => {};
    const timeout = await failureOf(fetcher(['127.0.0.1'], { timeoutMs: 100 }).fetch({ url: server.url('/secret-path?token=s3cr3t'), purpose: 'backchannel_logout' }));
    expect(outcomes).toEqual([['jwks_uri', 'ok'], ['jwks_uri', 'http_error'], ['backchannel_logout', 'refused'], ['backchannel_logout', 'timeout']]);
    for (const err of [refused, timeout]) expect(err.message).not.toMatch(/secret|s3cr3t/);
  });
});
