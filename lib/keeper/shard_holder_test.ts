import assert from "node:assert/strict";
import { ShardHolder } from "./shard_holder.ts";

const shardOf = (fill: number) => new Uint8Array(32).fill(fill);

/**
 * Runs `use` while recording every buffer `Uint8Array.prototype.slice`
 * makes, so a test can see the holder's private copy and check it is wiped.
 */
function withSliceSpy(use: (copies: Uint8Array[]) => void): void {
  const original = Uint8Array.prototype.slice;
  const copies: Uint8Array[] = [];
  Uint8Array.prototype.slice = function (this: Uint8Array, ...args: [number?, number?]) {
    const copy = original.apply(this, args);
    copies.push(copy);
    return copy;
  } as typeof original;
  try {
    use(copies);
  } finally {
    Uint8Array.prototype.slice = original;
  }
}

Deno.test("a new holder holds nothing", () => {
  const holder = new ShardHolder();
  assert.equal(holder.held, false);
  assert.equal(holder.get(), undefined);
});

Deno.test("set keeps a copy: later changes to the caller's buffer do not reach it", () => {
  const holder = new ShardHolder();
  const shard = shardOf(7);
  holder.set(shard);
  shard.fill(0);
  assert.equal(holder.held, true);
  assert.deepEqual(holder.get(), shardOf(7));
});

Deno.test("get returns a fresh copy each time; zeroing it leaves the held shard intact", () => {
  const holder = new ShardHolder();
  holder.set(shardOf(9));
  const first = holder.get()!;
  first.fill(0);
  const second = holder.get()!;
  assert.notEqual(first, second);
  assert.deepEqual(second, shardOf(9));
});

Deno.test("set reports whether the held value changed", () => {
  const holder = new ShardHolder();
  assert.equal(holder.set(shardOf(1)), true);
  assert.equal(holder.set(shardOf(1)), false);
  assert.equal(holder.set(shardOf(2)), true);
  assert.deepEqual(holder.get(), shardOf(2));
});

Deno.test("replacing a shard zeroes the previous copy", () => {
  withSliceSpy((copies) => {
    const holder = new ShardHolder();
    holder.set(shardOf(5));
    const held = copies.at(-1)!;
    assert.deepEqual(held, shardOf(5));
    holder.set(shardOf(6));
    assert.deepEqual(held, new Uint8Array(32));
  });
});

Deno.test("clear zeroes the shard and forgets it", () => {
  withSliceSpy((copies) => {
    const holder = new ShardHolder();
    holder.set(shardOf(3));
    const held = copies.at(-1)!;
    holder.clear();
    assert.deepEqual(held, new Uint8Array(32));
    assert.equal(holder.held, false);
    assert.equal(holder.get(), undefined);
    holder.clear(); // twice is fine
  });
});

Deno.test("anything but 32 bytes is refused and the held shard stays", () => {
  const holder = new ShardHolder();
  holder.set(shardOf(4));
  for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0)]) {
    assert.throws(() => holder.set(bad), RangeError);
  }
  assert.throws(() => holder.set([1, 2, 3] as unknown as Uint8Array), RangeError);
  assert.deepEqual(holder.get(), shardOf(4));
});

Deno.test("shards of different key versions are held apart; retiring zeroes the lower ones", () => {
  const holder = new ShardHolder();
  withSliceSpy((copies) => {
    holder.set(shardOf(1), 1);
    holder.set(shardOf(2), 2);
    holder.set(shardOf(9));
    assert.deepEqual(holder.versions(), [0, 1, 2]);
    assert.deepEqual(holder.find(1)?.shard, shardOf(1));
    assert.equal(holder.find(2)?.version, 2);
    assert.deepEqual(holder.find(3), { shard: shardOf(9), version: 0 }, "falls back to the unversioned shard");
    assert.deepEqual(holder.retireBelow(2), [0, 1]);
    assert.deepEqual(holder.versions(), [2]);
    assert.ok(copies[0]!.every((b) => b === 0), "the version-1 copy is zeroed");
    assert.equal(holder.find(1), undefined);
    assert.deepEqual(holder.get(), shardOf(2), "without a version: the highest");
  });
  assert.throws(() => holder.set(shardOf(1), -1), RangeError);
});
