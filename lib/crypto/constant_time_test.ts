import assert from "node:assert/strict";
import fc from "fast-check";
import { constantTimeEqual, isAllZero } from "./constant_time.ts";

Deno.test("constantTimeEqual is true exactly for equal arrays", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 64 }),
      (a, b) => {
        const same = a.length === b.length && a.every((x, i) => x === b[i]);
        assert.equal(constantTimeEqual(a, b), same);
        assert.equal(constantTimeEqual(a, new Uint8Array(a)), true);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("constantTimeEqual notices a difference at any position", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (a, at, delta) => {
        const b = new Uint8Array(a);
        const i = at % b.length;
        b[i] = (b[i]! + delta) & 0xff;
        assert.equal(constantTimeEqual(a, b), false);
        assert.equal(constantTimeEqual(b, a), false);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("constantTimeEqual edge cases", () => {
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(constantTimeEqual(new Uint8Array(1), new Uint8Array(0)), false);
  // A prefix is not equal.
  assert.equal(
    constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2])),
    false,
  );
  // Views are compared by content, not by buffer.
  const buf = new Uint8Array([7, 7, 1, 7, 7]);
  assert.equal(constantTimeEqual(buf.subarray(0, 2), buf.subarray(3, 5)), true);
});

Deno.test("isAllZero: true only when no byte is set, wherever the set byte sits", () => {
  assert.equal(isAllZero(new Uint8Array(0)), true);
  assert.equal(isAllZero(new Uint8Array(32)), true);
  for (const at of [0, 15, 31]) {
    const bytes = new Uint8Array(32);
    bytes[at] = 0x80;
    assert.equal(isAllZero(bytes), false, `byte ${at}`);
  }
});
