import { sql, type Kysely } from 'kysely';
import type { Database } from '../platform/db/schema.js';
import { FixedWindowCounter } from '../platform/fixed-window.js';

/**
 * Failure counters for the login form, keyed by account and by client IP. Counting is one
 * atomic upsert, so concurrent guesses from many instances all count.
 */
export class LoginThrottleRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** When `key` may try again (undefined: now). */
  async blockedUntil(keys: string[], now: Date): Promise<Date | undefined> {
    if (keys.length === 0) return undefined;
    const row = await this.db.selectFrom('login_throttle')
      .select((eb) => eb.fn.max('blocked_until').as('until'))
      .where('key', 'in', keys).where('blocked_until', '>', now)
      .executeTakeFirst();
    return row?.until ? new Date(row.until) : undefined;
  }

  /** Seconds until every one of `keys` may try again (undefined: now), as a Retry-After says it. */
  async secondsBlocked(keys: string[], now: Date): Promise<number | undefined> {
    const until = await this.blockedUntil(keys, now);
    return until ? FixedWindowCounter.secondsUntil(until.getTime(), now.getTime()) : undefined;
  }

  /**
   * Counts one failure for `key` and returns the new count. A key whose last failure is older
   * than `windowSeconds` starts again from one. `blockFor(count)` gives the delay (seconds, 0 for none).
   */
  async recordFailure(key: string, now: Date, windowSeconds: number, blockFor: (failures: number) => number): Promise<number> {
    const windowStart = new Date(now.getTime() - windowSeconds * 1000);
    const row = await this.db.insertInto('login_throttle')
      .values({ key, failures: 1, blocked_until: null, last_failure_at: now })
      .onConflict((oc) => oc.column('key').doUpdateSet({
        failures: sql<number>`case when login_throttle.last_failure_at < ${windowStart} then 1 else login_throttle.failures + 1 end`,
        last_failure_at: now,
      }))
      .returning('failures')
      .executeTakeFirstOrThrow();
    const seconds = blockFor(row.failures);
    if (seconds > 0) {
      await this.db.updateTable('login_throttle')
        .set({ blocked_until: new Date(now.getTime() + seconds * 1000) })
        .where('key', '=', key).execute();
    }
    return row.failures;
  }

  /**
   * Takes one attempt for `key` before the secret is checked, counted as a failure until a
   * success clears it — in one upsert that also sets the block, so guesses sent in parallel
   * cannot all pass a check made before any of them failed. Undefined when `key` is blocked
   * (nothing counted). After `free` attempts, each one blocks the next for 2^(n − free) seconds,
   * up to `maxDelaySeconds` (`fixed`: the `free`-th attempt blocks the next for `maxDelaySeconds`);
   * a key quiet for `windowSeconds` starts again from one.
   */
  async takeAttempt(key: string, now: Date, rule: { windowSeconds: number; free: number; maxDelaySeconds: number; fixed?: boolean }): Promise<number | undefined> {
    const windowStart = new Date(now.getTime() - rule.windowSeconds * 1000);
    const next = sql<number>`case when login_throttle.last_failure_at < ${windowStart} then 1 else login_throttle.failures + 1 end`;
    // `fixed`: the whole delay at once once the free attempts are spent (no doubling up to it).
    const delay = (n: ReturnType<typeof sql<number>>) => (rule.fixed ? sql`${rule.maxDelaySeconds}` : sql`least(power(2, ${n} - ${rule.free}), ${rule.maxDelaySeconds})`);
    const blockAfter = (n: ReturnType<typeof sql<number>>) => sql<Date | null>`case when ${n} >= ${rule.fixed ? rule.free : rule.free + 1}
      then ${now}::timestamptz + ${delay(n)} * interval '1 second' else null end`;
    const row = await this.db.insertInto('login_throttle')
      .values({ key, failures: 1, blocked_until: null, last_failure_at: now })
      .onConflict((oc) => oc.column('key').doUpdateSet({ failures: next, blocked_until: blockAfter(next), last_failure_at: now })
        .where(sql<boolean>`login_throttle.blocked_until is null or login_throttle.blocked_until <= ${now}`))
      .returning('failures')
      .executeTakeFirst();
    return row?.failures;
  }

  async clear(key: string): Promise<void> {
    await this.db.deleteFrom('login_throttle').where('key', '=', key).execute();
  }
}
