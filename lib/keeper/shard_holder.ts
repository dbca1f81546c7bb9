/**
 * The shards a Keeper holds: in memory only, zeroed when replaced, retired
 * or cleared. One per root key version: normally one, two while Nexus
 * rotates the root key. A shard handed over without a key version (by
 * SPIKE's Nexus or Bootstrap, or a build before key versions) sits in the
 * unversioned slot; shards of different versions never share a slot, so
 * they can never be mixed up.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { zeroize } from "../crypto/zeroize.ts";

/** The slot of a shard given without a key version. */
export const UNVERSIONED = 0;

/** A shard and the key version it belongs to (`UNVERSIONED`: unknown). */
export interface HeldShard {
  /** A copy; the caller zeroes it. */
  readonly shard: Uint8Array;
  /** Its root key version, or `UNVERSIONED`. */
  readonly version: number;
}

/** Holds at most one 32-byte shard per root key version. */
export class ShardHolder {
  readonly #shards = new Map<number, Uint8Array>();

  /**
   * Stores a copy of `shard` as the shard of `version` (default: the
   * unversioned slot), zeroing the one held there before. Returns whether
   * the held value changed (Nexus re-sends the same shard on every push).
   */
  set(shard: Uint8Array, version = UNVERSIONED): boolean {
    if (!(shard instanceof Uint8Array) || shard.length !== 32) throw new RangeError("a shard is 32 bytes");
    if (!Number.isSafeInteger(version) || version < 0) throw new RangeError("a key version is a whole number ≥ 0");
    const before = this.#shards.get(version);
    const changed = before === undefined || !constantTimeEqual(before, shard);
    const copy = shard.slice();
    zeroize(before);
    this.#shards.set(version, copy);
    return changed;
  }

  /**
   * The shard of `version`, falling back to the unversioned one (which may
   * be of any version); without `version`, the unversioned shard, else the
   * highest version's. `undefined` when none fits.
   */
  find(version?: number): HeldShard | undefined {
    const pick = (v: number) => {
      const shard = this.#shards.get(v);
      return shard && { shard: shard.slice(), version: v };
    };
    if (version !== undefined) return pick(version) ?? pick(UNVERSIONED);
    const highest = Math.max(-1, ...this.#shards.keys());
    return pick(UNVERSIONED) ?? (highest > 0 ? pick(highest) : undefined);
  }

  /** A copy of the shard {@linkcode find} picks without a version (the caller zeroes it), or `undefined`. */
  get(): Uint8Array | undefined {
    return this.find()?.shard;
  }

  /** The key versions held, ascending (`UNVERSIONED` first when held). */
  versions(): number[] {
    return [...this.#shards.keys()].sort((a, b) => a - b);
  }

  /**
   * Zeroes and forgets every shard of a version below `version`, and the
   * unversioned one: Nexus retired those keys. Returns the versions dropped.
   */
  retireBelow(version: number): number[] {
    const dropped = [...this.#shards.keys()].filter((v) => v < version).sort((a, b) => a - b);
    for (const v of dropped) {
      zeroize(this.#shards.get(v));
      this.#shards.delete(v);
    }
    return dropped;
  }

  /** Whether any shard is held. */
  get held(): boolean {
    return this.#shards.size > 0;
  }

  /** Zeroes and forgets every shard. */
  clear(): void {
    for (const shard of this.#shards.values()) zeroize(shard);
    this.#shards.clear();
  }
}
