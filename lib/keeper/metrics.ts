/**
 * Keeper metrics in the Prometheus text format, for `GET /metrics`: whether
 * a shard is held, when one was last received, and requests by path and
 * status. The path label is one of the Keeper's own paths or `other`, so a
 * client cannot grow the series count with made-up paths. No shard byte is
 * ever part of a metric.
 *
 * @module
 */
import { PATHS } from "../api/paths.ts";

/** The paths that become labels; anything else counts as `other`. */
const KNOWN_PATHS: ReadonlySet<string> = new Set([
  "/health",
  "/ready",
  "/metrics",
  PATHS.keeperContribute,
  PATHS.keeperShard,
]);

/** Counts Keeper requests and shard hand-overs; renders Prometheus text. */
export class KeeperMetrics {
  readonly #requests = new Map<string, number>();
  readonly #startedAt: number;
  #lastShardReceivedAt = 0;

  /** Creates an empty registry; `startedAt` is the process start (ms since epoch). */
  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  /** Records one finished request. */
  observe(path: string, status: number): void {
    const key = `${KNOWN_PATHS.has(path) ? path : "other"}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Notes that a shard was received (pushed by Nexus or handed over by Bootstrap) at `at` (ms since epoch). */
  shardReceived(at: number): void {
    this.#lastShardReceivedAt = at;
  }

  /** Renders every metric; `shardHeld` is whether the Keeper holds a shard now. */
  render(shardHeld: boolean): string {
    const out: string[] = [];
    out.push("# HELP spike_keeper_shard_held Whether this Keeper holds a shard (1) or not (0).");
    out.push("# TYPE spike_keeper_shard_held gauge");
    out.push(`spike_keeper_shard_held ${shardHeld ? 1 : 0}`);
    out.push(
      "# HELP spike_keeper_last_shard_received_timestamp_seconds When a shard was last received (0: never).",
    );
    out.push("# TYPE spike_keeper_last_shard_received_timestamp_seconds gauge");
    out.push(`spike_keeper_last_shard_received_timestamp_seconds ${this.#lastShardReceivedAt / 1000}`);
    out.push("# HELP spike_keeper_start_time_seconds When this Keeper process started.");
    out.push("# TYPE spike_keeper_start_time_seconds gauge");
    out.push(`spike_keeper_start_time_seconds ${this.#startedAt / 1000}`);
    out.push("# HELP spike_keeper_requests_total Requests by path and HTTP status.");
    out.push("# TYPE spike_keeper_requests_total counter");
    for (const [key, value] of [...this.#requests].sort(([a], [b]) => a < b ? -1 : 1)) {
      const [path, status] = key.split("\u0000");
      out.push(`spike_keeper_requests_total{path="${path}",code="${status}"} ${value}`);
    }
    return out.join("\n") + "\n";
  }
}
