import type { Clock } from '../../platform/clock.js';
import { parseDurationSeconds } from '../../platform/config/settings.js';

/** How often each instance writes the last-used times it collected. */
export const CLIENT_USAGE_FLUSH_SECONDS = 60;

/**
 * When each client last authenticated, collected in memory on the request path (one Map.set,
 * no await, no database write per request) and written by `flush` — every
 * CLIENT_USAGE_FLUSH_SECONDS and on close — in one statement for the whole batch. A time is
 * therefore up to a minute late in the table; a lost instance loses at most that minute, which
 * a stale-client listing measured in days does not notice. Bounded by the number of clients that
 * authenticate (only a client that proved its credential, or a public one, is recorded).
 */
export class ClientUsage {
  private pending = new Map<string, Date>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly clock: Clock,
    private readonly write: (usage: ReadonlyMap<string, Date>) => Promise<void>,
  ) {}

  /** The request path: this client authenticated now. */
  record(clientId: string): void {
    this.pending.set(clientId, this.clock.now());
  }

  /** Writes what was collected since the last flush; on failure keeps it for the next one. Flushes run one at a time. */
  flush(): Promise<void> {
    const run = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        await this.write(batch);
      } catch (err) {
        // Put the batch back under anything recorded since (which is later).
        for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
        throw err;
      }
    });
    this.flushing = run.catch(() => {});
    return run;
  }

  /** Clients waiting to be written, for tests. */
  get size(): number {
    return this.pending.size;
  }
}

/** The longest "unused for" a stale-client query takes (ten years). */
const MAX_UNUSED_FOR_SECONDS = 3650 * 86400;

/**
 * The instant of a stale-client query, from `unused_for` (a duration such as 90d, counted back
 * from now) or `unused_since` (an ISO 8601 instant), exactly one of them: the instant, or the
 * problem to answer (the admin API's invalid_request, the CLI's usage error).
 */
export function unusedSinceOf(query: { unused_for?: unknown; unused_since?: unknown }, now: Date): { since: Date } | { problem: string } {
  const { unused_for: forText, unused_since: sinceText } = query;
  if (forText !== undefined && sinceText !== undefined) return { problem: 'give unused_for or unused_since, not both' };
  if (forText !== undefined) {
    const seconds = typeof forText === 'string' ? parseDurationSeconds(forText) : undefined;
    if (seconds === undefined || seconds > MAX_UNUSED_FOR_SECONDS) return { problem: 'unused_for must be a duration such as 90d, 12h or 3600 (at most 3650d)' };
    return { since: new Date(now.getTime() - seconds * 1000) };
  }
  if (typeof sinceText !== 'string' || !/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(sinceText) || Number.isNaN(Date.parse(sinceText))) {
    return { problem: 'unused_since must be an ISO 8601 date or instant, such as 2026-01-01 or 2026-01-01T00:00:00Z' };
  }
  return { since: new Date(Date.parse(sinceText)) };
}
