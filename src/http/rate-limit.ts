import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ClientAuthBackoff } from '../oauth/client-auth-backoff.js';
import { claimedClientId } from '../oauth/client-auth.js';
import { TooManyRequests } from '../oauth/errors.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * Rate limits for any endpoint, one piece: per IP address, then per claimed key (a client_id,
 * a login name) when the request claims one, then — where client authentication happens — the
 * harder back-off after repeated failed client authentications. The first limit exceeded
 * answers 429 with Retry-After and counts `latchkey_rate_limited_total{endpoint,limit}`.
 * Counters are in memory (@fastify/rate-limit's LRU store, 10,000 keys per limit), per
 * instance, over fixed windows of RATE_LIMIT_WINDOW. An IPv6 address counts as its /64.
 *
 * Use, inside a route plugin:
 *   const limiter = await createRateLimiter(app, { windowSeconds: config.rateLimitWindow, metrics });
 *   app.post('/par', { preHandler: limiter.endpoint('par', { perIp: n, perKey: perClaimedClient(m), authBackoff }) }, …);
 */
export interface EndpointLimits {
  /** Requests per window from one IP address. */
  perIp: number;
  /** Requests per window for one key the request claims; not applied when it claims none. */
  perKey?: KeyedLimit;
  /** Refuses callers that failed client authentication too often (shared by every endpoint that authenticates clients). */
  authBackoff?: ClientAuthBackoff;
  /** How a refusal is answered; default: 429 `too_many_requests` JSON with `Cache-Control: no-store`. */
  onLimited?: (req: FastifyRequest, reply: FastifyReply, retryAfterSeconds: number) => FastifyReply | Promise<FastifyReply>;
}

export interface KeyedLimit {
  /** The metric's `limit` label and the key's namespace: `client`, `login`, … (a fixed word). */
  name: string;
  max: number;
  /** The key of a request (bounded in length by the limiter), or undefined for none. */
  key: (req: FastifyRequest) => string | undefined;
}

export type RateLimitPreHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

export interface RateLimiter {
  /** A preHandler enforcing `limits` for the endpoint `name` (the metric's `endpoint` label). */
  endpoint(name: string, limits: EndpointLimits): RateLimitPreHandler;
}

/** Keys longer than this are cut: a claimed key is attacker-chosen and lives in memory. */
const MAX_KEY_LENGTH = 200;
const CACHE_SIZE = 10_000;

/** The per-client limit of the endpoints that authenticate clients: the client_id a request claims, before authentication. */
export function perClaimedClient(max: number): KeyedLimit {
  return {
    name: 'client',
    max,
    key: (req) => {
      const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, string | string[] | undefined>) : {};
      return claimedClientId({ authorization: req.headers.authorization, body });
    },
  };
}

/** The default refusal: RFC 6749 §5.1 says token responses (errors too) are not cached. */
function refuse(_req: FastifyRequest, reply: FastifyReply, retryAfterSeconds: number): never {
  reply.header('Retry-After', String(retryAfterSeconds)).header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
  throw new TooManyRequests('too many requests; retry after the time in Retry-After');
}

/** Registers @fastify/rate-limit (not globally) in `app`'s context and returns the limiter factory. */
export async function createRateLimiter(app: FastifyInstance, options: { windowSeconds: number; metrics: Metrics }): Promise<RateLimiter> {
  if (!app.hasDecorator('createRateLimit')) await app.register(rateLimit, { global: false, cache: CACHE_SIZE });
  const timeWindow = options.windowSeconds * 1000;
  const counter = options.metrics.rateLimited;

  return {
    endpoint(name, limits) {
      // `cache` (the LRU size of each limit's store) is read at run time though not in the types.
      const store = { cache: CACHE_SIZE } as object;
      // The library's own key for the address: an IPv4 address, or an IPv6 address's /64 (one
      // host usually holds a whole /64, so counting per /128 would be no limit at all).
      const perIp = app.createRateLimit({ ...store, max: limits.perIp, timeWindow });
      const keyed = limits.perKey;
      // The claimed key is worked out once per request (it may mean decoding a Basic header).
      const claimed = new WeakMap<FastifyRequest, string>();
      const perKey = keyed && app.createRateLimit({ ...store, max: keyed.max, timeWindow, keyGenerator: (req) => claimed.get(req) ?? '' });
      const exceeded = (r: Awaited<ReturnType<typeof perIp>>) => (r.isAllowed ? undefined : r.isExceeded ? r.ttlInSeconds : undefined);
      const onLimited = limits.onLimited ?? refuse;
      const limited = (req: FastifyRequest, reply: FastifyReply, limit: string, seconds: number) => {
        counter.inc({ endpoint: name, limit });
        return onLimited(req, reply, Math.max(1, seconds));
      };

      return async (req, reply) => {
        const ip = exceeded(await perIp(req));
        if (ip !== undefined) return limited(req, reply, 'ip', ip);
        const claim = keyed?.key(req);
        if (perKey && claim !== undefined) {
          claimed.set(req, claim.slice(0, MAX_KEY_LENGTH));
          const key = exceeded(await perKey(req));
          if (key !== undefined) return limited(req, reply, keyed.name, key);
        }
        const backoff = limits.authBackoff?.retryAfter(req.ip);
        if (backoff !== undefined) return limited(req, reply, 'auth_failures', backoff);
        return undefined;
      };
    },
  };
}
