/**
 * Request metrics in the Prometheus text format, for `GET /metrics`.
 * Labels are bounded: a route label is one of the known API routes or
 * `other`, so a client cannot grow the series count with made-up paths.
 *
 * @module
 */

/** One gauge or counter family with its samples, rendered after the request metrics. */
export interface MetricFamily {
  /** Metric name, `spike_nexus_…`. */
  readonly name: string;
  /** One line of help text. */
  readonly help: string;
  /** Prometheus type. */
  readonly type: "gauge" | "counter";
  /** Samples; labels (bounded sets only) are optional. */
  readonly samples: readonly { readonly labels?: Readonly<Record<string, string>>; readonly value: number }[];
}

/** Histogram bucket bounds in seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Counts requests and their latency per route; renders Prometheus text. */
export class NexusMetrics {
  readonly #requests = new Map<string, number>();
  readonly #durations = new Map<string, Histogram>();
  readonly #startedAt: number;

  /** Creates an empty registry; `startedAt` is the process start (ms since epoch). */
  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  /** Records one finished request. */
  observe(route: string, status: number, seconds: number): void {
    const key = `${route}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let histogram = this.#durations.get(route);
    if (!histogram) {
      histogram = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#durations.set(route, histogram);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) histogram.counts[i]!++;
    histogram.sum += seconds;
    histogram.count++;
  }

  /**
   * Renders every metric; `ready` is whether the root key is loaded, and
   * `families` are state metrics the caller gathered (key version, tamper
   * counts, rotation progress).
   */
  render(ready: boolean, families: readonly MetricFamily[] = []): string {
    const out: string[] = [];
    out.push("# HELP spike_nexus_ready Whether the root key is loaded (1) or not (0).");
    out.push("# TYPE spike_nexus_ready gauge");
    out.push(`spike_nexus_ready ${ready ? 1 : 0}`);
    out.push("# HELP spike_nexus_start_time_seconds When this Nexus process started.");
    out.push("# TYPE spike_nexus_start_time_seconds gauge");
    out.push(`spike_nexus_start_time_seconds ${this.#startedAt / 1000}`);
    out.push("# HELP spike_nexus_requests_total API requests by route and HTTP status.");
    out.push("# TYPE spike_nexus_requests_total counter");
    for (const [key, value] of [...this.#requests].sort(([a], [b]) => a < b ? -1 : 1)) {
      const [route, status] = key.split("\u0000");
      out.push(`spike_nexus_requests_total{route="${route}",code="${status}"} ${value}`);
    }
    out.push("# HELP spike_nexus_request_duration_seconds API request latency by route.");
    out.push("# TYPE spike_nexus_request_duration_seconds histogram");
    for (const [route, h] of [...this.#durations].sort(([a], [b]) => a < b ? -1 : 1)) {
      BUCKETS.forEach((bound, i) => {
        out.push(`spike_nexus_request_duration_seconds_bucket{route="${route}",le="${bound}"} ${h.counts[i]}`);
      });
      out.push(`spike_nexus_request_duration_seconds_bucket{route="${route}",le="+Inf"} ${h.count}`);
      out.push(`spike_nexus_request_duration_seconds_sum{route="${route}"} ${h.sum}`);
      out.push(`spike_nexus_request_duration_seconds_count{route="${route}"} ${h.count}`);
    }
    for (const family of families) {
      out.push(`# HELP ${family.name} ${family.help}`);
      out.push(`# TYPE ${family.name} ${family.type}`);
      for (const sample of family.samples) {
        const labels = Object.entries(sample.labels ?? {}).map(([k, v]) => `${k}="${v}"`).join(",");
        out.push(`${family.name}${labels ? `{${labels}}` : ""} ${sample.value}`);
      }
    }
    return out.join("\n") + "\n";
  }
}
