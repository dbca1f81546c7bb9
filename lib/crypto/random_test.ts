import assert from "node:assert/strict";
import { CryptoError } from "./errors.ts";
import { drawRandom, systemRandom } from "./random.ts";

Deno.test("systemRandom returns the asked length, past the 64 KiB chunk", () => {
  for (const length of [0, 1, 32, 65535, 65536, 65537, 200_000]) {
    assert.equal(systemRandom(length).length, length);
  }
});

Deno.test("systemRandom fills every chunk", () => {
  const out = systemRandom(3 * 65536 + 100);
  // Each 64-byte window is all zero with probability 2^-512.
  for (const at of [0, 65536, 2 * 65536, 3 * 65536]) {
    assert.ok(out.subarray(at, at + 64).some((b) => b !== 0), `chunk at ${at}`);
  }
  assert.notDeepEqual(systemRandom(32), systemRandom(32));
});

Deno.test("systemRandom rejects bad lengths", () => {
  for (const length of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => systemRandom(length), CryptoError, String(length));
  }
});

Deno.test("drawRandom checks the source kept its contract", () => {
  assert.equal(drawRandom(systemRandom, 12).length, 12);
  assert.throws(() => drawRandom(() => new Uint8Array(11), 12), CryptoError);
  assert.throws(() => drawRandom(() => new Uint8Array(13), 12), CryptoError);
  assert.throws(
    () => drawRandom(() => [1, 2, 3] as unknown as Uint8Array, 3),
    CryptoError,
  );
});
