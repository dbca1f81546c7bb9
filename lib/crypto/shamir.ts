/**
 * Shamir secret sharing of a 32-byte root key over GF(n), n the P-256 group
 * order.
 *
 * The secret s is a scalar `0 < s < n`. Splitting builds
 * `f(x) = s + a1·x + … + a(t-1)·x^(t-1) mod n` and hands out share
 * `i = f(i)` for `i = 1..N`, each as 32 big-endian bytes. Any t shares rebuild
 * s by Lagrange interpolation at 0; t-1 shares reveal nothing about it.
 *
 * The coefficients are derived from s itself (a SHA-256 chain, as SPIKE
 * does; see {@linkcode deriveCoefficients}), not drawn at random: Nexus re-sends each
 * Keeper its share every few minutes, and every push must carry the same
 * value, or shares collected at different times would mix two polynomials
 * and rebuild a wrong key.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { CryptoError } from "./errors.ts";
import { bytesToScalar, CURVE_ORDER, Fn, isValidScalar, SCALAR_LENGTH, scalarToBytes } from "./scalar.ts";
import { isAllZero } from "./constant_time.ts";
import { zeroize } from "./zeroize.ts";

export { isValidScalar } from "./scalar.ts";
export { generateRootKey } from "./root_key.ts";

/** One share: the polynomial evaluated at `index`. */
export interface Share {
  /** Evaluation point, 1-based (the Keeper's position in the peer list). */
  readonly index: number;
  /** `f(index)`, 32 bytes big-endian, `0 < value < n`. */
  readonly value: Uint8Array;
}

/** Upper bound on the share count and on any share index. */
export const MAX_SHARES = 1000;

/** A candidate is out of range with probability ~2^-32; more misses are a bug. */
const MAX_COEFFICIENT_ATTEMPTS = 16;

/**
 * Derives coefficients a1..a(count) from the secret exactly as SPIKE does,
 * so both implementations hand out the same shares for the same key (a
 * Keeper or recovery file from one then combines with the other's): a byte
 * stream `B0 = SHA-256(secret)`, `B(k+1) = SHA-256(B(k))`; each coefficient
 * takes the next block read big-endian, skipping blocks `≥ n` (rejection
 * sampling, no modulo bias).
 *
 * Exported for tests and documentation; callers use {@linkcode splitSecret}.
 */
export function deriveCoefficients(
  secret: Uint8Array,
  count: number,
): bigint[] {
  let block = sha256(secret);
  const coefficients: bigint[] = [];
  try {
    for (let j = 1; j <= count; j++) {
      let attempts = 0;
      while (true) {
        const value = bytesToScalar(block);
        const next = sha256(block);
        zeroize(block);
        block = next;
        if (value < CURVE_ORDER) {
          coefficients.push(value);
          break;
        }
        if (++attempts >= MAX_COEFFICIENT_ATTEMPTS) throw new CryptoError("could not derive a Shamir coefficient");
      }
    }
  } finally {
    zeroize(block);
  }
  return coefficients;
}

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value)) {
    throw new CryptoError(`${name} must be an integer`);
  }
}

/**
 * Splits a 32-byte secret into `shares` shares, any `threshold` of which
 * rebuild it. Deterministic: the same secret, count and threshold always give
 * the same shares.
 *
 * @param secret 32 bytes, big-endian scalar with `0 < secret < n`
 * @param shares N, the number of shares (indices 1..N), at most 1000
 * @param threshold t, shares needed to rebuild, `1 <= t <= N`
 * @returns shares with indices 1..N in order; the caller owns (and should
 *   zero) their values
 * @throws {CryptoError} on any invalid argument
 */
export function splitSecret(
  secret: Uint8Array,
  shares: number,
  threshold: number,
): Share[] {
  checkCount("share count", shares);
  checkCount("threshold", threshold);
  if (threshold < 1) throw new CryptoError("threshold must be at least 1");
  if (shares < threshold) {
    throw new CryptoError("share count must be at least the threshold");
  }
  if (shares > MAX_SHARES) {
    throw new CryptoError(`share count must be at most ${MAX_SHARES}`);
  }
  const poly = polynomial(secret, threshold);
  const out: Share[] = [];
  for (let index = 1; index <= shares; index++) {
    out.push({ index, value: scalarToBytes(evaluate(poly, BigInt(index))) });
  }
  return out;
}

