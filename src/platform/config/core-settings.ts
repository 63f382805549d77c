import { isIP } from 'node:net';
import { z } from 'zod';
import { isHttpsOrLoopbackHttp } from '../uris.js';
import { defineSlice, duration, integer, setting, type SliceValues } from './settings.js';

/**
 * Which proxies' X-Forwarded-For to believe (Fastify's trustProxy): false, or the proxies'
 * addresses / CIDR ranges (and proxy-addr's names loopback, linklocal, uniquelocal): the client
 * address is then the nearest one in X-Forwarded-For that is not a trusted proxy. `true`
 * believes every hop, so the client names its own address and every per-IP limit is its to
 * choose. (A hop count is not offered: Fastify 5 refuses it, as it cannot check the peer.)
 */
const trustProxy = z.string().transform((text, ctx): boolean | string[] => {
  const value = text.trim().toLowerCase();
  if (['false', '0', 'no'].includes(value)) return false;
  if (['true', '1', 'yes'].includes(value)) return true;
  const entries = value.split(',').map((e) => e.trim());
  const valid = (e: string) => ['loopback', 'linklocal', 'uniquelocal'].includes(e) || (() => {
    const [address, bits, extra] = e.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  })();
  if (entries.length === 0 || !entries.every(valid)) {
    ctx.addIssue({ code: 'custom', message: `must be false, true, or comma-separated proxy addresses/CIDRs (got "${text}")` });
    return z.NEVER;
  }
  return entries;
});

/** RFC 8414 §2: the issuer is an https URL with no query or fragment; http is accepted on loopback only. */
const issuer = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `must be an absolute URL such as https://id.example.com (got "${text}")` });
    return z.NEVER;
  }
  if (!isHttpsOrLoopbackHttp(url)) {
    ctx.addIssue({ code: 'custom', message: 'must use https (http is allowed only for localhost, 127.0.0.1 or [::1])' });
    return z.NEVER;
  }
  if (url.search || url.hash || text.includes('?') || text.includes('#')) {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or a fragment (RFC 8414 §2)' });
    return z.NEVER;
  }
  if (url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'must not contain credentials' });
    return z.NEVER;
  }
  // One spelling only: no trailing slash, so `iss` never drifts between "x" and "x/".
  return url.href.replace(/\/+$/, '');
});

/** HEADERS_TIMEOUT unset: headers get this long, or REQUEST_TIMEOUT if that is shorter. */
const DEFAULT_HEADERS_TIMEOUT_SECONDS = 10;

/** The HTTP listener: where it binds, who it is (the issuer), what it accepts and how long it waits. */
export const httpSettings = defineSlice({
  name: 'http',
  settings: {
    port: setting('PORT', integer(0, 65535).default(8080).describe('TCP port the HTTP server listens on (0 picks a free port).')),
    host: setting('HOST', z.string().min(1).default('127.0.0.1').describe('Address to bind. Use 0.0.0.0 in a container.')),
    issuer: setting('ISSUER', issuer.optional().describe('The issuer identifier and public base URL, e.g. https://id.example.com. Default: http://localhost:PORT. https is required except on loopback.')),
    trustProxy: setting('TRUST_PROXY', trustProxy.default(false).describe('Which reverse proxies to believe about the client address (X-Forwarded-For) and scheme: false, or the proxies\' addresses/CIDRs, comma-separated (loopback, linklocal, uniquelocal allowed) — the client is the nearest address that is not one of them. true believes every hop: the client can then pick its own address and so escape every per-IP limit.')),
    bodyLimit: setting('BODY_LIMIT', integer(1024, 10 * 1024 * 1024).default(64 * 1024).describe('Largest accepted request body in bytes; larger bodies get 413.')),
    requestTimeoutSeconds: setting('REQUEST_TIMEOUT', duration(1, 600).default(30).describe('Time a client has to send a whole request, headers and body, before it gets 408 and the connection is closed (enforced within a second).')),
    headersTimeoutSeconds: setting('HEADERS_TIMEOUT', duration(1, 600).optional().describe('Time a client has to send a request\'s headers before it gets 408 and the connection is closed (enforced within a second); at most REQUEST_TIMEOUT. Default: 10, or REQUEST_TIMEOUT if that is shorter.')),
    shutdownTimeoutSeconds: setting('SHUTDOWN_TIMEOUT', duration(1, 600).default(10).describe('On SIGTERM/SIGINT: time allowed to drain in-flight requests before the process exits anyway.')),
    connectionTimeoutSeconds: setting('CONNECTION_TIMEOUT', duration(1, 3600).default(120).describe('A connection on which nothing is received or sent for this long is closed (socket inactivity).')),
    keepAliveTimeoutSeconds: setting('KEEP_ALIVE_TIMEOUT', duration(1, 3600).default(72).describe('How long an idle keep-alive connection is kept open after a response; keep it above the idle timeout of a load balancer in front.')),
  },
  finish: ({ issuer: configured, headersTimeoutSeconds, ...values }) => ({
    ...values,
    issuer: configured ?? `http://localhost:${values.port}`,
    headersTimeoutSeconds: headersTimeoutSeconds ?? Math.min(DEFAULT_HEADERS_TIMEOUT_SECONDS, values.requestTimeoutSeconds),
  }),
  // Node refuses a headers timeout longer than the request timeout (the headers are part of the request).
  check: (c) => (c.headersTimeoutSeconds > c.requestTimeoutSeconds
    ? [`HEADERS_TIMEOUT: must not exceed REQUEST_TIMEOUT (${c.requestTimeoutSeconds}s), as the headers are part of the request (got ${c.headersTimeoutSeconds}s)`]
    : []),
});
export type HttpSettings = SliceValues<typeof httpSettings>;

/** The one window every rate limit counts in. */
export const rateLimitSettings = defineSlice({
  name: 'rate-limit',
  settings: {
    rateLimitWindow: setting('RATE_LIMIT_WINDOW', duration(1, 3600).default(60).describe('The window of every rate limit (fixed windows, counted in memory per instance).')),
  },
});
export type RateLimitSettings = SliceValues<typeof rateLimitSettings>;
