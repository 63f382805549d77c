import type { Clock } from '../../platform/clock.js';
import { FixedWindowCounter } from '../../platform/fixed-window.js';

/**
 * Harder back-off after repeated failed client authentications: a count of failures per key
 * (the caller's IP address) within a fixed window. Once a key has `maxFailures` failures in the
 * current window, every further request from it is refused until the window ends, whatever
 * its credentials — much sooner than the request-rate limits, which count every request.
 *
 * Keyed by IP address, not by the claimed client_id: a count per client_id would let anyone
 * lock a client out by sending bad credentials in its name, and client secrets are 256-bit
 * random values, so guessing one is not the threat this guards against (load and credential
 * stuffing are). In memory, per instance, at most `capacity` keys (oldest dropped first).
 */
export class ClientAuthBackoff {
  private readonly failures: FixedWindowCounter;

  constructor(
    private readonly clock: Clock,
    readonly maxFailures: number,
    readonly windowSeconds: number,
    capacity = 10_000,
  ) {
    this.failures = new FixedWindowCounter(windowSeconds * 1000, capacity);
  }

  /** Counts one failed client authentication from `key`. */
  recordFailure(key: string): void {
    this.failures.add(key, this.clock.now().getTime());
  }

  /** Seconds until `key` may try again, or undefined when it is not blocked. */
  retryAfter(key: string): number | undefined {
    const now = this.clock.now().getTime();
    const window = this.failures.peek(key, now);
    return window && window.count >= this.maxFailures ? FixedWindowCounter.secondsUntil(window.endsAt, now) : undefined;
  }
}