/**
 * The value of share `index` of `secret` for `threshold`: exactly what
 * {@linkcode splitSecret} hands out at that index, whatever the share count.
 * Lets Nexus check a shard against the key it holds.
 *
 * @returns 32 bytes; the caller owns (and should zero) them
 * @throws {CryptoError} on any invalid argument
 */
export function shareAt(secret: Uint8Array, index: number, threshold: number): Uint8Array {
  checkCount("share index", index);
  checkCount("threshold", threshold);
  if (index < 1 || index > MAX_SHARES) throw new CryptoError(`share index must be in 1..${MAX_SHARES}`);
  if (threshold < 1) throw new CryptoError("threshold must be at least 1");
  return scalarToBytes(evaluate(polynomial(secret, threshold), BigInt(index)));
}

/** Ascending powers: poly[0] = secret, poly[k] = coefficient of x^k. */
function polynomial(secret: Uint8Array, threshold: number): bigint[] {
  if (!(secret instanceof Uint8Array) || secret.length !== SCALAR_LENGTH) {
    throw new CryptoError(`secret must be ${SCALAR_LENGTH} bytes`);
  }
  if (!isValidScalar(secret)) {
    throw new CryptoError("secret must be a non-zero scalar below the P-256 order");
  }
  return [bytesToScalar(secret), ...deriveCoefficients(secret, threshold - 1)];
}

/** Horner's rule: f(x) mod n. */
function evaluate(poly: readonly bigint[], x: bigint): bigint {
  let y = 0n;
  for (let k = poly.length - 1; k >= 0; k--) {
    y = Fn.add(Fn.mul(y, x), poly[k]!);
  }
  return y;
}

function checkShare(share: Share | undefined, seen: Set<number>): void {
  // Shares often come from JSON; do not trust the static type.
  const index = share?.index;
  const value = share?.value;
  if (
    typeof index !== "number" || !Number.isInteger(index) || index < 1 ||
    index > MAX_SHARES
  ) {
    throw new CryptoError(`share index must be an integer in 1..${MAX_SHARES}`);
  }
  if (seen.has(index)) {
    throw new CryptoError(`duplicate share index ${index}`);
  }
  seen.add(index);
  if (!(value instanceof Uint8Array) || value.length !== SCALAR_LENGTH) {
    throw new CryptoError(`share ${index} must be ${SCALAR_LENGTH} bytes`);
  }
  if (isAllZero(value)) {
    throw new CryptoError(`share ${index} is all zero`);
  }
  if (!isValidScalar(value)) {
    throw new CryptoError(`share ${index} is not below the P-256 order`);
  }
}

/**
 * Rebuilds the secret from shares by Lagrange interpolation at 0 over exactly
 * the shares given. With fewer than the threshold (or shares of different
 * secrets) the result is a wrong value, not an error: Shamir shares carry no
 * checksum. Callers verify the rebuilt key (Nexus does, against sealed data).
 *
 * @returns the 32-byte secret; the caller owns (and should zero) it
 * @throws {CryptoError} on an empty list, a bad index, a duplicate index, a
 *   share value that is not 32 bytes, all zero or not below n, or when the
 *   interpolation yields zero (never a valid secret)
 */
export function combineShares(shares: readonly Share[]): Uint8Array {
  if (!Array.isArray(shares) || shares.length === 0) {
    throw new CryptoError("no shares given");
  }
  if (shares.length > MAX_SHARES) {
    throw new CryptoError(`at most ${MAX_SHARES} shares can be combined`);
  }
  const seen = new Set<number>();
  for (const share of shares) checkShare(share, seen);

  const xs = shares.map((s) => BigInt(s.index));
  let secret = 0n;
  for (let i = 0; i < shares.length; i++) {
    // Basis polynomial l_i(0) = Π_{j≠i} x_j / (x_j - x_i).
    let num = 1n;
    let den = 1n;
    for (let j = 0; j < shares.length; j++) {
      if (j === i) continue;
      num = Fn.mul(num, xs[j]!);
      den = Fn.mul(den, Fn.sub(xs[j]!, xs[i]!));
    }
    const yi = bytesToScalar(shares[i]!.value);
    secret = Fn.add(secret, Fn.mul(yi, Fn.mul(num, Fn.inv(den))));
  }
  if (secret === 0n) {
    throw new CryptoError("shares do not rebuild a valid secret");
  }
  return scalarToBytes(secret);
}
