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

/** Mutable record the Keeper exchange writes and `/ready` reads. */
export class KeeperStatus {
  readonly #configured: number;
  readonly #threshold: number;
  readonly #clock: () => Date;
  #shardsFound: number | null = null;
  #lastPush: { at: string; accepted: number } | null = null;

  /** Creates the record for `configured` Keepers and a `threshold`. */
  constructor(configured: number, threshold: number, clock: () => Date = () => new Date()) {
    this.#configured = configured;
    this.#threshold = threshold;
    this.#clock = clock;
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
