import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { addressKey, FixedWindowCounter } from '../../platform/fixed-window.js';
import type { Clock } from '../../platform/clock.js';
import type { ClientAuthBackoff } from '../../oauth/client-auth/failure-backoff.js';
import { CLIENT_RATE_LIMITED_ENDPOINTS, ClientRateLimit, type ClientRateLimitedEndpoint } from '../../oauth/client-auth/client-rate-limit.js';
import { TooManyRequests } from '../../oauth/errors.js';
import type { Metrics } from '../../platform/observability/metrics.js';

/**
 * Rate limits for any endpoint, one piece: per IP address, then per claimed key (a login name,
 * a client_id at /authorize when AUTHORIZE_RATE_LIMIT_PER_CLIENT is set) when the request
 * claims one, then — where client authentication happens — the harder back-off after repeated failed client authentications. The first limit
 * exceeded answers 429 with Retry-After and counts `latchkey_rate_limited_total{endpoint,limit}`.
 * Counters are in memory (src/platform/fixed-window.ts, 10,000 keys per limit), per instance, over
 * fixed windows of RATE_LIMIT_WINDOW. An IPv6 address counts as its /64.
 *
 * A synchronous preHandler (no promise, no await: it runs on every token request). Use, inside
 * a route plugin:
 *   const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics });
 *   app.post('/par', { preHandler: limiter.endpoint('par', { perIp: n, authBackoff }) }, …);
 * The endpoints that authenticate clients limit each client after it has authenticated:
 * `limiter.client('par', m, clock)` goes into the core's ClientAuthDeps (src/oauth/client-auth/client-rate-limit.ts).
 */
export interface EndpointLimits {
  /** Requests per window from one IP address. */
  perIp: number;
  /** Requests per window for one key the request claims; not applied when it claims none. */
  perKey?: KeyedLimit;
  /** Refuses callers that failed client authentication too often (shared by every endpoint that authenticates clients). */
  authBackoff?: ClientAuthBackoff;
  /**
   * How a refusal is answered: return the error to answer with, or send the reply yourself and
   * return nothing. Default: 429 `too_many_requests` JSON with `Cache-Control: no-store`.
   */
  onLimited?: (req: FastifyRequest, reply: FastifyReply, retryAfterSeconds: number) => Error | undefined;
}

export interface KeyedLimit {
  /** The metric's `limit` label and the key's namespace: `client`, `login`, … (a fixed word). */
  name: string;
  max: number;
  /** The key of a request (bounded in length by the limiter), or undefined for none. */
  key: (req: FastifyRequest) => string | undefined;
}

export type RateLimitPreHandler = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

export interface RateLimiter {
  /** A preHandler enforcing `limits` for the endpoint `name` (the metric's `endpoint` label). */
  endpoint(name: string, limits: EndpointLimits): RateLimitPreHandler;
  /** The per-authenticated-client limit of the endpoint `name`: `max` requests per window per client. */
  client(name: string, max: number, clock: Clock): ClientRateLimit;
}

/** Keys longer than this are cut: a claimed key is attacker-chosen and lives in memory. */
const MAX_KEY_LENGTH = 200;
const CAPACITY = 10_000;

/** The default refusal: RFC 6749 §5.1 says token responses (errors too) are not cached. */
function refuse(_req: FastifyRequest, reply: FastifyReply, retryAfterSeconds: number): Error {
  reply.header('Retry-After', String(retryAfterSeconds)).header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
  return new TooManyRequests('too many requests; retry after the time in Retry-After');
}

export function createRateLimiter(options: { windowSeconds: number; metrics: Metrics }): RateLimiter {
  const windowMs = options.windowSeconds * 1000;
  const counter = options.metrics.rateLimited;

  return {
    endpoint(name, limits) {
      const perIp = new FixedWindowCounter(windowMs, CAPACITY);
      const keyed = limits.perKey;
      const perKey = keyed && new FixedWindowCounter(windowMs, CAPACITY);
      const onLimited = limits.onLimited ?? refuse;
      const limited = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, limit: string, seconds: number) => {
        counter.inc({ endpoint: name, limit });
        const err = onLimited(req, reply, seconds);
        // Without an error the refusal has been sent, and the request goes no further.
        if (err) done(err);
        else if (!reply.sent) done(new Error(`the ${name} limit's refusal sent no reply`));
      };

      return (req, reply, done) => {
        const now = Date.now();
        const address = addressKey(req.ip);
        const ip = perIp.add(address, now);
        if (ip.count > limits.perIp) return limited(req, reply, done, 'ip', FixedWindowCounter.secondsUntil(ip.endsAt, now));
        const claim = keyed?.key(req);
        if (perKey && claim !== undefined) {
          const key = perKey.add(claim.slice(0, MAX_KEY_LENGTH), now);
          if (key.count > keyed.max) return limited(req, reply, done, keyed.name, FixedWindowCounter.secondsUntil(key.endsAt, now));
        }
        const backoff = limits.authBackoff?.retryAfter(address);
        if (backoff !== undefined) return limited(req, reply, done, 'auth_failures', backoff);
        done();
      };
    },
    client(name, max, clock) {
      const overridable = (CLIENT_RATE_LIMITED_ENDPOINTS as readonly string[]).includes(name) ? name as ClientRateLimitedEndpoint : undefined;
      return new ClientRateLimit(clock, max, options.windowSeconds, () => counter.inc({ endpoint: name, limit: 'client' }), CAPACITY, overridable);
    },
  };
}
