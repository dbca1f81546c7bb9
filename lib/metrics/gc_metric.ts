/**
 * Garbage collection time, as `nodejs_gc_duration_seconds{kind}` (the name
 * and kinds `prom-client` uses on Node). `prom-client` measures GC with a
 * `PerformanceObserver` for `gc` entries, which Deno 2.9 lists as supported
 * but never delivers, so its histogram stays empty there. `node:v8`'s
 * `GCProfiler` does work under Deno: it is stopped and restarted to collect
 * what it saw, at every scrape and every 10 s in between (so its buffer of
 * GC events stays small when nobody scrapes).
 *
 * @module
 */
import { GCProfiler } from "node:v8";
import { type ExposedMetric, Histogram } from "./metric.ts";

/** GC type names as V8 reports them → `prom-client`'s kind labels. */
const KINDS: Readonly<Record<string, string>> = {
  Scavenge: "minor",
  MinorMarkSweep: "minor",
  MinorMarkCompact: "minor",
  MarkSweepCompact: "major",
  IncrementalMarking: "incremental",
  ProcessWeakCallbacks: "weakcb",
};

/** `prom-client`'s GC buckets, in seconds. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];

/**
 * Deno's `GCProfiler` reports a GC's cost in nanoseconds (Node documents
 * microseconds): the sum over a second of allocation is hundreds of
 * millions, which only nanoseconds make possible. `gc_metric_test.ts`
 * checks that the total stays below the elapsed time.
 */
const COST_UNITS_PER_SECOND = 1e9;

const FOLD_INTERVAL_MS = 10_000;

interface GcStatistics {
  readonly statistics: ReadonlyArray<{ readonly gcType: string; readonly cost: number }>;
}

/** The GC duration histogram, fed by a running `GCProfiler`. */
export class GcDurationMetric implements ExposedMetric {
  readonly name = "nodejs_gc_duration_seconds";
  readonly help = "Garbage collection duration by kind, one of major, minor, incremental or weakcb.";
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  readonly #histogram = new Histogram(this.name, this.help, GC_BUCKETS, ["kind"]);
  #profiler: GCProfiler | undefined = new GCProfiler();
  readonly #timer: ReturnType<typeof setInterval>;

  /** Starts profiling at once. */
  constructor() {
    this.#profiler!.start();
    this.#timer = setInterval(() => this.#fold(), FOLD_INTERVAL_MS);
    // Never the reason a process stays up.
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  #fold(): void {
    const profiler = this.#profiler;
    if (!profiler) return;
    const result = profiler.stop() as unknown as GcStatistics | undefined;
    profiler.start();
    for (const { gcType, cost } of result?.statistics ?? []) {
      this.#histogram.series(KINDS[gcType] ?? "other").observe(cost / COST_UNITS_PER_SECOND);
    }
  }

  /** Samples for the registry (what the profiler saw so far included). */
  get(): ReturnType<ExposedMetric["get"]> {
    this.#fold();
    return this.#histogram.get();
  }

  /** Stops profiling. */
  close(): void {
    clearInterval(this.#timer);
    this.#profiler?.stop();
    this.#profiler = undefined;
  }
}
