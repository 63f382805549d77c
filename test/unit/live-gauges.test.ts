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

  it('a count slower than timeoutMs does not hold the scrape: the last value now, the new one once it arrives', async () => {
    const registry = new Registry();
    let now = 0;
    let release: (n: number) => void = () => {};
    let calls = 0;
    cachedCountGauge(registry, {
      name: 'latchkey_test_slow', help: 'test', now: () => now, timeoutMs: 50,
      count: () => { calls++; return calls === 1 ? Promise.resolve(3) : new Promise<number>((resolve) => { release = resolve; }); },
    });
    const scrape = async () => (await registry.getMetricsAsJSON())[0]!.values[0]?.value;
    expect(await scrape()).toBe(3);
    now += 15_000;
    const started = performance.now();
    expect(await scrape()).toBe(3); // the database hangs: answered after the timeout with the last value
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await scrape()).toBe(3); // still pending: no second query
    expect(calls).toBe(2);
    release(5);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(await scrape()).toBe(5);
    expect(calls).toBe(2);
  });

  it('a count that throws at once is retried after the period (never stuck on a settled query)', async () => {
    const registry = new Registry();
    let now = 0;
    let calls = 0;
    cachedCountGauge(registry, {
      name: 'latchkey_test_throws', help: 'test', now: () => now,
      count: () => { calls++; if (calls === 1) throw new Error('synchronous'); return Promise.resolve(calls); },
    });
    await registry.metrics();
    now += 15_000;
    await registry.metrics();
    expect(calls).toBe(2);
    expect((await registry.getMetricsAsJSON())[0]!.values[0]?.value).toBe(2);
  });
});
