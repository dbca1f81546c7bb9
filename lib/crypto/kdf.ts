/**
 * Key derivation with HKDF-SHA-256 (RFC 5869).
 *
 * Keys used for data are never the root key itself but
 * `HKDF-SHA-256(ikm = root key, salt = none, info = "spike/v1/<purpose>")`,
 * so each purpose gets an independent key and a new purpose never reuses one.
 *
 * @module
 */

import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { CryptoError } from "./errors.ts";

/** Prefix of every `info` string {@linkcode deriveKey} uses. */
export const KDF_INFO_PREFIX = "spike/v1/";

/** HKDF-SHA-256 cannot produce more than 255 hash blocks. */
export const HKDF_MAX_LENGTH = 255 * 32;

/**
 * Purposes in use, so callers share one spelling. The info string is
 * {@linkcode KDF_INFO_PREFIX} followed by the purpose.
 */
export const KeyPurpose = {
  /** Sealing secret versions at rest. */
  secrets: "secrets",
  /** The `/v1/cipher` encrypt/decrypt API. */
  cipher: "cipher",
  /** HMAC-SHA-256 over audit records (the tamper-evident chain; see `lib/nexus/audit_key.ts`). */
  audit: "audit",
  /** Sealing policies at rest (patterns, permissions, times; AAD binds the name). */
  policies: "policies",
  /** The sealed key-check value that tells whether a root key is the one of the data. */
  keyCheck: "key-check",
} as const;

/** Lower-case ASCII labels keep info strings unambiguous and printable. */
const PURPOSE_PATTERN = /^[a-z0-9][a-z0-9._/-]{0,99}$/;

const utf8 = new TextEncoder();

/**
 * Raw HKDF-SHA-256: extract with `salt` (absent = 32 zero bytes, as RFC 5869
 * says), then expand with `info` to `length` bytes.
 *
 * @throws {CryptoError} if `length` is not an integer in `1..8160`
 */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array | undefined,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_MAX_LENGTH) {
    throw new CryptoError(`HKDF length must be an integer in 1..${HKDF_MAX_LENGTH}`);
  }
  return hkdf(sha256, ikm, salt, info, length);
}

/**
 * Derives a key for one purpose from the root key:
 * `HKDF-SHA-256(rootKey, salt = none, info = "spike/v1/" + purpose, length)`.
 *
 * The root key is already uniformly random, so no salt is needed; separation
 * between purposes comes from `info`.
 *
 * @param rootKey the 32-byte root key
 * @param purpose lower-case label, e.g. {@linkcode KeyPurpose.secrets}
 * @param length bytes to derive (default 32, an AES-256 key)
 * @throws {CryptoError} on a root key that is not 32 bytes, a malformed
 *   purpose, or a bad length
 */
export function deriveKey(
  rootKey: Uint8Array,
  purpose: string,
  length = 32,
): Uint8Array {
  if (!(rootKey instanceof Uint8Array) || rootKey.length !== 32) {
    throw new CryptoError("root key must be 32 bytes");
  }
  if (typeof purpose !== "string" || !PURPOSE_PATTERN.test(purpose)) {
    throw new CryptoError(
      "key purpose must be 1-100 chars of a-z 0-9 . _ / - starting with a letter or digit",
    );
  }
  return hkdfSha256(
    rootKey,
    undefined,
    utf8.encode(KDF_INFO_PREFIX + purpose),
    length,
  );
}
