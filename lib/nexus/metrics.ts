/**
 * Nexus's metrics, for `GET /metrics` (Prometheus text): requests by route
 * and status with their latency, requests in flight, stored secrets and
 * policies, the root key's state, each Keeper's reachability and last
 * accepted push, store call latency and failures, audit write failures,
 * rate-limit refusals, root key versions and rotation progress, tampered
 * policy rows, and (in a server) the process and runtime metrics.
 *
 * Labels are bounded: a route label is one of the known API routes or
 * `other`, a Keeper label is its position in `SPIKE_NEXUS_KEEPER_PEERS`, a
 * store label is the operation's name. No secret path, SPIFFE ID, key or
 * value is ever a label or a value.
 *
 * To add a metric: one `registry.add(...)` line in the constructor (a
 * `Gauge` reads its value from state kept elsewhere when scraped).
 *
 * @module
 */
import { Counter, type CounterSeries, Gauge, Histogram, type HistogramSeries, ReadCounter } from "../metrics/metric.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import type { StoreOperation } from "../store/measured_store.ts";
import type { KeyState, StoreCounts } from "../store/types.ts";
import { SPIKE_VERSION } from "../version.ts";
import type { KeeperStatus } from "./keeper_status.ts";

/** Request latency bucket bounds in seconds. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Store call bucket bounds in seconds (SQLite reads take tens of microseconds). */
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** How long a store count is reused: a scrape storm must not become a query storm. */
const DEFAULT_COUNTS_MAX_AGE_MS = 15_000;

/** The rotation phases as the gauge's values. */
const PHASE_VALUE = { idle: 0, preparing: 1, sealing: 2 } as const;

/** Longest a scrape waits for a fresh count before it shows the last one. */
const COUNTS_WAIT_MS = 2_000;

/** Where Nexus's metrics read the state they show. */
export interface NexusMetricsSources {
  /** Process start, in ms since the epoch. */
  readonly startedAt: number;
  /** The root key state: loaded or not, when a key was installed, which versions are held. */
  readonly keys: {
    readonly ready: boolean;
    /** The version new data is sealed under (read only when `ready`). */
    readonly writeVersion: number;
    heldVersions(): number[];
    onInstall(listener: () => void): () => void;
  };
  /** The store's key state: rotation phase and progress (absent in lite mode). */
  readonly keyState?: () => Promise<KeyState>;
  /** Records this Nexus re-sealed in the rotation it drives or drove last; `undefined` without a coordinator. */
  readonly resealedHere?: () => number | undefined;
  /** Stored policy rows failing authentication: distinct ones since start, and in the current generation. */
  readonly tampered?: { readonly total: () => number; readonly now: () => number | undefined };
  /** What the Keeper exchange saw (absent without Keepers). */
  readonly keeperStatus?: KeeperStatus;
  /** How often shards are pushed to the Keepers, in ms (absent without Keepers). */
  readonly keeperPushIntervalMs?: number;
  /** Counts the store (absent in lite mode). */
  readonly counts?: () => Promise<StoreCounts>;
  /** How long a count is reused, in ms (default 15 s). */
  readonly countsMaxAgeMs?: number;
  /** Wall clock in ms (default `Date.now`). */
  readonly now?: () => number;
  /** Add process and runtime metrics (the server does; default false). */
  readonly processMetrics?: boolean;
}

/** Counts requests and everything else Nexus shows on `/metrics`. */
export class NexusMetrics {
  readonly #registry: MetricsRegistry;
  readonly #requests: Counter;
  readonly #requestSeries = new Map<string, CounterSeries>();
  readonly #durations: Histogram;
  readonly #durationSeries = new Map<string, HistogramSeries>();
  readonly #storeDurations: Histogram;
  readonly #storeDurationSeries = new Map<string, HistogramSeries>();
  readonly #storeErrors: Counter;
  readonly #auditFailures: CounterSeries;
  readonly #rateLimited: CounterSeries;
  readonly #unsubscribe: () => void;
  readonly #now: () => number;
  #inFlight = 0;
  #keyInstalledAt = 0;
  #counts: { value: StoreCounts; at: number } | undefined;
  #counting: Promise<void> | undefined;

