import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeBase64, encodeBase64 } from "./base64.ts";

Deno.test("base64 round-trips any bytes, large ones included", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    assert.deepEqual(decodeBase64(encodeBase64(bytes)), bytes);
  }));
  const big = new Uint8Array(200_000).map((_, i) => i & 0xff);
  assert.deepEqual(decodeBase64(encodeBase64(big)), big);
});

Deno.test("decodeBase64 refuses what is not base64 and accepts missing padding", () => {
  for (const bad of ["a", "ab!c", "====", "abc=d", "é"]) assert.equal(decodeBase64(bad), undefined, bad);
  assert.deepEqual(decodeBase64("aGk"), new TextEncoder().encode("hi"));
  assert.deepEqual(decodeBase64(""), new Uint8Array(0));
});
