/**
 * The one shard a Keeper holds: in memory only, zeroed when replaced or
 * cleared.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { zeroize } from "../crypto/zeroize.ts";

/** Holds at most one 32-byte shard. */
export class ShardHolder {
  #shard: Uint8Array | undefined;

  /**
   * Stores a copy of `shard`, zeroing the previous one. Returns whether the
   * held value changed (Nexus re-sends the same shard on every push).
   */
  set(shard: Uint8Array): boolean {
    if (!(shard instanceof Uint8Array) || shard.length !== 32) throw new RangeError("a shard is 32 bytes");
    const changed = this.#shard === undefined || !constantTimeEqual(this.#shard, shard);
    const copy = shard.slice();
    zeroize(this.#shard);
    this.#shard = copy;
    return changed;
  }

  /** A copy of the shard (the caller zeroes it), or `undefined`. */
  get(): Uint8Array | undefined {
    return this.#shard?.slice();
  }

  /** Whether a shard is held. */
  get held(): boolean {
    return this.#shard !== undefined;
  }

  /** Zeroes and forgets the shard. */
  clear(): void {
    zeroize(this.#shard);
    this.#shard = undefined;
  }
}
