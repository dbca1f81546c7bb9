import assert from "node:assert/strict";
import fc from "fast-check";
import { bytesToHex } from "@noble/hashes/utils.js";
import { CryptoError } from "./errors.ts";
import { deriveKey, HKDF_MAX_LENGTH, hkdfSha256, KDF_INFO_PREFIX, KeyPurpose } from "./kdf.ts";

const range = (from: number, to: number) => Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);

// RFC 5869, Appendix A, test cases 1-3 (SHA-256).
const RFC5869 = [
  {
    name: "test case 1",
    ikm: new Uint8Array(22).fill(0x0b),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    length: 42,
    okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf" +
      "34007208d5b887185865",
  },
  {
    name: "test case 2 (long inputs)",
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c" +
      "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71" +
      "cc30c58179ec3e87c14c01d5c1f3434f1d87",
  },
  {
    name: "test case 3 (empty salt and info)",
    ikm: new Uint8Array(22).fill(0x0b),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d" +
      "9d201395faa4b61a96c8",
  },
];

for (const tc of RFC5869) {
  Deno.test(`hkdfSha256 matches RFC 5869 ${tc.name}`, () => {
    assert.equal(
      bytesToHex(hkdfSha256(tc.ikm, tc.salt, tc.info, tc.length)),
      tc.okm,
    );
  });
}

Deno.test("hkdfSha256: absent salt equals 32 zero bytes (RFC 5869 2.2)", () => {
  const tc = RFC5869[2]!;
  assert.equal(bytesToHex(hkdfSha256(tc.ikm, undefined, tc.info, 42)), tc.okm);
  assert.deepEqual(
    hkdfSha256(tc.ikm, undefined, range(1, 3), 32),
    hkdfSha256(tc.ikm, new Uint8Array(32), range(1, 3), 32),
  );
});

Deno.test("hkdfSha256 agrees with WebCrypto HKDF", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 64 }),
      fc.integer({ min: 1, max: 200 }),
      async (ikm, salt, info, length) => {
        const base = await crypto.subtle.importKey(
          "raw",
          ikm,
          "HKDF",
          false,
          ["deriveBits"],
        );
        const bits = await crypto.subtle.deriveBits(
          { name: "HKDF", hash: "SHA-256", salt, info },
          base,
          length * 8,
        );
        assert.deepEqual(
          hkdfSha256(ikm, salt, info, length),
          new Uint8Array(bits),
        );
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("hkdfSha256 rejects bad lengths", () => {
  const ikm = new Uint8Array(32).fill(7);
  for (const length of [0, -1, 1.5, NaN, HKDF_MAX_LENGTH + 1]) {
    assert.throws(
      () => hkdfSha256(ikm, undefined, new Uint8Array(0), length),
      CryptoError,
      String(length),
    );
  }
  assert.equal(
    hkdfSha256(ikm, undefined, new Uint8Array(0), HKDF_MAX_LENGTH).length,
    HKDF_MAX_LENGTH,
  );
});

Deno.test("deriveKey is HKDF with info spike/v1/<purpose> and no salt", () => {
  const root = range(1, 32);
  const key = deriveKey(root, KeyPurpose.secrets);
  assert.equal(key.length, 32);
  assert.deepEqual(
    key,
    hkdfSha256(
      root,
      undefined,
      new TextEncoder().encode(`${KDF_INFO_PREFIX}secrets`),
      32,
    ),
  );
  assert.deepEqual(deriveKey(root, "secrets"), key); // deterministic
  assert.equal(deriveKey(root, "cipher", 64).length, 64);
});

Deno.test("deriveKey separates purposes and root keys", () => {
  const root = range(1, 32);
  const other = range(2, 33);
  const a = deriveKey(root, KeyPurpose.secrets);
  assert.notDeepEqual(a, deriveKey(root, KeyPurpose.cipher));
  assert.notDeepEqual(a, deriveKey(other, KeyPurpose.secrets));
  assert.notDeepEqual(a, root);
});

Deno.test("deriveKey pinned values (labels must never change)", () => {
  // Renaming a label would make every record sealed before it unreadable.
  const root = range(1, 32);
  assert.equal(
    bytesToHex(deriveKey(root, KeyPurpose.secrets)),
    "27db20b81abb6b08b7de490e4433e40d0331001f3b94a98efd4e2802f07f527c",
  );
  assert.equal(
    bytesToHex(deriveKey(root, KeyPurpose.cipher)),
    "baba1babcc8ad4a4d921e6ea7421a6eb87b7d8ea9d193468daa2a8e6347ee882",
  );
});

Deno.test("deriveKey rejects bad input", () => {
  const root = range(1, 32);
  const cases: [string, () => unknown][] = [
    ["31-byte root", () => deriveKey(range(1, 31), "secrets")],
    ["33-byte root", () => deriveKey(range(1, 33), "secrets")],
    ["root not bytes", () => deriveKey("x".repeat(32) as never, "secrets")],
    ["empty purpose", () => deriveKey(root, "")],
    ["upper-case purpose", () => deriveKey(root, "Secrets")],
    ["purpose with space", () => deriveKey(root, "my secrets")],
    ["purpose with newline", () => deriveKey(root, "secrets\n")],
    ["purpose starting with /", () => deriveKey(root, "/secrets")],
    ["purpose too long", () => deriveKey(root, "a".repeat(101))],
    ["purpose not a string", () => deriveKey(root, 5 as never)],
    ["length 0", () => deriveKey(root, "secrets", 0)],
  ];
  for (const [name, run] of cases) assert.throws(run, CryptoError, name);
  assert.equal(deriveKey(root, "a".repeat(100)).length, 32);
});
