import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { OutboundPolicy } from './policy.js';
import type { OutboundSettings } from './settings.js';

/**
 * The one way the server sends a request somewhere it did not choose itself: a client's
 * jwks_uri and backchannel_logout_uri today, metadata documents and upstream identity providers
 * later. Every request
 * - passes OutboundPolicy (scheme, credentials, an IP-literal host) before anything is sent;
 * - connects only to addresses the policy accepts, checked in the socket's own DNS lookup, so
 *   the address checked is the address connected to (DNS rebinding has no second lookup to
 *   answer differently); a name resolving to several addresses connects to the accepted ones only;
 * - never follows a redirect (a 3xx is a failure);
 * - has a connect time limit (DNS, TCP and TLS) and a total one (to the last byte of the body);
 * - reads at most `maxBytes` of a 2xx body, aborting as soon as more arrive (and at once when
 *   Content-Length says so); a non-2xx body is never read;
 * - may require a content type.
 * One connection per request (no keep-alive pool: the fetcher is off the hot path, and a pooled
 * socket would skip the lookup).
 */

/** Why a request failed, bounded for metric labels. */
export type OutboundFailure = 'refused' | 'redirect' | 'too_large' | 'content_type' | 'connect_timeout' | 'timeout' | 'network';

/** What happened to a request, as counted: a response (`ok` for 2xx, else `http_error`) or a failure. */
export type OutboundOutcome = 'ok' | 'http_error' | OutboundFailure;

/**
 * A request that got no usable answer. `message` says why in a few words safe to log and audit
 * (the host or address, never the URL's path or query): `timeout`, `ECONNREFUSED`, `refused: …`.
 */
export class OutboundError extends Error {
  constructor(readonly failure: OutboundFailure, message: string) {
    super(message);
    this.name = 'OutboundError';
  }
}

/** Resolves a host name to every address it has (dns.lookup with `all: true`, by default). */
export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface OutboundRequest {
  url: string;
  /** What the request is for (a metric label): jwks_uri, backchannel_logout, … */
  purpose: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Largest 2xx body read, in bytes; 0 (the default): the body is not read, and the request ends at the status. */
  maxBytes?: number;
  /** Media types a 2xx answer must have (parameters ignored); any when absent. */
  contentTypes?: readonly string[];
  /** The total time limit, ms (default: the fetcher's). */
  timeoutMs?: number;
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body of a 2xx answer when `maxBytes` asked for it; empty otherwise. */
  body: Buffer;
}

export interface OutboundFetcherOptions {
  /** Time to resolve, connect and (https) finish the TLS handshake, ms. */
  connectTimeoutMs: number;
  /** Default total time limit of a request, ms. */
  timeoutMs: number;
  /** DNS resolution (tests inject one). */
  resolver?: Resolver;
  /** Counts each request's outcome (latchkey_outbound_requests_total). */
  record?(purpose: string, outcome: OutboundOutcome): void;
}

export class OutboundFetcher {
  private readonly resolver: Resolver;

  constructor(readonly policy: OutboundPolicy, private readonly options: OutboundFetcherOptions) {
    this.resolver = options.resolver ?? systemResolver;
  }

  async fetch(request: OutboundRequest): Promise<OutboundResponse> {
    try {
      const response = await this.send(request);
      this.options.record?.(request.purpose, response.status >= 200 && response.status < 300 ? 'ok' : 'http_error');
      return response;
    } catch (err) {
      const failure = err instanceof OutboundError ? err : new OutboundError('network', networkCode(err));
      this.options.record?.(request.purpose, failure.failure);
      throw failure;
    }
  }

