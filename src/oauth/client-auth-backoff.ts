import type { Clock } from '../clock.js';

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
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly clock: Clock,
    readonly maxFailures: number,
    readonly windowSeconds: number,
    private readonly capacity = 10_000,
  ) {}

  /** Counts one failed client authentication from `key`. */
  recordFailure(key: string): void {
    const now = this.clock.now().getTime();
    const entry = this.failures.get(key);
    if (entry && entry.resetAt > now) {
      entry.count += 1;
      return;
    }
    if (entry) this.failures.delete(key);
    if (this.failures.size >= this.capacity) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(key, { count: 1, resetAt: now + this.windowSeconds * 1000 });
  }

  /** Seconds until `key` may try again, or undefined when it is not blocked. */
  retryAfter(key: string): number | undefined {
    const entry = this.failures.get(key);
    if (!entry) return undefined;
    const now = this.clock.now().getTime();
    if (entry.resetAt <= now) {
      this.failures.delete(key);
      return undefined;
    }
    return entry.count >= this.maxFailures ? Math.max(1, Math.ceil((entry.resetAt - now) / 1000)) : undefined;
  }
}
