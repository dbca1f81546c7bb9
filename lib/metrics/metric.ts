/**
 * Counters, gauges and histograms cheap enough for every request: a counter
 * bump is a `Map` lookup and an addition, with no label validation or
 * hashing per call. Each implements the metric interface of `prom-client`'s
 * `Registry` (`name`, `get()`), which renders them beside its own process
 * metrics (see `registry.ts`).
 *
 * Label values come only from bounded sets the caller picks (known routes,
 * status codes, Keeper positions, store operations): never a secret path or
 * other user data.
 *
 * @module
 */

/** One sample as `prom-client` renders it. */
export interface MetricSample {
  /** Label names to values. */
  readonly labels: Readonly<Record<string, string | number>>;
  /** The value. */
  readonly value: number;
  /** A suffixed name (`_bucket`, `_sum`, `_count`) for histogram parts. */
  readonly metricName?: string;
}

/** What `prom-client`'s `Registry` asks of a metric. */
export interface ExposedMetric {
  /** The metric name. */
  readonly name: string;
  /** One line of help text. */
  readonly help: string;
  /** Prometheus type. */
  readonly type: "counter" | "gauge" | "histogram";
  /** How cluster aggregation would combine it (unused here; part of the interface). */
  readonly aggregator: "sum";
  /** The current samples. */
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: MetricSample[];
  }>;
}

/** Labels object from names and values, in name order (the order they are rendered in). */
function labelsOf(names: readonly string[], values: readonly (string | number)[]): Record<string, string | number> {
  const labels: Record<string, string | number> = {};
  names.forEach((name, i) => labels[name] = values[i]!);
  return labels;
}

function checkArity(name: string, names: readonly string[], values: readonly unknown[]): void {
  if (values.length !== names.length) {
    throw new RangeError(`${name} takes ${names.length} label value(s), got ${values.length}`);
  }
}

/** A handle on one labelled counter series, kept by hot paths so a bump is one addition. */
export interface CounterSeries {
  /** Adds `by` (default 1). */
  inc(by?: number): void;
}

/** A monotonic counter, optionally labelled. */
export class Counter implements ExposedMetric {
  readonly type = "counter" as const;
  readonly aggregator = "sum" as const;
  readonly #series = new Map<string, { labels: Record<string, string | number>; value: number }>();

  /** `labelNames` fixes the labels every series carries, in this order. */
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[] = []) {}

  /** The series for these label values (created at 0 on first use). */
  series(...values: (string | number)[]): CounterSeries {
    checkArity(this.name, this.labelNames, values);
    const key = values.join("\u0000");
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { labels: labelsOf(this.labelNames, values), value: 0 };
      this.#series.set(key, entry);
    }
    const target = entry;
    return {
      inc(by = 1) {
        target.value += by;
      },
    };
  }

  /** Adds 1 to the series with these label values. */
  inc(...values: (string | number)[]): void {
    const key = values.join("\u0000");
    const entry = this.#series.get(key);
    if (entry && values.length === this.labelNames.length) entry.value++;
    else this.series(...values).inc();
  }

  /** Samples for the registry. */
  get(): ReturnType<ExposedMetric["get"]> {
    const values = [...this.#series.values()].map(({ labels, value }) => ({ labels, value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

/** What a gauge's reader returns: one value, or one per label set. */
export type GaugeReading = number | Iterable<readonly [readonly (string | number)[], number]>;

/** Samples from a reading. */
function samplesOf(name: string, labelNames: readonly string[], reading: GaugeReading): MetricSample[] {
  return typeof reading === "number" ? [{ labels: {}, value: reading }] : [...reading].map(([labelValues, value]) => {
    checkArity(name, labelNames, labelValues);
    return { labels: labelsOf(labelNames, labelValues), value };
  });
}

/**
 * A gauge read when scraped, from state that lives elsewhere (the key state,
 * the Keeper status, a cached store count): nothing to keep in step.
 */
export class Gauge implements ExposedMetric {
  readonly type: "gauge" | "counter" = "gauge";
  readonly aggregator = "sum" as const;

  /** `read` is called at every scrape; with `labelNames` it returns `[labelValues, value]` pairs. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => GaugeReading | Promise<GaugeReading>,
    readonly labelNames: readonly string[] = [],
  ) {}

  /** Samples for the registry. */
  async get(): ReturnType<ExposedMetric["get"]> {
    const values = samplesOf(this.name, this.labelNames, await this.read());
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A counter read when scraped from a total kept elsewhere (it must only ever grow). */
export class ReadCounter extends Gauge {
  override readonly type = "counter";
}

/** A handle on one labelled histogram series. */
export interface HistogramSeries {
  /** Records one observation. */
  observe(value: number): void;
}

interface HistogramState {
  readonly labels: Record<string, string | number>;
  /** Per-bucket (not cumulative) counts; the last slot is above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A histogram with fixed bucket bounds, optionally labelled. */
export class Histogram implements ExposedMetric {
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  readonly #series = new Map<string, HistogramState>();

  /** `buckets` are upper bounds, ascending; `+Inf` is added. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    readonly labelNames: readonly string[] = [],
  ) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new RangeError(`${name}: buckets must ascend`);
    }
  }

  /** The series for these label values (created empty on first use). */
  series(...values: (string | number)[]): HistogramSeries {
    checkArity(this.name, this.labelNames, values);
    const key = values.join("\u0000");
    let state = this.#series.get(key);
    if (!state) {
      state = {
        labels: labelsOf(this.labelNames, values),
        counts: new Array(this.buckets.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, state);
    }
    const target = state;
    const bounds = this.buckets;
    return {
      observe(value: number) {
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        target.counts[i]!++;
        target.sum += value;
        target.count++;
      },
    };
  }

  /** Samples for the registry: cumulative buckets, `+Inf`, sum and count per series. */
  get(): ReturnType<ExposedMetric["get"]> {
    const values: MetricSample[] = [];
    for (const { labels, counts, sum, count } of this.#series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...labels, le: "+Inf" }, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
