/**
 * Pure cryptography for spike: Shamir sharing of the root key, HKDF key
 * derivation, AES-256-GCM sealing, constant-time comparison and buffer
 * wiping. No IO; randomness is always passed in.
 *
 * @module
 */

export { CryptoError } from "./errors.ts";
export { drawRandom, type RandomBytes, systemRandom } from "./random.ts";
export { constantTimeEqual, isAllZero } from "./constant_time.ts";
export { withZeroized, zeroize } from "./zeroize.ts";
export { CURVE_ORDER, isValidScalar, SCALAR_LENGTH } from "./scalar.ts";
export { generateRootKey } from "./root_key.ts";
export { combineShares, MAX_SHARES, type Share, splitSecret } from "./shamir.ts";
export { deriveKey, HKDF_MAX_LENGTH, hkdfSha256, KDF_INFO_PREFIX, KeyPurpose } from "./kdf.ts";
export {
  type AeadKey,
  decryptGcm,
  encryptGcm,
  importAeadKey,
  KEY_LENGTH,
  NONCE_LENGTH,
  open,
  seal,
  SEALED_OVERHEAD,
  SEALED_VERSION,
  TAG_LENGTH,
} from "./aead.ts";
