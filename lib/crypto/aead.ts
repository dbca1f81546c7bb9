/**
 * AES-256-GCM with associated data, through WebCrypto (`crypto.subtle`).
 *
 * WebCrypto was chosen over `@noble/ciphers` by `bench/aead_bench.ts`: with
 * 16 operations in flight (a server under load) it is 2.6-18x faster at every
 * payload size, one at a time it is 1.5-7.8x faster from 4 KiB up, and it
 * runs in native code off the JavaScript thread, where noble's pure-JS AES
 * uses T-tables (its README warns they leak access timings).
 * noble only wins for one small payload at a time (about 2x at 64 B, i.e.
 * ~17 µs against ~40 µs per call). The price is an async API. See
 * `docs/CRYPTO.md`, "AEAD choice".
 *
 * Sealed record format (also the cipher API's octet-stream body):
 *
 * ```
 * 0x01 ‖ nonce (12 bytes) ‖ ciphertext (same length as plaintext) ‖ tag (16 bytes)
 * ```
 *
 * @module
 */

import { CryptoError } from "./errors.ts";
import { drawRandom, type RandomBytes } from "./random.ts";

/** First byte of a sealed record. */
export const SEALED_VERSION = 1;

/** AES-256 key length in bytes. */
export const KEY_LENGTH = 32;

/** GCM nonce (IV) length in bytes. */
export const NONCE_LENGTH = 12;

/** GCM tag length in bytes. */
export const TAG_LENGTH = 16;

/** Bytes a sealed record adds to its plaintext: version, nonce and tag. */
export const SEALED_OVERHEAD = 1 + NONCE_LENGTH + TAG_LENGTH;

/**
 * An AES-256 key: raw bytes (imported for each call) or a `CryptoKey` from
 * {@linkcode importAeadKey} (imported once, faster for small payloads, and
 * its bytes cannot be read back from JavaScript).
 */
export type AeadKey = Uint8Array | CryptoKey;

/** Every open/decrypt failure looks alike, whatever went wrong. */
const OPEN_FAILED = "decryption failed";

const EMPTY = new Uint8Array(0);

/** WebCrypto wants ArrayBuffer-backed views; copy the rare shared one. */
function buffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes);
}

function checkBytes(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoError(`${name} must be a Uint8Array`);
  }
}

/**
 * Imports raw key bytes as a non-extractable AES-256-GCM `CryptoKey` for
 * encrypt and decrypt. The caller may zero `raw` afterwards; the copy inside
 * WebCrypto cannot be wiped (see `docs/CRYPTO.md`).
 *
 * @throws {CryptoError} if `raw` is not 32 bytes
 */
