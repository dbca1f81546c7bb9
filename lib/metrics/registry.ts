/**
 * A process's metrics in the Prometheus text format. `prom-client` renders
 * them and supplies the process and runtime metrics (CPU, resident memory,
 * open file descriptors, event-loop lag, heap), which it reads correctly
 * under Deno; GC time comes from `gc_metric.ts` because its own GC collector
 * gets no events there.
 *
 * `prom-client` is CommonJS and takes 50 ms (quiet machine) to several
 * hundred (busy one) to load, so it is imported at the first scrape rather
 * than at start: a Nexus or Keeper serves sooner, and one nobody scrapes
 * never loads it. The metrics updated
 * per request are this module's own (`metric.ts`), not `prom-client`'s,
 * whose label handling costs about ten times as much per request
 * (`bench/metrics_bench.ts`).
 *
 * @module
 */
import type { Metric, Registry } from "prom-client";
import { GcDurationMetric } from "./gc_metric.ts";
import type { ExposedMetric } from "./metric.ts";

/** The content type of `render()`'s text. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** `prom-client`'s gauges with a `_total` suffix. */
const TOTAL_GAUGES = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/** Options of a {@linkcode MetricsRegistry}. */
export interface MetricsRegistryOptions {
  /** Add the process and runtime metrics (default false: tests of an app alone leave them out). */
  readonly processMetrics?: boolean;
}

/** The metrics of one process; add metrics with `add`, serve `render()`. */
export class MetricsRegistry {
  readonly #metrics: ExposedMetric[] = [];
  readonly #gc: GcDurationMetric | undefined;
  readonly #processMetrics: boolean;
  #registry: Promise<Registry> | undefined;

  /** Creates an empty registry (GC profiling starts now when process metrics are on). */
  constructor(options: MetricsRegistryOptions = {}) {
    this.#processMetrics = options.processMetrics ?? false;
    this.#gc = this.#processMetrics ? new GcDurationMetric() : undefined;
  }

  /** Adds `metric` and returns it; names must be unique. */
  add<T extends ExposedMetric>(metric: T): T {
    if (this.#metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} added twice`);
    this.#metrics.push(metric);
    void this.#registry?.then((registry) => registry.registerMetric(metric as unknown as Metric));
    return metric;
  }

  /** Every metric as Prometheus text. */
  async render(): Promise<string> {
    this.#registry ??= this.#load();
    return await (await this.#registry).metrics();
  }

  /** Stops the GC profiler (the rest needs no cleanup). */
  close(): void {
    this.#gc?.close();
  }

  async #load(): Promise<Registry> {
    const prom = await import("prom-client");
    const registry = new prom.Registry();
    if (this.#processMetrics) {
      prom.collectDefaultMetrics({ register: registry });
      registry.removeSingleMetric("nodejs_gc_duration_seconds");
      // Gauges named like counters, which `promtool check metrics` rejects; the same
      // numbers stay in nodejs_active_{handles,requests,resources} by type.
      for (const name of TOTAL_GAUGES) registry.removeSingleMetric(name);
      registry.registerMetric(this.#gc as unknown as Metric);
    }
    for (const metric of this.#metrics) registry.registerMetric(metric as unknown as Metric);
    return registry;
  }
}
