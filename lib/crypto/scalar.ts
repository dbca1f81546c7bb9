/**
 * Scalars of the P-256 group order n: the field Shamir sharing works in.
 *
 * A scalar travels as 32 bytes, big-endian. Bigint arithmetic is neither
 * constant-time nor wipeable; see `docs/CRYPTO.md`.
 *
 * @module
 */

import { Field } from "@noble/curves/abstract/modular.js";
import { bytesToNumberBE, numberToBytesBE } from "@noble/curves/utils.js";

/**
 * The P-256 group order n (FIPS 186-5 / SEC 2). Written out rather than
 * taken from `@noble/curves/nist.js`, whose import builds every NIST curve
 * (~9 ms of CPU at each start of Nexus and Bootstrap); `scalar_test.ts`
 * checks it against the curve's.
 */
export const CURVE_ORDER: bigint = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** Arithmetic modulo the P-256 group order n. */
export const Fn = Field(CURVE_ORDER);

/** Bytes in an encoded scalar (root key, share value). */
export const SCALAR_LENGTH = 32;

/**
 * True when `bytes` is 32 bytes encoding a scalar `0 < x < n` big-endian:
 * the shape of a valid root key or share value.
 */
export function isValidScalar(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length !== SCALAR_LENGTH) {
    return false;
  }
  const x = bytesToNumberBE(bytes);
  return x > 0n && x < CURVE_ORDER;
}

/** Reads 32 big-endian bytes as a bigint; the caller checks the range. */
export function bytesToScalar(bytes: Uint8Array): bigint {
  return bytesToNumberBE(bytes);
}

/** Writes `0 <= x < n` as 32 big-endian bytes. */
export function scalarToBytes(x: bigint): Uint8Array {
  return numberToBytesBE(x, SCALAR_LENGTH);
}
