import assert from "node:assert/strict";
import fc from "fast-check";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { CryptoError } from "./errors.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { systemRandom } from "./random.ts";
import { CURVE_ORDER, isValidScalar, scalarToBytes } from "./scalar.ts";
import { combineShares, deriveCoefficients, generateRootKey, type Share, shareAt, splitSecret } from "./shamir.ts";

const n = CURVE_ORDER;

/** All k-element subsets of `items`, in order. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [head, ...rest] = items;
  return [
    ...subsets(rest, k - 1).map((s) => [head!, ...s]),
    ...subsets(rest, k),
  ];
}

const secretArb = fc.oneof(
  fc.bigInt({ min: 1n, max: n - 1n }),
  fc.constantFrom(1n, 2n, n - 1n, n - 2n),
).map(scalarToBytes);

const shapeArb = fc.integer({ min: 1, max: 6 }).chain((shares) =>
  fc.record({
    shares: fc.constant(shares),
    threshold: fc.integer({ min: 1, max: shares }),
  })
);

function toBig(bytes: Uint8Array): bigint {
  return BigInt("0x" + bytesToHex(bytes));
}

const SECRET_1_TO_32 = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

Deno.test("every threshold-sized subset rebuilds the secret", () => {
  fc.assert(
    fc.property(secretArb, shapeArb, (secret, { shares, threshold }) => {
      const all = splitSecret(secret, shares, threshold);
      assert.equal(all.length, shares);
      assert.deepEqual(all.map((s) => s.index), [...Array(shares)].map((_, i) => i + 1));
      for (const subset of subsets(all, threshold)) {
        assert.deepEqual(combineShares(subset), secret);
        // Order of the shares does not matter.
        assert.deepEqual(combineShares([...subset].reverse()), secret);
      }
      // More than the threshold works as well.
      assert.deepEqual(combineShares(all), secret);
    }),
    { numRuns: 60 },
  );
});

Deno.test("threshold-1 shares never rebuild the secret", () => {
  fc.assert(
    fc.property(
      secretArb,
      shapeArb.filter(({ threshold }) => threshold >= 2),
      (secret, { shares, threshold }) => {
        const all = splitSecret(secret, shares, threshold);
        for (const subset of subsets(all, threshold - 1)) {
          let rebuilt: Uint8Array | undefined;
          try {
            rebuilt = combineShares(subset);
          } catch (err) {
            // A zero result is refused; that is also "not the secret".
            assert.ok(err instanceof CryptoError);
            continue;
          }
          assert.notDeepEqual(rebuilt, secret);
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("splitting is deterministic", () => {
  fc.assert(
    fc.property(secretArb, shapeArb, (secret, { shares, threshold }) => {
      assert.deepEqual(
        splitSecret(secret, shares, threshold),
        splitSecret(new Uint8Array(secret), shares, threshold),
      );
    }),
    { numRuns: 40 },
  );
});

Deno.test("different secrets give different shares", () => {
  const other = new Uint8Array(SECRET_1_TO_32);
  other[31] = 0xff;
  const a = splitSecret(SECRET_1_TO_32, 3, 2);
  const b = splitSecret(other, 3, 2);
  for (let i = 0; i < 3; i++) assert.notDeepEqual(a[i]!.value, b[i]!.value);
});

Deno.test("threshold 1 gives copies of the secret", () => {
  for (const share of splitSecret(SECRET_1_TO_32, 3, 1)) {
    assert.deepEqual(share.value, SECRET_1_TO_32);
    assert.deepEqual(combineShares([share]), SECRET_1_TO_32);
  }
});

Deno.test("threshold 2 shares lie on a line", () => {
  // f(x) = s + a·x, so f(1) - s = f(2) - f(1) = f(3) - f(2) (mod n).
  const [s1, s2, s3] = splitSecret(SECRET_1_TO_32, 3, 2).map((s) => toBig(s.value));
  const s = toBig(SECRET_1_TO_32);
  const mod = (x: bigint) => ((x % n) + n) % n;
  assert.equal(mod(s1! - s), mod(s2! - s1!));
  assert.equal(mod(s2! - s1!), mod(s3! - s2!));
});

Deno.test("coefficients follow the documented SHA-256 chain", () => {
  const block0 = sha256(SECRET_1_TO_32);
  const [a1, a2] = deriveCoefficients(SECRET_1_TO_32, 2);
  assert.equal(a1, toBig(block0));
  assert.equal(a2, toBig(sha256(block0)));
  const [share1] = splitSecret(SECRET_1_TO_32, 3, 2);
  assert.equal(toBig(share1!.value), (toBig(SECRET_1_TO_32) + a1!) % n);
});

// Shares made by SPIKE (spike-sdk-go v0.19.9, crypto.ComputeShares) for the
// same keys: ours must be identical, so Keepers and recovery files work
// across the two implementations.
const SPIKE_VECTORS: Array<{ key: string; shares: number; threshold: number; expected: string[] }> = [
  {
    key: "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
    shares: 3,
    threshold: 2,
    expected: [
      "af236f32fa2a813f8bcb40fbaf87b2f4ded823a83c257443fea67d20d4c431e9",
      "5d44db62ef4efb760e8c76eb520156d9efb7398ebc1d32eaf079146290071f61",
      "0b664792e47375ac914dacdaf47afabf00964f753c14f191e24baba44b4a0cd9",
    ],
  },
  {
    key: "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
    shares: 5,
    threshold: 3,
    expected: [
      "d7060f775f1f687b1cfc95871d87713c8d221022b18839e5568d203073e11d52",
      "fccf5c74832298645351c9190a004ff8a8deeb7891a849705013a0a10c7acd05",
      "725de9fb710f96c3ac09a5c1d278ab446448a515b57645b905ad9c6de6eb2e39",
      "37b1b80b28e6639a27242b8176f0831f7c4637a7c409cd446b14de59ff95663f",
      "4ccac6a3aaa6fee7c4a15a57f767d789f0d7a32ebd62e0128049666556797517",
    ],
  },
  {
    key: "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    shares: 3,
    threshold: 2,
    expected: [
      "91e11f545637b979ed825443697e64758774e724b9938e9436124252c9de37c2",
      "a3c23ea8ac6f72f3db04a886d2fcc8eb0ee9ce4973271d286c2484a593bc6f85",
      "b5a35dfd02a72c6dc886fcca3c7b2d60965eb56e2cbaabbca236c6f85d9aa748",
    ],
  },
  {
    key: "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    shares: 5,
    threshold: 3,
    expected: [
      "48f42538fc8e01d7ed2c4e67d919a4e9d0863a8a692c96234486b63ca0651211",
      "800e563a45c8946cd9ac91189169cabbf016168dd8a2d9e999b01f0fea3afe12",
      "254e9304dbafb7bdc580c81228f07176a1c8995ca74b2cce0bc26fb6e11e9eb1",
      "38b4db97be436bcbb0a8f3549fad9919a284bda47c3d2d558e7772f48173193f",
      "ba412ff2ed83b0969b2512dff5a141a4f24a83655778db8021cf28c8cb386dbc",
    ],
  },
];

Deno.test("shares are identical to SPIKE's for the same key", () => {
  for (const { key, shares, threshold, expected } of SPIKE_VECTORS) {
    const made = splitSecret(hexToBytes(key), shares, threshold);
    assert.deepEqual(made.map((s) => s.index), expected.map((_, i) => i + 1));
    assert.deepEqual(made.map((s) => bytesToHex(s.value)), expected, `${key} ${shares}/${threshold}`);
    // And SPIKE's shares rebuild the key here.
    const subset = expected.slice(-threshold).map((hex, i) => ({
      index: shares - threshold + i + 1,
      value: hexToBytes(hex),
    }));
    assert.equal(bytesToHex(combineShares(subset)), key);
  }
});

Deno.test("splitSecret rejects invalid arguments", () => {
  const ok = SECRET_1_TO_32;
  const cases: [string, () => unknown][] = [
    ["threshold 0", () => splitSecret(ok, 3, 0)],
    ["negative threshold", () => splitSecret(ok, 3, -1)],
    ["shares < threshold", () => splitSecret(ok, 2, 3)],
    ["shares > 1000", () => splitSecret(ok, 1001, 2)],
    ["fractional shares", () => splitSecret(ok, 2.5, 2)],
    ["fractional threshold", () => splitSecret(ok, 3, 1.5)],
    ["NaN shares", () => splitSecret(ok, NaN, 1)],
    ["Infinity shares", () => splitSecret(ok, Infinity, 1)],
    ["31-byte secret", () => splitSecret(new Uint8Array(31).fill(1), 3, 2)],
    ["33-byte secret", () => splitSecret(new Uint8Array(33).fill(1), 3, 2)],
    ["zero secret", () => splitSecret(new Uint8Array(32), 3, 2)],
    ["secret = n", () => splitSecret(scalarToBytes(n), 3, 2)],
    ["secret > n", () => splitSecret(new Uint8Array(32).fill(0xff), 3, 2)],
    [
      "secret not bytes",
      () => splitSecret([1, 2] as unknown as Uint8Array, 3, 2),
    ],
  ];
  for (const [name, run] of cases) {
    assert.throws(run, CryptoError, name);
  }
  // The boundary itself is fine.
  assert.equal(splitSecret(ok, 1000, 1).length, 1000);
});

Deno.test("combineShares rejects invalid shares", () => {
  const [a, b] = splitSecret(SECRET_1_TO_32, 3, 2);
  const v = (bytes: Uint8Array): Share => ({ index: 2, value: bytes });
  const cases: [string, readonly Share[]][] = [
    ["empty list", []],
    ["duplicate index", [a!, { index: 1, value: b!.value }]],
    ["index 0", [a!, { index: 0, value: b!.value }]],
    ["negative index", [a!, { index: -2, value: b!.value }]],
    ["index 1001", [a!, { index: 1001, value: b!.value }]],
    ["fractional index", [a!, { index: 1.5, value: b!.value }]],
    ["all-zero value", [a!, v(new Uint8Array(32))]],
    ["value = n", [a!, v(scalarToBytes(n))]],
    ["value > n", [a!, v(new Uint8Array(32).fill(0xff))]],
    ["31-byte value", [a!, v(b!.value.subarray(1))]],
    ["33-byte value", [a!, v(new Uint8Array(33).fill(1))]],
    ["missing value", [a!, { index: 2 } as unknown as Share]],
    ["null share", [a!, null as unknown as Share]],
  ];
  for (const [name, shares] of cases) {
    assert.throws(() => combineShares(shares), CryptoError, name);
  }
  assert.throws(
    () => combineShares("nope" as unknown as Share[]),
    CryptoError,
  );
});

Deno.test("combineShares refuses a zero result", () => {
  // f(x) = n - x is a line through (1, n-1) and (2, n-2) with f(0) = 0.
  assert.throws(
    () =>
      combineShares([
        { index: 1, value: scalarToBytes(n - 1n) },
        { index: 2, value: scalarToBytes(n - 2n) },
      ]),
    CryptoError,
  );
});

Deno.test("error messages carry no share or secret bytes", () => {
  const [a] = splitSecret(SECRET_1_TO_32, 3, 2);
  const hex = bytesToHex(a!.value);
  try {
    combineShares([a!, { index: 1, value: a!.value }]);
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof CryptoError);
    assert.ok(!err.message.includes(hex));
    assert.ok(!err.message.includes(hex.slice(0, 8)));
  }
});

Deno.test("generateRootKey returns a valid scalar and redraws out-of-range values", () => {
  const draws = [
    new Uint8Array(32).fill(0xff), // >= n
    new Uint8Array(32), // zero
    scalarToBytes(n), // == n
    SECRET_1_TO_32,
  ];
  let calls = 0;
  const key = generateRootKey((len) => {
    assert.equal(len, 32);
    return new Uint8Array(draws[calls++]!);
  });
  assert.equal(calls, 4);
  assert.deepEqual(key, SECRET_1_TO_32);
});

Deno.test("generateRootKey gives up on a broken random source", () => {
  assert.throws(
    () => generateRootKey((len) => new Uint8Array(len)),
    CryptoError,
  );
  assert.throws(() => generateRootKey(() => new Uint8Array(16)), CryptoError);
});

Deno.test("generateRootKey with the system source gives distinct valid keys", () => {
  const a = generateRootKey(systemRandom);
  const b = generateRootKey(systemRandom);
  assert.ok(isValidScalar(a) && isValidScalar(b));
  assert.notDeepEqual(a, b);
});

Deno.test("shareAt gives splitSecret's share at that index, also past the share count", () => {
  const secret = generateRootKey(systemRandom);
  for (const threshold of [1, 2, 3]) {
    const shares = splitSecret(secret, 5, threshold);
    for (const share of shares) assert.deepEqual(shareAt(secret, share.index, threshold), share.value);
    assert.deepEqual(shareAt(secret, 1000, threshold), splitSecret(secret, 1000, threshold)[999]!.value);
  }
  for (const [index, threshold] of [[0, 2], [1001, 2], [1.5, 2], [1, 0]]) {
    assert.throws(() => shareAt(secret, index!, threshold!), CryptoError);
  }
  assert.throws(() => shareAt(new Uint8Array(32), 1, 2), CryptoError);
});
