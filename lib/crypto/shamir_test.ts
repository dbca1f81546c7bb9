import assert from "node:assert/strict";
import fc from "fast-check";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { CryptoError } from "./errors.ts";
import { hkdfSha256 } from "./kdf.ts";
import { systemRandom } from "./random.ts";
import { CURVE_ORDER, isValidScalar, scalarToBytes } from "./scalar.ts";
import {
  COEFFICIENT_INFO,
  COEFFICIENT_SALT,
  combineShares,
  generateRootKey,
  type Share,
  splitSecret,
} from "./shamir.ts";

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

Deno.test("coefficients follow the documented HKDF derivation", () => {
  const info = new Uint8Array(COEFFICIENT_INFO.length + 8);
  info.set(new TextEncoder().encode(COEFFICIENT_INFO));
  new DataView(info.buffer).setUint32(COEFFICIENT_INFO.length, 1); // j = 1
  // attempt = 0 (already zero)
  const a1 = hkdfSha256(
    SECRET_1_TO_32,
    new TextEncoder().encode(COEFFICIENT_SALT),
    info,
    32,
  );
  assert.ok(isValidScalar(a1));
  const [share1] = splitSecret(SECRET_1_TO_32, 3, 2);
  assert.equal(toBig(share1!.value), (toBig(SECRET_1_TO_32) + toBig(a1)) % n);
});

Deno.test("pinned vector: 3 shares, threshold 2, secret 01..20", () => {
  // Guards the derivation against silent change: a change would make
  // recovery files written before it useless with shares made after it.
  const shares = splitSecret(SECRET_1_TO_32, 3, 2);
  assert.deepEqual(shares.map((s) => [s.index, bytesToHex(s.value)]), [
    [1, "777f39dfc4bacbfd1a2717f70904eb3f7ab80d8f8006acb5b81c33dc434ef44a"],
    [2, "edfc70bb846f90f22b4424e204fbc76ee45e080aeaf74253571e4c9c697fc974"],
    [3, "6479a798442455e63c6131cd00f2a39e911d07d8aed0396c02669a99934d794d"],
  ]);
  assert.deepEqual(
    combineShares([{
      index: 3,
      value: hexToBytes(
        "6479a798442455e63c6131cd00f2a39e911d07d8aed0396c02669a99934d794d",
      ),
    }, {
      index: 1,
      value: hexToBytes(
        "777f39dfc4bacbfd1a2717f70904eb3f7ab80d8f8006acb5b81c33dc434ef44a",
      ),
    }]),
    SECRET_1_TO_32,
  );
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
