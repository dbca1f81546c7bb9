/**
 * Keeper metrics in the Prometheus text format, for `GET /metrics`: whether
 * a shard is held, when one was last received, and requests by path and
 * status, plus (in a server) the process and runtime metrics. The path label
 * is one of the Keeper's own paths or `other`, so a client cannot grow the
 * series count with made-up paths. No shard byte is ever part of a metric.
 *
 * @module
 */
import { PATHS } from "../api/paths.ts";
import { Counter, type CounterSeries, Gauge } from "../metrics/metric.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import { SPIKE_VERSION } from "../version.ts";

/** The paths that become labels; anything else counts as `other`. */
const KNOWN_PATHS: ReadonlySet<string> = new Set([
  "/health",
  "/ready",
  "/metrics",
  PATHS.keeperContribute,
  PATHS.keeperShard,
]);

/** Where the Keeper's metrics read their state. */
export interface KeeperMetricsSources {
  /** Process start, in ms since the epoch. */
  readonly startedAt: number;
  /** Whether a shard is held now. */
  readonly shardHeld: () => boolean;
  /** Add process and runtime metrics (the server does; default false). */
  readonly processMetrics?: boolean;
}

/** Counts Keeper requests and shard hand-overs; renders Prometheus text. */
export class KeeperMetrics {
  readonly #registry: MetricsRegistry;
  readonly #requests: Counter;
  readonly #requestSeries = new Map<string, CounterSeries>();
  #lastShardReceivedAt = 0;

  /** Creates the metrics over `sources`. */
  constructor(sources: KeeperMetricsSources) {
    const registry = this.#registry = new MetricsRegistry({ processMetrics: sources.processMetrics });
    registry.add(
      new Gauge(
        "spike_keeper_shard_held",
        "Whether this Keeper holds a shard (1) or not (0).",
        () => sources.shardHeld() ? 1 : 0,
      ),
    );
    registry.add(
      new Gauge(
        "spike_keeper_last_shard_received_timestamp_seconds",
        "When a shard was last received (0: never).",
        () => this.#lastShardReceivedAt / 1000,
      ),
    );
    registry.add(
      new Gauge("spike_keeper_start_time_seconds", "When this Keeper process started.", () => sources.startedAt / 1000),
    );
    registry.add(
      new Gauge("spike_keeper_build_info", "Always 1; the version is the label.", () => [[[SPIKE_VERSION], 1]], [
        "version",
      ]),
    );
    this.#requests = registry.add(
      new Counter("spike_keeper_requests_total", "Requests by path and HTTP status.", ["path", "code"]),
    );
  }

  /** Records one finished request. */
  observe(path: string, status: number): void {
    const label = KNOWN_PATHS.has(path) ? path : "other";
    const key = `${label}\u0000${status}`;
    let series = this.#requestSeries.get(key);
    if (!series) this.#requestSeries.set(key, series = this.#requests.series(label, status));
    series.inc();
  }

  /** Notes that a shard was received (pushed by Nexus or handed over by Bootstrap) at `at` (ms since epoch). */
  shardReceived(at: number): void {
    this.#lastShardReceivedAt = at;
  }

  /** Renders every metric. */
  render(): Promise<string> {
    return this.#registry.render();
  }

  /** Stops what runs in the background (GC profiling). */
  close(): void {
    this.#registry.close();
  }
}
