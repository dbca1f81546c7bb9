/**
 * What Nexus last saw of its Keepers, for `GET /ready` and `spike status`:
 * how many shards the latest recovery round gathered, and when shards were
 * last pushed and how many Keepers took them. Counts and times only — the
 * endpoint is unauthenticated, so nothing here may say more than that.
 *
 * @module
 */

/** The Keeper exchange as `GET /ready` shows it. */
export interface KeeperStatusView {
  /** Keepers in `SPIKE_NEXUS_KEEPER_PEERS`. */
  readonly configured: number;
  /** Shards needed to rebuild the root key. */
  readonly threshold: number;
  /** Valid shards the latest recovery round gathered; `null` before the first round ends. */
  readonly shardsFound: number | null;
  /** The latest shard push: when it ended and how many Keepers accepted; `null` before the first. */
  readonly lastPush: { readonly at: string; readonly accepted: number } | null;
}

/** How one shard push to one Keeper ended. */
export type KeeperPushResult = "ok" | "refused" | "unreachable";

/** What Nexus knows of one Keeper, for `/metrics` (position i is share index i+1). */
export interface KeeperState {
  /** Whether the latest call to it got an HTTP answer; `null` before the first call ends. */
  readonly reachable: boolean | null;
  /** When it last accepted a pushed shard (ms since the epoch); `null` before. */
  readonly lastPushOkAt: number | null;
  /** Pushes to it so far, by result. */
  readonly pushes: Readonly<Record<KeeperPushResult, number>>;
}

interface MutableKeeperState {
  reachable: boolean | null;
  lastPushOkAt: number | null;
  pushes: Record<KeeperPushResult, number>;
}

/** Mutable record the Keeper exchange writes and `/ready` and `/metrics` read. */
export class KeeperStatus {
  readonly #configured: number;
  readonly #threshold: number;
  readonly #clock: () => Date;
  readonly #keepers: MutableKeeperState[];
  #shardsFound: number | null = null;
  #lastPush: { at: string; accepted: number } | null = null;

  /** Creates the record for `configured` Keepers and a `threshold`. */
  constructor(configured: number, threshold: number, clock: () => Date = () => new Date()) {
    this.#configured = configured;
    this.#threshold = threshold;
    this.#clock = clock;
    this.#keepers = Array.from({ length: configured }, () => ({
      reachable: null,
      lastPushOkAt: null,
      pushes: { ok: 0, refused: 0, unreachable: 0 },
    }));
  }

  /** Notes whether a call to the Keeper at `position` (0-based) got an HTTP answer. */
  recordContact(position: number, reachable: boolean): void {
    const keeper = this.#keepers[position];
    if (keeper) keeper.reachable = reachable;
  }

  /** Notes how the push to the Keeper at `position` (0-based) ended. */
  recordKeeperPush(position: number, result: KeeperPushResult): void {
    const keeper = this.#keepers[position];
    if (!keeper) return;
    keeper.pushes[result]++;
    keeper.reachable = result !== "unreachable";
    if (result === "ok") keeper.lastPushOkAt = this.#clock().getTime();
  }

  /** Every Keeper's state, in share order. */
  keepers(): readonly KeeperState[] {
    return this.#keepers.map((k) => ({ ...k, pushes: { ...k.pushes } }));
  }

  /** Notes how many valid shards a recovery round gathered. */
  recordRound(shardsFound: number): void {
    this.#shardsFound = shardsFound;
  }

  /** Notes a finished push and how many Keepers accepted their shard. */
  recordPush(accepted: number): void {
    this.#lastPush = { at: this.#clock().toISOString(), accepted };
  }

  /** A snapshot for the endpoint. */
  view(): KeeperStatusView {
    return {
      configured: this.#configured,
      threshold: this.#threshold,
      shardsFound: this.#shardsFound,
      lastPush: this.#lastPush && { ...this.#lastPush },
    };
  }
}
