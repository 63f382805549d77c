import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildMetricsServer } from '../../src/server/http/metrics.js';
import { createTestApp, LogCapture, testConfig, type TestApp } from '../support/app.js';

/**
 * Slow clients over real TCP on loopback. Node looks for requests past their deadline on an
 * interval (30 s unless told otherwise), so these check the deadline is met within a second or
 * so of the configured value — and not early. Bounds are loose for a slow shared machine.
 */

const portOf = (server: FastifyInstance) => (server.server.address() as net.AddressInfo).port;

interface Outcome {
  /** Milliseconds from connecting until the server closed the connection; Infinity if it had not by `giveUpMs` (or by the answer, with `untilAnswered`). */
  closedAfterMs: number;
  /** Everything the server sent. */
  received: string;
}

/**
 * A client that writes `head` at once, then `drip` one byte every `everyMs` (and, once `drip`
 * is spent, 'a' for ever unless `endless` is false), and waits for the server to close the
 * connection (or, with `untilAnswered`, for the head of an answer).
 */
function slowClient(port: number, { head = '', drip = '', everyMs = 200, endless = true, untilAnswered = false, giveUpMs }: { head?: string; drip?: string; everyMs?: number; endless?: boolean; untilAnswered?: boolean; giveUpMs: number }): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let sent = 0;
    let ticker: NodeJS.Timeout | undefined;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (untilAnswered && received.includes('\r\n\r\n')) finish(Infinity);
    });
    socket.on('error', () => {}); // a write racing the server's close
    socket.on('connect', () => {
      if (head) socket.write(head);
      ticker = setInterval(() => {
        const byte = drip[sent++] ?? (endless ? 'a' : undefined);
        if (byte !== undefined && socket.writable) socket.write(byte);
      }, everyMs);
    });
    const finish = (closedAfterMs: number) => {
      clearInterval(ticker);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedAfterMs, received });
    };
    const giveUp = setTimeout(() => finish(Infinity), giveUpMs);
    socket.on('close', () => finish(performance.now() - started));
  });
}

/** Requests written whole on one keep-alive connection, `pauseMs` apart; the status of each response. */
async function keepAliveRequests(port: number, requests: string[], pauseMs: number): Promise<number[]> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('latin1');
  let buffered = '';
  let wake = () => {};
  socket.on('data', (chunk: string) => { buffered += chunk; wake(); });
  socket.on('close', () => wake());
  await new Promise((r) => socket.once('connect', r));
  const statuses: number[] = [];
  try {
    for (const [i, request] of requests.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, pauseMs));
      buffered = '';
      socket.write(request);
      // Small bodies: the response is whole once its body (content-length) has arrived.
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        const length = /content-length: (\d+)/i.exec(buffered)?.[1];
        if (end >= 0 && length !== undefined && buffered.length >= end + 4 + Number(length)) break;
        if (socket.destroyed) throw new Error(`connection closed before response ${i + 1} (got ${JSON.stringify(buffered)})`);
        await new Promise<void>((r) => { wake = r; });
      }
      statuses.push(Number(buffered.slice(9, 12)));
    }
  } finally {
    socket.destroy();
  }
  return statuses;
}

const HEADERS_DRIP = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ';
const FORM_HEAD = 'POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n';
const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n';

