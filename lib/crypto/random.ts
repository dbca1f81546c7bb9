/**
 * Randomness as an injected dependency: code that needs random bytes takes a
 * {@linkcode RandomBytes} argument, so tests can pass a deterministic source
 * and production passes {@linkcode systemRandom}.
 *
 * @module
 */

import { CryptoError } from "./errors.ts";

/** Returns `length` fresh random bytes. */
export type RandomBytes = (length: number) => Uint8Array;

/** `crypto.getRandomValues` refuses more than this many bytes per call. */
const MAX_CHUNK = 65536;

/**
 * Cryptographically secure random bytes from the platform CSPRNG
 * (`crypto.getRandomValues`), for any length.
 *
 * @throws {CryptoError} if `length` is not a non-negative safe integer
 */
export const systemRandom: RandomBytes = (length: number): Uint8Array => {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new CryptoError("random length must be a non-negative integer");
  }
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += MAX_CHUNK) {
    crypto.getRandomValues(out.subarray(at, Math.min(length, at + MAX_CHUNK)));
  }
  return out;
};

/**
 * Calls an injected {@linkcode RandomBytes} and checks that it kept its
 * contract, so a broken source fails loudly instead of yielding short keys or
 * nonces.
 *
 * @throws {CryptoError} if the source returned something other than
 *   `length` bytes
 */
export function drawRandom(random: RandomBytes, length: number): Uint8Array {
  const out = random(length);
  if (!(out instanceof Uint8Array) || out.length !== length) {
    throw new CryptoError(`random source did not return ${length} bytes`);
  }
  return out;
}
