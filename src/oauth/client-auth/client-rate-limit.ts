import type { Clock } from '../../platform/clock.js';
import { FixedWindowCounter } from '../../platform/fixed-window.js';
import type { ClientMetadata, ClientRateLimitedEndpoint } from '../client-metadata.js';

export { CLIENT_RATE_LIMITED_ENDPOINTS, type ClientRateLimitedEndpoint } from '../client-metadata.js';
import { TooManyRequests } from '../errors.js';

/**
 * The per-client request limit of an endpoint that authenticates clients (/token, /introspect,
 * /revoke, /par; /register/:client_id by its registration access token), counted per
 * *authenticated* client: src/oauth/client-auth/authenticate.ts admits a client once it has proven its
 * credential and before anything else happens (no code redeemed, no
 * refresh token rotated). Requests sent in a client's name with wrong credentials, or with a
 * replayed assertion, never spend its allowance, so nobody can lock a confidential client out by
 * naming it; they count against the sender's address instead (the per-IP limit and the failure
 * back-off, src/server/http/rate-limit.ts). A public client has no credential: whoever names it spends
 * its allowance. Fixed windows of `windowSeconds`, in memory, per instance. A client whose
 * metadata sets `rate_limits` for this endpoint (an administrator's override) has that limit
 * instead of `max`.
 */
export class ClientRateLimit {
  private readonly counts: FixedWindowCounter;

  constructor(
    private readonly clock: Clock,
    readonly max: number,
    windowSeconds: number,
    /** Called for each refusal (the rate-limit metric). */
    private readonly onRefused: () => void = () => {},
    capacity = 10_000,
    /** The endpoint whose entry of a client's `rate_limits` applies here; none: no override. */
    private readonly endpoint?: ClientRateLimitedEndpoint,
  ) {
    this.counts = new FixedWindowCounter(windowSeconds * 1000, capacity);
  }

  /**
   * Counts one request of `clientId`; beyond its limit in the window (its `overrides` entry for
   * this endpoint, else `max`): 429 too_many_requests with Retry-After (RFC 6585 §4).
   */
  admit(clientId: string, overrides?: ClientMetadata['rate_limits']): void {
    const now = this.clock.now().getTime();
    const window = this.counts.add(clientId, now);
    const max = (this.endpoint !== undefined ? overrides?.[this.endpoint] : undefined) ?? this.max;
    if (window.count > max) this.refuse(window.endsAt, now);
  }

  /**
   * Gives back the count of a request `admit` let through that then failed its authentication
   * (a replayed client assertion, which is admitted before its jti is spent).
   */
  release(clientId: string): void {
    this.counts.release(clientId, this.clock.now().getTime());
  }

  private refuse(endsAt: number, now: number): never {
    this.onRefused();
    const err = new TooManyRequests('too many requests; retry after the time in Retry-After');
    err.headers['Retry-After'] = String(FixedWindowCounter.secondsUntil(endsAt, now));
    throw err;
  }
}
