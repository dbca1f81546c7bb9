import assert from "node:assert/strict";
import fc from "fast-check";
import { compareByteOrder } from "./byte_order.ts";

Deno.test("compareByteOrder orders by UTF-8 bytes, not UTF-16 code units", () => {
  assert.ok(compareByteOrder("\uFF5E", "\u{1F600}") < 0);
  assert.ok("\uFF5E" > "\u{1F600}", "JavaScript's own order differs here");
  assert.ok(compareByteOrder("a", "ab") < 0);
  assert.equal(compareByteOrder("x", "x"), 0);
});

Deno.test("property: compareByteOrder agrees with comparing the encoded bytes", () => {
  const enc = new TextEncoder();
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
      const x = enc.encode(a);
      const y = enc.encode(b);
      let expected = 0;
      for (let i = 0; i < Math.min(x.length, y.length) && expected === 0; i++) expected = x[i]! - y[i]!;
      if (expected === 0) expected = x.length - y.length;
      assert.equal(Math.sign(compareByteOrder(a, b)), Math.sign(expected));
    }),
    { numRuns: 200 },
  );
});
