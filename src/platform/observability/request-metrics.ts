import type { Registry } from 'prom-client';

type LabelValues<L extends string> = Partial<Record<L, string | number>>;

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * Metrics on the request path, registered on a prom-client registry like any metric and
 * exported in prom-client's exposition, but without its per-call cost: prom-client validates and
 * hashes the label object on every call (and keys histogram buckets by float-valued property
 * names), several µs per call where the token endpoint makes four. Here a label set is found by
 * its values joined, in `labelNames` order.
 */

/** The key of a label set: its values in label-name order. */
function seriesKey<L extends string>(labelNames: readonly L[], labels: LabelValues<L> | undefined): string {
  let key = '';
  if (labels) for (const name of labelNames) key += `${labels[name]}\u0000`;
  return key;
}

function labelCopy<L extends string>(labelNames: readonly L[], labels: LabelValues<L> | undefined): Record<string, string> {
  const copy: Record<string, string> = {};
  if (labels) for (const name of labelNames) if (labels[name] !== undefined) copy[name] = String(labels[name]);
  return copy;
}

/** What both metrics share: a name, help, label names, and registration on prom-client registries. */
abstract class RequestMetric<L extends string> {
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly L[];

  constructor(options: { name: string; help: string; labelNames?: readonly L[] | undefined }) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  protected registerOn(registries: Registry[]): void {
    for (const registry of registries) registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }
}

/** A Prometheus counter for the request path (`inc(labels)`), exported as prom-client's Counter is. */
export class RequestCounter<L extends string = never> extends RequestMetric<L> {
  readonly type = 'counter';
  private series = new Map<string, { labels: Record<string, string>; value: number }>();

  constructor(options: { name: string; help: string; labelNames?: readonly L[]; registers: Registry[] }) {
    super(options);
    this.reset();
    this.registerOn(options.registers);
  }

  inc(...args: [L] extends [never] ? [value?: number] : [labels: LabelValues<L>, value?: number]): void {
    const labels = (typeof args[0] === 'object' ? args[0] : undefined) as LabelValues<L> | undefined;
    const value = (typeof args[0] === 'object' ? args[1] : args[0]) ?? 1;
    if (!Number.isFinite(value) || value < 0) return; // a counter only goes up
    const key = seriesKey(this.labelNames, labels);
    const series = this.series.get(key);
    if (series) series.value += value;
    else this.series.set(key, { labels: labelCopy(this.labelNames, labels), value });
  }

  /** Starts from zero; a counter without labels shows its one series at 0, as prom-client's does. */
  reset(): void {
    this.series = new Map();
    if (this.labelNames.length === 0) this.series.set('', { labels: {}, value: 0 });
  }

  async get(): Promise<{ name: string; help: string; type: 'counter'; aggregator: 'sum'; values: Array<{ labels: Record<string, string>; value: number }> }> {
    const values = [...this.series.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/**
 * A Prometheus histogram for the request path, registered on a prom-client registry like any
 * metric and exported in the same shape (`_bucket{le}` cumulative, `+Inf`, `_sum`, `_count`).
 * Counts live in a typed array per label set.
 */
export class LatencyHistogram<L extends string = never> extends RequestMetric<L> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];
  private series = new Map<string, Series>();

  constructor(options: { name: string; help: string; labelNames?: readonly L[]; buckets: readonly number[]; registers: Registry[] }) {
    super(options);
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    this.registerOn(options.registers);
  }

  /** Records one value (seconds) for a label set; a histogram without labels takes the value alone. */
  observe(...args: [L] extends [never] ? [value: number] : [labels: LabelValues<L>, value: number]): void {
    const labels = (args.length === 2 ? args[0] : undefined) as LabelValues<L> | undefined;
    const value = (args.length === 2 ? args[1] : args[0]) as number;
    if (!Number.isFinite(value)) return;
    const key = seriesKey(this.labelNames, labels);
    let series = this.series.get(key);
    if (series === undefined) {
      series = { labels: labelCopy(this.labelNames, labels), counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    series.counts[i]! += 1;
    series.sum += value;
    series.count += 1;
  }

  reset(): void {
    this.series = new Map();
  }

  /** What prom-client's registry reads to export the metric. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> }> {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
