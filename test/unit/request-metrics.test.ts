import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram, RequestCounter } from '../../src/platform/observability/request-metrics.js';

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

describe('RequestCounter (the request-path counter)', () => {
  it('exports exactly what prom-client\'s Counter exports for the same increments', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const a = new RequestCounter({ name: 'c_total', help: 'Help.', labelNames: ['grant_type', 'outcome'], registers: [ours] });
    const b = new Counter({ name: 'c_total', help: 'Help.', labelNames: ['grant_type', 'outcome'], registers: [theirs] });
    for (const [g, o, n] of [['client_credentials', 'success', 1], ['client_credentials', 'success', 1], ['refresh_token', 'invalid_grant', 3], ['client_credentials', 'invalid_scope', 1]] as const) {
      a.inc({ grant_type: g, outcome: o }, n);
      b.inc({ grant_type: g, outcome: o }, n);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('c_total{grant_type="client_credentials",outcome="success"} 2\n');
  });

  it('without labels starts at 0 like prom-client, ignores a decrement, and reset starts over', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const a = new RequestCounter({ name: 'plain_total', help: 'Help.', registers: [ours] });
    new Counter({ name: 'plain_total', help: 'Help.', registers: [theirs] });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    a.inc(); a.inc(2); a.inc(-5);
    expect(await ours.metrics()).toContain('plain_total 3\n');
    ours.resetMetrics();
    expect(await ours.metrics()).toContain('plain_total 0\n');
  });
});
