import assert from "node:assert/strict";
import { withZeroized, zeroize } from "./zeroize.ts";

const filled = (n: number) => new Uint8Array(n).fill(0xaa);
const isZero = (b: Uint8Array) => b.every((x) => x === 0);

Deno.test("zeroize wipes every buffer and skips undefined", () => {
  const a = filled(32);
  const b = filled(5);
  zeroize(a, undefined, b);
  assert.ok(isZero(a) && isZero(b));
  zeroize(); // nothing to do
});

Deno.test("zeroize of a view wipes only that view", () => {
  const whole = filled(8);
  zeroize(whole.subarray(2, 4));
  assert.deepEqual([...whole], [0xaa, 0xaa, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa]);
});

Deno.test("withZeroized returns the result and wipes after", () => {
  const key = filled(16);
  const sum = withZeroized(key, (k) => k.reduce((s, x) => s + x, 0));
  assert.equal(sum, 16 * 0xaa);
  assert.ok(isZero(key));
});

Deno.test("withZeroized wipes when the function throws", () => {
  const key = filled(16);
  assert.throws(
    () =>
      withZeroized(key, () => {
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.ok(isZero(key));
});

Deno.test("withZeroized waits for a promise before wiping", async () => {
  const key = filled(16);
  const { promise, resolve } = Promise.withResolvers<void>();
  const result = withZeroized(key, async (k) => {
    await promise;
    return k[0];
  });
  assert.equal(key[0], 0xaa); // still in use
  resolve();
  assert.equal(await result, 0xaa);
  assert.ok(isZero(key));

  const other = filled(4);
  await assert.rejects(
    withZeroized(other, () => Promise.reject(new Error("late"))),
    /late/,
  );
  assert.ok(isZero(other));
});
