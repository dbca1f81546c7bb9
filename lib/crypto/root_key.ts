/**
 * Root key generation.
 *
 * @module
 */

import { CryptoError } from "./errors.ts";
import { drawRandom, type RandomBytes } from "./random.ts";
import { isValidScalar, SCALAR_LENGTH } from "./scalar.ts";
import { zeroize } from "./zeroize.ts";

/**
 * A draw lands outside `1..n-1` with probability about 2^-32, so this many
 * misses in a row means the random source is broken, not unlucky.
 */
const MAX_ATTEMPTS = 64;

/**
 * Makes a root key: 32 random bytes read as a big-endian P-256 scalar, drawn
 * again while the value is zero or not below the group order n.
 *
 * @param random injected random source (`systemRandom` in production)
 * @throws {CryptoError} if the source keeps returning out-of-range values
 */
export function generateRootKey(random: RandomBytes): Uint8Array {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const candidate = drawRandom(random, SCALAR_LENGTH);
    if (isValidScalar(candidate)) return candidate;
    zeroize(candidate);
  }
  throw new CryptoError("random source keeps producing invalid root keys");
}
