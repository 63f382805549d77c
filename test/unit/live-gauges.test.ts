import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { cachedCountGauge } from '../../src/platform/observability/live-gauges.js';

describe('cachedCountGauge', () => {
  it('counts on scrape at most once per 15 s; a failed count keeps the last value and does not fail the scrape', async () => {
    const registry = new Registry();
    let now = 0;
    let next: number | Error = 7;
    let calls = 0;
    const errors: unknown[] = [];
    cachedCountGauge(registry, {
      name: 'latchkey_test_live', help: 'test', now: () => now, onError: (err) => errors.push(err),
      count: async () => { calls++; if (next instanceof Error) throw next; return next; },
    });
    const scrape = async () => (await registry.getMetricsAsJSON())[0]!.values[0]?.value;
    expect(await scrape()).toBe(7);
    next = 9;
    now += 14_999;
    expect(await scrape()).toBe(7); // cached
    expect(calls).toBe(1);
    now += 1;
    expect(await scrape()).toBe(9);
    next = new Error('database unreachable');
    now += 15_000;
    expect(await scrape()).toBe(9); // the last value, and the scrape succeeds
    expect(errors).toHaveLength(1);
    expect(calls).toBe(3);
    expect(await scrape()).toBe(9); // a failure also waits its period before trying again
    expect(calls).toBe(3);
    const [a, b] = await Promise.all([(now += 15_000, registry.metrics()), registry.metrics()]);
    expect(a).toBe(b);
    expect(calls).toBe(4); // concurrent scrapes share one count
  });
});
