/**
 * Collects the shards operators send with `spike operator restore` until
 * the threshold is reached, then rebuilds the root key.
 *
 * @module
 */
import { combineShares, MAX_SHARES, type Share } from "../crypto/shamir.ts";
import { zeroize } from "../crypto/zeroize.ts";

/** What a restore call reports back. */
export interface RestoreProgress {
  /** Distinct shards held so far. */
  readonly collected: number;
  /** Shards still needed. */
  readonly remaining: number;
  /** Whether the key was rebuilt by this call (or earlier). */
  readonly restored: boolean;
}

/**
 * Holds submitted shards in memory only. A shard sent twice for the same
 * index replaces the earlier one (an operator correcting a typo).
 */
export class RestoreSession {
  readonly #threshold: number;
  readonly #held = new Map<number, Uint8Array>();

  /** Creates a session that rebuilds the key from `threshold` shards. */
  constructor(threshold: number) {
    this.#threshold = threshold;
  }

  /**
   * The largest valid shard index. Not the configured share count: a
   * share is f(i) of a polynomial fixed by the key alone, so a recovery file
   * from an earlier split with more shares (ours or SPIKE's) is just as good.
   */
  get maxIndex(): number {
    return MAX_SHARES;
  }

  /**
   * Adds shard `index` (copied). When the threshold is reached, returns the
   * rebuilt key (the caller owns and zeroes it) and forgets every shard.
   */
  add(index: number, value: Uint8Array): { progress: RestoreProgress; rootKey?: Uint8Array } {
    zeroize(this.#held.get(index));
    this.#held.set(index, value.slice());
    if (this.#held.size < this.#threshold) {
      return { progress: this.progress(false) };
    }
    const shares: Share[] = [...this.#held].map(([i, v]) => ({ index: i, value: v }));
    try {
      const rootKey = combineShares(shares.slice(0, this.#threshold));
      return { progress: { collected: this.#threshold, remaining: 0, restored: true }, rootKey };
    } finally {
      this.reset();
    }
  }

  /** Current progress without adding anything. */
  progress(restored: boolean): RestoreProgress {
    return {
      collected: this.#held.size,
      remaining: Math.max(0, this.#threshold - this.#held.size),
      restored,
    };
  }

  /** Zeroes and drops every held shard. */
  reset(): void {
    for (const value of this.#held.values()) zeroize(value);
    this.#held.clear();
  }
}
