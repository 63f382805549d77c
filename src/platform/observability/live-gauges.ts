import { Gauge, type Registry } from 'prom-client';
import { LatencyHistogram } from './request-metrics.js';

/**
 * A gauge read from the database on scrape: one cheap COUNT, cached for `ttlMs` so that several
 * scrapers (or a dashboard refreshing) cost one query per period. A failed count leaves the
 * last value and never fails the scrape (`onError` is told), nor does a count that takes longer
 * than `timeoutMs` (a database outage must not hold the scrape until its connection times out):
 * the scrape answers with the last value and the count's result is kept when it arrives.
 * Concurrent scrapes share one query.
 */
export function cachedCountGauge(registry: Registry, options: {
  name: string;
  help: string;
  count: () => Promise<number>;
  /** Epoch ms (the server's clock). */
  now: () => number;
  ttlMs?: number;
  timeoutMs?: number;
  onError?: (err: unknown) => void;
}): Gauge {
  const ttl = options.ttlMs ?? 15_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  let value: number | undefined;
  let readAt = -Infinity;
  let pending: Promise<void> | undefined;
  const refresh = async () => {
    try {
      const n = await options.count();
      value = n;
    } catch (err) {
      options.onError?.(err);
    } finally {
      // A failure waits the same period before trying again: a database outage is not hammered by scrapes.
      readAt = options.now();
    }
  };
  return new Gauge({
    name: options.name,
    help: options.help,
    registers: [registry],
    async collect() {
      if (options.now() - readAt >= ttl || pending) {
        // Cleared in a later microtask, so never before this assignment (even if count throws at once).
        pending ??= refresh().finally(() => { pending = undefined; });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([pending, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); timer.unref(); })]);
        clearTimeout(timer);
      }
      if (value !== undefined) this.set(value);
    },
  });
}

/**
 * latchkey_revocation_propagation_seconds{kind}: on each instance, the time from a revocation
 * (its time, carried in the NOTIFY payload) to this instance having applied it; `kind` is
 * access_token (the jti denylist) or grant (revoked grants and refresh families). A notification
 * lost and made up by the periodic reload is not observed (its bound is the reload period).
 */
export function revocationPropagation(registry: Registry): LatencyHistogram<'kind'> {
  return new LatencyHistogram({
    name: 'latchkey_revocation_propagation_seconds',
    help: 'Seconds from a revocation to this instance having applied it (from the NOTIFY), by kind (access_token, grant).',
    labelNames: ['kind'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
}