// Every test runs at once: each waits on the server's clock, not on the CPU.
describe.concurrent('slow clients', () => {
  /** The whole server, with its METRICS_PORT listener: headers within 2 s, the whole request within 5 s. */
  let app: TestApp;
  /** A METRICS_PORT listener alone (no store to build) with REQUEST_TIMEOUT=2 and HEADERS_TIMEOUT unset, so 2 s as well. */
  let bare: FastifyInstance;
  beforeAll(async () => {
    bare = await buildMetricsServer(testConfig({ REQUEST_TIMEOUT: '2' }), { logger: new LogCapture().logger, registry: new Registry() });
    await bare.listen({ port: 0, host: '127.0.0.1' });
    app = await createTestApp({ REQUEST_TIMEOUT: '5', HEADERS_TIMEOUT: '2', METRICS_PORT: '0' });
    await app.server.listen({ port: 0, host: '127.0.0.1' });
    await app.metricsServer!.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => { await Promise.all([app?.close(), bare?.close()]); });

  it('configures both listeners with HEADERS_TIMEOUT, REQUEST_TIMEOUT and a sub-second deadline check', ({ expect }) => {
    for (const [server, timeouts] of [[app.server.server, [2000, 5000]], [app.metricsServer!.server, [2000, 5000]], [bare.server, [2000, 2000]]] as const) {
      expect([server.headersTimeout, server.requestTimeout]).toEqual(timeouts);
      expect((server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBeLessThanOrEqual(500);
    }
  });

  it('answers 408 and closes a connection whose headers are dribbled a byte every 200 ms, at HEADERS_TIMEOUT (2 s), before REQUEST_TIMEOUT', async ({ expect }) => {
    const { closedAfterMs, received } = await slowClient(portOf(app.server), { drip: HEADERS_DRIP, giveUpMs: 8000 });
    expect(closedAfterMs).toBeGreaterThanOrEqual(1700);
    expect(closedAfterMs).toBeLessThan(4500);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('does the same on the METRICS_PORT listener', async ({ expect }) => {
    const { closedAfterMs, received } = await slowClient(portOf(app.metricsServer!), { drip: 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ', giveUpMs: 8000 });
    expect(closedAfterMs).toBeGreaterThanOrEqual(1700);
    expect(closedAfterMs).toBeLessThan(4500);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection on which nothing is sent at all, at HEADERS_TIMEOUT', async ({ expect }) => {
    const { closedAfterMs } = await slowClient(portOf(app.server), { endless: false, giveUpMs: 8000 });
    expect(closedAfterMs).toBeGreaterThanOrEqual(1700);
    expect(closedAfterMs).toBeLessThan(4500);
  });

  it('answers 408 and closes a connection whose headers came at once but whose body is dribbled, at REQUEST_TIMEOUT (5 s)', async ({ expect }) => {
    const { closedAfterMs, received } = await slowClient(portOf(app.server), { head: FORM_HEAD, giveUpMs: 10_000 });
    expect(closedAfterMs).toBeGreaterThanOrEqual(4700);
    expect(closedAfterMs).toBeLessThan(8000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('with REQUEST_TIMEOUT=2 and HEADERS_TIMEOUT unset, closes dribbled headers at 2 s', async ({ expect }) => {
    const { closedAfterMs, received } = await slowClient(portOf(bare), { drip: 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ', giveUpMs: 8000 });
    expect(closedAfterMs).toBeGreaterThanOrEqual(1700);
    expect(closedAfterMs).toBeLessThan(5000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('still answers a well-behaved request, a slow one within the limits, and a keep-alive connection idle past HEADERS_TIMEOUT between requests', async ({ expect }) => {
    const [plain, slow, keptAlive, scrape] = await Promise.all([
      fetch(`http://127.0.0.1:${portOf(app.server)}/healthz`),
      // The whole request in about 0.9 s, a byte every 25 ms: within 2 s.
      slowClient(portOf(app.server), { drip: HEALTHZ, everyMs: 25, endless: false, untilAnswered: true, giveUpMs: 5000 }),
      // Each request is timed from its own first byte, not from when the connection opened.
      keepAliveRequests(portOf(app.server), [HEALTHZ, HEALTHZ], 2600),
      fetch(`http://127.0.0.1:${portOf(app.metricsServer!)}/metrics`),
    ]);
    expect(plain.status).toBe(200);
    expect(slow.received).toMatch(/^HTTP\/1\.1 200 /);
    expect(keptAlive).toEqual([200, 200]);
    expect(scrape.status).toBe(200);
  });
});