  /** Creates the metrics over `sources`. */
  constructor(sources: NexusMetricsSources) {
    const now = this.#now = sources.now ?? Date.now;
    const registry = this.#registry = new MetricsRegistry({ processMetrics: sources.processMetrics });
    this.#unsubscribe = sources.keys.onInstall(() => this.#keyInstalledAt = now());

    registry.add(
      new Gauge(
        "spike_nexus_ready",
        "Whether the root key is loaded (1) or not (0).",
        () => sources.keys.ready ? 1 : 0,
      ),
    );
    registry.add(
      new Gauge("spike_nexus_start_time_seconds", "When this Nexus process started.", () => sources.startedAt / 1000),
    );
    registry.add(
      new Gauge("spike_nexus_build_info", "Always 1; the version is the label.", () => [[[SPIKE_VERSION], 1]], [
        "version",
      ]),
    );
    this.#requests = registry.add(
      new Counter("spike_nexus_requests_total", "API requests by route and HTTP status.", ["route", "code"]),
    );
    this.#durations = registry.add(
      new Histogram("spike_nexus_request_duration_seconds", "API request latency by route.", REQUEST_BUCKETS, [
        "route",
      ]),
    );
    registry.add(
      new Gauge("spike_nexus_requests_in_flight", "Requests being served now.", () => this.#inFlight),
    );
    this.#rateLimited = registry.add(
      new Counter("spike_nexus_rate_limited_total", "Requests refused with 429 by the per-caller rate limit."),
    ).series();
    this.#auditFailures = registry.add(
      new Counter("spike_nexus_audit_write_failures_total", "Audit records that could not be written."),
    ).series();
    registry.add(
      new Gauge(
        "spike_nexus_root_key_state",
        "The root key's state: 1 for the current state, 0 for the others.",
        () => [[["loaded"], sources.keys.ready ? 1 : 0], [["missing"], sources.keys.ready ? 0 : 1]],
        ["state"],
      ),
    );
    registry.add(
      new Gauge(
        "spike_nexus_root_key_installed_timestamp_seconds",
        "When this process installed its current root key (0: none yet).",
        () => sources.keys.ready ? this.#keyInstalledAt / 1000 : 0,
      ),
    );
    this.#storeDurations = registry.add(
      new Histogram(
        "spike_nexus_store_operation_duration_seconds",
        "Backend store call latency by operation.",
        STORE_BUCKETS,
        ["operation"],
      ),
    );
    this.#storeErrors = registry.add(
      new Counter("spike_nexus_store_errors_total", "Backend store calls that failed, by operation.", ["operation"]),
    );

    this.#addKeyMetrics(sources);

    const counts = sources.counts;
    if (counts) {
      const maxAge = sources.countsMaxAgeMs ?? DEFAULT_COUNTS_MAX_AGE_MS;
      const read = (pick: (c: StoreCounts) => number) => async () => {
        const value = await this.#freshCounts(counts, maxAge);
        return value === undefined ? [] : [[[], pick(value)] as const];
      };
      registry.add(
        new Gauge("spike_nexus_secrets", "Secret paths stored (cached up to 15 s).", read((c) => c.secrets)),
      );
      registry.add(new Gauge("spike_nexus_policies", "Policies stored (cached up to 15 s).", read((c) => c.policies)));
    }

    const keepers = sources.keeperStatus;
    if (keepers) {
      const perKeeper = (pick: (k: ReturnType<KeeperStatus["keepers"]>[number]) => number) => () =>
        keepers.keepers().map((k, i) => [[`keeper-${i + 1}`], pick(k)] as const);
      registry.add(
        new Gauge(
          "spike_nexus_keeper_up",
          "Whether the latest call to the Keeper got an answer (1) or not (0); absent before the first.",
          () =>
            keepers.keepers().flatMap((k, i) =>
              k.reachable === null ? [] : [[[`keeper-${i + 1}`], k.reachable ? 1 : 0] as const]
            ),
          ["keeper"],
        ),
      );
      registry.add(
        new Gauge(
          "spike_nexus_keeper_last_push_success_timestamp_seconds",
          "When the Keeper last accepted its shard from this Nexus (0: never).",
          perKeeper((k) => (k.lastPushOkAt ?? 0) / 1000),
          ["keeper"],
        ),
      );
      registry.add(
        new ReadCounter(
          "spike_nexus_keeper_pushes_total",
          "Shard pushes to the Keeper by result (ok, refused, unreachable).",
          () =>
            keepers.keepers().flatMap((k, i) =>
              (["ok", "refused", "unreachable"] as const).map((result) =>
                [[`keeper-${i + 1}`, result], k.pushes[result]] as const
              )
            ),
          ["keeper", "result"],
        ),
      );
      registry.add(
        new Gauge(
          "spike_nexus_keeper_push_interval_seconds",
          "How often this Nexus pushes every Keeper its shard.",
          () => (sources.keeperPushIntervalMs ?? 0) / 1000,
        ),
      );
      registry.add(
        new Gauge(
          "spike_nexus_keeper_shards_found",
          "Valid shards the latest recovery round gathered (absent before the first round ends).",
          () => {
            const found = keepers.view().shardsFound;
            return found === null ? [] : [[[], found] as const];
          },
        ),
      );
    }
  }

  /** Records one finished request under `route` (a known route, an operational path or `other`). */
  observe(route: string, status: number, seconds: number): void {
    const key = `${route}\u0000${status}`;
    let requests = this.#requestSeries.get(key);
    if (!requests) this.#requestSeries.set(key, requests = this.#requests.series(route, status));
    requests.inc();
    let duration = this.#durationSeries.get(route);
    if (!duration) this.#durationSeries.set(route, duration = this.#durations.series(route));
    duration.observe(seconds);
  }

  /** Root key versions, the rotation and tampered policy rows [ours]. */
  #addKeyMetrics(sources: NexusMetricsSources): void {
    const registry = this.#registry;
    const { keys, keyState, resealedHere, tampered } = sources;
    registry.add(
      new Gauge(
        "spike_nexus_root_key_version",
        "The root key version this Nexus seals new data under (0: no key held).",
        () => keys.ready ? keys.writeVersion : 0,
      ),
    );
    registry.add(
      new Gauge(
        "spike_nexus_root_key_versions_held",
        "Root key versions held in memory (2 while a rotation runs).",
        () => keys.heldVersions().length,
      ),
    );
    if (keyState) {
      // A one-row read, shared by both gauges of a scrape (the registry reads its
      // metrics together); a store that does not answer leaves them out of this scrape.
      let reading: Promise<KeyState | undefined> | undefined;
      const state = () =>
        reading ??= keyState().catch(() => undefined).finally(() => {
          reading = undefined;
        });
      registry.add(
        new Gauge(
          "spike_nexus_rotation_phase",
          "Root key rotation phase in the store: 0 idle, 1 preparing, 2 sealing.",
          async () => {
            const found = await state();
            return found ? PHASE_VALUE[found.phase] : [];
          },
        ),
      );
      registry.add(
        new Gauge(
          "spike_nexus_rotation_records_to_reseal",
          "Records under the old root key version when the running rotation began sealing (0 when idle).",
          async () => {
            const found = await state();
            return found ? found.toReseal : [];
          },
        ),
      );
    }
    if (resealedHere) {
      registry.add(
        new Gauge(
          "spike_nexus_rotation_records_resealed",
          "Records this Nexus re-sealed in the rotation it drives or drove last.",
          () => {
            const count = resealedHere();
            return count === undefined ? [] : count;
          },
        ),
      );
    }
    if (tampered) {
      registry.add(
        new ReadCounter(
          "spike_nexus_policy_tampered_total",
          "Distinct stored policy rows found failing authentication (or plain text) since start.",
          () => tampered.total(),
        ),
      );
      registry.add(
        new Gauge(
          "spike_nexus_policies_tampered",
          "Stored policy rows failing authentication in the current policy generation (treated as absent).",
          () => {
            const count = tampered.now();
            return count === undefined ? [] : count;
          },
        ),
      );
    }
  }

  /** A request started (pair with `requestEnded`). */
  requestStarted(): void {
    this.#inFlight++;
  }

  /** A request ended. */
  requestEnded(): void {
    this.#inFlight--;
  }

  /** A request was refused by the rate limit. */
  rateLimited(): void {
    this.#rateLimited.inc();
  }

  /** `records` audit records could not be stored (in the file or the table). */
  auditWriteFailed(records = 1): void {
    this.#auditFailures.inc(records);
  }

  /** A store call finished (the `measureStore` observer). */
  storeOperation(operation: StoreOperation, seconds: number, ok: boolean): void {
    let series = this.#storeDurationSeries.get(operation);
    if (!series) this.#storeDurationSeries.set(operation, series = this.#storeDurations.series(operation));
    series.observe(seconds);
    if (!ok) this.#storeErrors.inc(operation);
  }

  /** Every metric as Prometheus text. */
  render(): Promise<string> {
    return this.#registry.render();
  }

  /** Stops what runs in the background (GC profiling) and the key-install listener. */
  close(): void {
    this.#unsubscribe();
    this.#registry.close();
  }

  /** The cached counts, refreshed when older than `maxAge` (waiting at most 2 s for it). */
  async #freshCounts(counts: () => Promise<StoreCounts>, maxAge: number): Promise<StoreCounts | undefined> {
    const cached = this.#counts;
    if (cached && this.#now() - cached.at < maxAge) return cached.value;
    // One query at a time, however many scrapes arrive; a failure keeps the last value.
    this.#counting ??= counts().then(
      (value) => void (this.#counts = { value, at: this.#now() }),
      () => {},
    ).finally(() => this.#counting = undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#counting,
      new Promise((resolve) => timer = setTimeout(resolve, COUNTS_WAIT_MS)),
    ]);
    clearTimeout(timer);
    return this.#counts?.value;
  }
}
