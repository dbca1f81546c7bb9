import assert from "node:assert/strict";
import { p256 } from "@noble/curves/nist.js";
import { CURVE_ORDER, Fn, isValidScalar, scalarToBytes } from "./scalar.ts";

Deno.test("the written-out group order is P-256's, and the field does what the curve's scalar field does", () => {
  const curve = p256.Point.Fn;
  assert.equal(CURVE_ORDER, curve.ORDER);
  assert.equal(Fn.BITS, curve.BITS);
  assert.equal(Fn.BYTES, curve.BYTES);
  const samples = [1n, 2n, 12345678901234567890n, CURVE_ORDER - 1n, CURVE_ORDER / 3n];
  for (const a of samples) {
    for (const b of samples) {
      assert.equal(Fn.mul(a, b), curve.mul(a, b));
      assert.equal(Fn.add(a, b), curve.add(a, b));
      assert.equal(Fn.sub(a, b), curve.sub(a, b));
    }
    assert.equal(Fn.inv(a), curve.inv(a));
  }
});

Deno.test("isValidScalar: 0 < x < n, 32 bytes", () => {
  assert.equal(isValidScalar(scalarToBytes(1n)), true);
  assert.equal(isValidScalar(scalarToBytes(CURVE_ORDER - 1n)), true);
  assert.equal(isValidScalar(new Uint8Array(32)), false);
  assert.equal(isValidScalar(new Uint8Array(32).fill(0xff)), false);
  assert.equal(isValidScalar(new Uint8Array(31).fill(1)), false);
});
