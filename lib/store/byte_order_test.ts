import assert from "node:assert/strict";
import fc from "fast-check";
import { compareByteOrder, prefixUpperBound } from "./byte_order.ts";

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

Deno.test("prefixUpperBound: a string starts with the prefix exactly when it lies in [prefix, bound)", () => {
  assert.equal(prefixUpperBound(""), undefined);
  assert.equal(prefixUpperBound("apps/"), "apps0");
  assert.equal(prefixUpperBound("a\u{10FFFF}"), "b");
  assert.equal(prefixUpperBound("\u{10FFFF}"), undefined);
  assert.equal(prefixUpperBound("x\uD7FF"), "x\uE000");
  const text = fc.string({ unit: "grapheme", maxLength: 6 });
  fc.assert(
    fc.property(text, text, (prefix, s) => {
      const bound = prefixUpperBound(prefix);
      const inRange = compareByteOrder(prefix, s) <= 0 && (bound === undefined || compareByteOrder(s, bound) < 0);
      return inRange === s.startsWith(prefix);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.constantFrom("a", "ab", "b", "a/"), fc.string({ maxLength: 4 }), (prefix, tail) => {
      const s = prefix + tail;
      const bound = prefixUpperBound(prefix)!;
      return compareByteOrder(s, bound) < 0;
    }),
  );
});