export async function importAeadKey(raw: Uint8Array): Promise<CryptoKey> {
  checkBytes("key", raw);
  if (raw.length !== KEY_LENGTH) {
    throw new CryptoError(`AES-256-GCM key must be ${KEY_LENGTH} bytes`);
  }
  return await crypto.subtle.importKey(
    "raw",
    buffer(raw),
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

async function toCryptoKey(key: AeadKey): Promise<CryptoKey> {
  if (key instanceof Uint8Array) return await importAeadKey(key);
  const algorithm = key?.algorithm as AesKeyAlgorithm | undefined;
  if (
    !(key instanceof CryptoKey) || algorithm?.name !== "AES-GCM" ||
    algorithm.length !== 256 || !key.usages.includes("encrypt") ||
    !key.usages.includes("decrypt")
  ) {
    throw new CryptoError(
      "key must be 32 bytes or an AES-256-GCM CryptoKey for encrypt and decrypt",
    );
  }
  return key;
}

function gcmParams(nonce: Uint8Array, aad: Uint8Array): AesGcmParams {
  return {
    name: "AES-GCM",
    iv: buffer(nonce),
    additionalData: buffer(aad),
    tagLength: TAG_LENGTH * 8,
  };
}

function checkNonceAndAad(nonce: Uint8Array, aad: Uint8Array): void {
  checkBytes("nonce", nonce);
  if (nonce.length !== NONCE_LENGTH) {
    throw new CryptoError(`nonce must be ${NONCE_LENGTH} bytes`);
  }
  checkBytes("associated data", aad);
}

/**
 * AES-256-GCM encryption with a caller-chosen nonce.
 *
 * A nonce must never repeat under one key; {@linkcode seal} draws a fresh one
 * and is what application code should use. This form exists for known-answer
 * tests and for the cipher API's JSON mode, which carries the nonce apart.
 *
 * @returns ciphertext ‖ tag (plaintext length + 16 bytes)
 * @throws {CryptoError} on a bad key, a nonce that is not 12 bytes, or
 *   non-byte inputs
 */
export async function encryptGcm(
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Promise<Uint8Array> {
  checkNonceAndAad(nonce, aad);
  checkBytes("plaintext", plaintext);
  const cryptoKey = await toCryptoKey(key);
  const out = await crypto.subtle.encrypt(
    gcmParams(nonce, aad),
    cryptoKey,
    buffer(plaintext),
  );
  return new Uint8Array(out);
}

/**
 * AES-256-GCM decryption of ciphertext ‖ tag.
 *
 * @returns the plaintext; only ever returned when the tag verifies
 * @throws {CryptoError} "decryption failed" for a wrong key, wrong nonce,
 *   wrong associated data, any modified byte or a too-short input, all alike;
 *   or a specific message for a malformed key or nonce
 */
export async function decryptGcm(
  key: AeadKey,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Promise<Uint8Array> {
  checkNonceAndAad(nonce, aad);
  checkBytes("ciphertext", ciphertext);
  const cryptoKey = await toCryptoKey(key);
  if (ciphertext.length < TAG_LENGTH) throw new CryptoError(OPEN_FAILED);
  try {
    const out = await crypto.subtle.decrypt(
      gcmParams(nonce, aad),
      cryptoKey,
      buffer(ciphertext),
    );
    return new Uint8Array(out);
  } catch {
    // The platform error says nothing useful and must not leak differences.
    throw new CryptoError(OPEN_FAILED);
  }
}

/**
 * Encrypts `plaintext` under a fresh random nonce, binding `aad` (e.g. a
 * record's path and version) so the result only opens with the same `aad`.
 *
 * @param random injected random source for the nonce
 * @returns `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`
 * @throws {CryptoError} on a bad key or a random source that misbehaves
 */
export async function seal(
  key: AeadKey,
  plaintext: Uint8Array,
  aad: Uint8Array,
  random: RandomBytes,
): Promise<Uint8Array> {
  const nonce = drawRandom(random, NONCE_LENGTH);
  const body = await encryptGcm(key, nonce, plaintext, aad);
  const out = new Uint8Array(1 + NONCE_LENGTH + body.length);
  out[0] = SEALED_VERSION;
  out.set(nonce, 1);
  out.set(body, 1 + NONCE_LENGTH);
  return out;
}

/**
 * Opens a record made by {@linkcode seal}.
 *
 * @returns the plaintext; the caller owns (and should zero) it
 * @throws {CryptoError} "decryption failed" for an unknown version byte, a
 *   record shorter than 29 bytes, a wrong key or associated data, or any
 *   modified byte, all alike and never with the data in the message
 */
export async function open(
  key: AeadKey,
  sealed: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  checkBytes("sealed record", sealed);
  if (sealed.length < SEALED_OVERHEAD || sealed[0] !== SEALED_VERSION) {
    // Check the key anyway so a misconfigured caller hears about it.
    await toCryptoKey(key);
    throw new CryptoError(OPEN_FAILED);
  }
  return await decryptGcm(
    key,
    sealed.subarray(1, 1 + NONCE_LENGTH),
    sealed.subarray(1 + NONCE_LENGTH),
    aad,
  );
}
