import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/observability/latency-histogram.js';

describe('LatencyHistogram (the request-path histogram)', () => {
  const buckets = [0.001, 0.005, 0.01, 0.5];
  const values = [0.0004, 0.001, 0.0011, 0.004, 0.2, 0.5, 3, 0.007];

  it('exports exactly what prom-client\'s Histogram exports for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const a = new LatencyHistogram({ name: 'h_seconds', help: 'Help.', labelNames: ['method', 'route'], buckets, registers: [ours] });
    const b = new Histogram({ name: 'h_seconds', help: 'Help.', labelNames: ['method', 'route'], buckets, registers: [theirs] });
    values.forEach((v, i) => {
      const labels = { method: 'POST', route: i % 3 === 0 ? '/token' : '/introspect' };
      a.observe(labels, v);
      b.observe(labels, v);
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('works without labels, and reset empties it', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const a = new LatencyHistogram({ name: 'plain_seconds', help: 'Help.', buckets, registers: [ours] });
    const b = new Histogram({ name: 'plain_seconds', help: 'Help.', buckets, registers: [theirs] });
    for (const v of values) { a.observe(v); b.observe(v); }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('plain_seconds_bucket{le="0.005"} 4\n');
    expect(await ours.metrics()).toContain('plain_seconds_count 8\n');
    ours.resetMetrics();
    expect(await ours.metrics()).toBe('# HELP plain_seconds Help.\n# TYPE plain_seconds histogram\n');
  });
});