  private send(request: OutboundRequest): Promise<OutboundResponse> {
    const problem = this.policy.targetProblem(request.url);
    if (problem) return Promise.reject(new OutboundError('refused', `refused: ${problem}`));
    const url = new URL(request.url);
    const totalMs = request.timeoutMs ?? this.options.timeoutMs;
    const connectMs = Math.min(this.options.connectTimeoutMs, totalMs);
    const maxBytes = request.maxBytes ?? 0;
    const body = request.body === undefined ? undefined : Buffer.from(request.body);

    return new Promise<OutboundResponse>((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (err: OutboundError | undefined, response?: OutboundResponse) => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        // One connection per request: whatever is left of it goes.
        req.destroy();
        if (err) reject(err); else resolve(response!);
      };
      const fail = (failure: OutboundFailure, message: string) => finish(new OutboundError(failure, message));

      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: request.method ?? 'GET',
        headers: {
          'user-agent': 'Latchkey',
          ...request.headers,
          ...(body ? { 'content-length': String(body.length) } : {}),
        },
        agent: false,
        lookup: this.guardedLookup(),
      });
      timers.push(setTimeout(() => fail('connect_timeout', 'connect timeout'), connectMs));
      timers.push(setTimeout(() => fail('timeout', 'timeout'), totalMs));
      req.on('socket', (socket: Socket) => {
        socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(timers[0]));
      });
      req.on('error', (err) => finish(err instanceof OutboundError ? err : new OutboundError('network', networkCode(err))));
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return fail('redirect', `redirect not followed (HTTP ${status})`);
        const response = { status, headers: res.headers, body: Buffer.alloc(0) };
        if (status < 200 || status >= 300 || maxBytes === 0) return finish(undefined, response);
        if (request.contentTypes) {
          const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (!request.contentTypes.includes(type)) return fail('content_type', `unexpected content type ${JSON.stringify(type.slice(0, 100))}`);
        }
        const declared = Number(res.headers['content-length']);
        if (declared > maxBytes) return fail('too_large', `response larger than ${maxBytes} bytes`);
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxBytes) return fail('too_large', `response larger than ${maxBytes} bytes`);
          chunks.push(chunk);
        });
        res.on('end', () => finish(undefined, { ...response, body: Buffer.concat(chunks, received) }));
        res.on('error', (err) => finish(new OutboundError('network', networkCode(err))));
        res.on('aborted', () => fail('network', 'connection closed mid-response'));
      });
      req.end(body);
    });
  }

  /**
   * The socket's DNS lookup: resolves every address of the name and passes on only those the
   * policy accepts (in the form Node asked for: one address, or all of them); none accepted
   * is a refusal naming the first.
   */
  private guardedLookup(): LookupFunction {
    return (hostname, options, callback) => {
      this.resolver(hostname).then((addresses) => {
        const family = options.family === 4 || options.family === 6 ? options.family : undefined;
        const candidates = addresses.filter((a) => family === undefined || a.family === family);
        const accepted = candidates.filter((a) => this.policy.addressProblem(hostname, a.address) === undefined);
        if (accepted.length === 0) {
          const first = candidates[0];
          const problem = first ? this.policy.addressProblem(hostname, first.address)! : `${hostname} has no address`;
          return callback(new OutboundError(first ? 'refused' : 'network', first ? `refused: ${problem}` : problem), '', 0);
        }
        if (options.all) return (callback as unknown as (err: null, all: typeof accepted) => void)(null, accepted);
        callback(null, accepted[0]!.address, accepted[0]!.family);
      }, (err: unknown) => callback(err as NodeJS.ErrnoException, '', 0));
    };
  }
}

/**
 * The fetcher of a process, from its configuration (OUTBOUND_*, ISSUER); with a registry, its
 * requests are counted in latchkey_outbound_requests_total by purpose and outcome.
 */
export function createOutboundFetcher(
  config: OutboundSettings & { issuer: string },
  options: { registry?: Registry; resolver?: Resolver } = {},
): OutboundFetcher {
  const counter = options.registry && new Counter({
    name: 'latchkey_outbound_requests_total',
    help: 'Server-side requests (a client\'s jwks_uri, back-channel logout), by purpose and outcome: ok (2xx), http_error, refused (scheme or address), redirect, too_large, content_type, connect_timeout, timeout, network.',
    labelNames: ['purpose', 'outcome'] as const,
    registers: [options.registry],
  });
  return new OutboundFetcher(new OutboundPolicy({ issuer: config.issuer, allowed: config.outboundAllowedHosts }), {
    connectTimeoutMs: config.outboundConnectTimeout * 1000,
    timeoutMs: config.outboundTimeout * 1000,
    ...(options.resolver ? { resolver: options.resolver } : {}),
    ...(counter ? { record: (purpose, outcome) => counter.inc({ purpose, outcome }) } : {}),
  });
}

/** A network error as a few safe words: the system error code (ECONNREFUSED, ENOTFOUND, …) when there is one. */
function networkCode(err: unknown): string {
  const e = err as { code?: unknown; errors?: Array<{ code?: unknown }>; message?: unknown } | null;
  const code = e?.code ?? e?.errors?.[0]?.code;
  return typeof code === 'string' ? code : String(e?.message ?? err).slice(0, 200);
}
