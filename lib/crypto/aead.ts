/**
 * AES-256-GCM with associated data: synchronous `node:crypto` for small
 * payloads, WebCrypto (`crypto.subtle`) for large ones.
 *
 * Two paths because each wins at its own size (`bench/aead_bench.ts`,
 * `docs/CRYPTO.md` "AEAD choice"): a `node:crypto` call costs ~5 µs of CPU
 * plus ~5 µs per KiB on the calling thread, a WebCrypto call ~8 µs plus
 * ~3 µs per KiB on a worker thread, and, under a server's load, the hop to
 * that thread and back through a promise costs more than small payloads'
 * whole encryption (a secret read spent 34 µs in WebCrypto's decrypt at 16
 * requests in flight). Up to {@linkcode SYNC_LIMIT} bytes the work is done
 * synchronously; above, by WebCrypto. Both produce the same bytes (a
 * property test checks it), so the split is invisible outside this file.
 * `@noble/ciphers` is not used: its pure-JS AES uses T-tables, which its
 * own README warns leak access timings.
 *
 * `node:crypto` takes the key as bytes: those of a `CryptoKey` from
 * {@linkcode importAeadKey} are read once (`KeyObject.from(key).export()`),
 * kept beside the `CryptoKey` and zeroed once it is garbage. Handing
 * `node:crypto` a `KeyObject` instead cost 10 % more CPU per secret read,
 * because Deno exports its bytes into a new buffer on every call.
 * `docs/CRYPTO.md` says what this changes (nothing a JavaScript caller
 * could not already do: Deno lets any code read a non-extractable key that
 * way).
 *
 * The functions stay `async`, whichever path runs, so callers never depend
 * on which one did.
 *
 * Sealed record format (also the cipher API's octet-stream body):
 *
 * ```
 * 0x01 ‖ nonce (12 bytes) ‖ ciphertext (same length as plaintext) ‖ tag (16 bytes)
 * ```
 *
 * @module
 */

import { createCipheriv, createDecipheriv, KeyObject } from "node:crypto";
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
 * Largest input (plaintext, or ciphertext without its tag) encrypted or
 * decrypted synchronously with `node:crypto`; larger ones go to WebCrypto.
 * Around this size both cost the same CPU (see the module documentation).
 */
export const SYNC_LIMIT = 2048;

/**
 * An AES-256 key: raw bytes, or a `CryptoKey` from {@linkcode importAeadKey}
 * (imported once, faster, and not readable through the WebCrypto API).
 */
export type AeadKey = Uint8Array | CryptoKey;

/** Every open/decrypt failure looks alike, whatever went wrong. */
const OPEN_FAILED = "decryption failed";

const EMPTY = new Uint8Array(0);
const ALGORITHM = "aes-256-gcm";
const GCM_OPTIONS = { authTagLength: TAG_LENGTH };

/**
 * The bytes of each `CryptoKey` used with `node:crypto` so far. Keyed
 * weakly: an entry goes when its `CryptoKey` does (a root key replaced or
 * cleared), and {@linkcode wipeOnCollect} zeroes the bytes then. A memo,
 * not configuration: it changes no result, only what a call costs.
 */
const keyBytes = new WeakMap<CryptoKey, Uint8Array>();

/** Zeroes a key's cached bytes once its `CryptoKey` is collected. */
const wipeOnCollect = new FinalizationRegistry<Uint8Array>((bytes) => bytes.fill(0));

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
  checkRawKey(raw);
  return await crypto.subtle.importKey(
    "raw",
    buffer(raw),
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

function checkRawKey(raw: Uint8Array): void {
  checkBytes("key", raw);
  if (raw.length !== KEY_LENGTH) {
    throw new CryptoError(`AES-256-GCM key must be ${KEY_LENGTH} bytes`);
  }
}

/** Throws unless `key` is 32 bytes or an AES-256-GCM `CryptoKey` for encrypt and decrypt. */
function checkKey(key: AeadKey): void {
  if (key instanceof Uint8Array) return checkRawKey(key);
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
}

async function toCryptoKey(key: AeadKey): Promise<CryptoKey> {
  return key instanceof Uint8Array ? await importAeadKey(key) : key;
}

/** What `node:crypto` takes for `key`: its bytes. */
function toNodeKey(key: AeadKey): Uint8Array {
  if (key instanceof Uint8Array) return key;
  let bytes = keyBytes.get(key);
  if (bytes === undefined) {
    const exported = KeyObject.from(key).export();
    bytes = new Uint8Array(exported);
    exported.fill(0);
    keyBytes.set(key, bytes);
    wipeOnCollect.register(key, bytes);
  }
  return bytes;
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
 * Encrypts with `node:crypto` into `out` at `offset` (ciphertext ‖ tag;
 * `out` has room for plaintext length + 16 bytes from there).
 */
function encryptSyncInto(
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Uint8Array,
  offset: number,
): void {
  const cipher = createCipheriv(ALGORITHM, toNodeKey(key), nonce, GCM_OPTIONS);
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  out.set(head, offset);
  const tail = cipher.final();
  out.set(tail, offset + head.length);
  out.set(cipher.getAuthTag(), offset + head.length + tail.length);
}

/** Decrypts ciphertext ‖ tag with `node:crypto`; `undefined` when it does not authenticate. */
function decryptSync(key: AeadKey, nonce: Uint8Array, data: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  const split = data.length - TAG_LENGTH;
  const decipher = createDecipheriv(ALGORITHM, toNodeKey(key), nonce, GCM_OPTIONS);
  decipher.setAAD(aad);
  decipher.setAuthTag(data.subarray(split));
  // The output is not authentic until final() succeeds: it never leaves
  // here before that, and is wiped when it fails.
  const head = decipher.update(data.subarray(0, split));
  let tail: Uint8Array;
  try {
    tail = decipher.final();
  } catch {
    head.fill(0);
    return undefined;
  }
  // A plain array of exactly the plaintext: node may hand out views of a
  // shared pool, which the caller's zeroing should not have to think about.
  const plaintext = new Uint8Array(head.length + tail.length);
  plaintext.set(head);
  plaintext.set(tail, head.length);
  head.fill(0);
  tail.fill(0);
  return plaintext;
}

async function encryptWebCrypto(
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  const out = await crypto.subtle.encrypt(gcmParams(nonce, aad), await toCryptoKey(key), buffer(plaintext));
  return new Uint8Array(out);
}

async function decryptWebCrypto(
  key: AeadKey,
  nonce: Uint8Array,
  data: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array | undefined> {
  const cryptoKey = await toCryptoKey(key);
  try {
    return new Uint8Array(await crypto.subtle.decrypt(gcmParams(nonce, aad), cryptoKey, buffer(data)));
  } catch {
    // The platform error says nothing useful and must not leak differences.
    return undefined;
  }
}

/**
 * @internal Both implementations with the same contract (ciphertext ‖ tag;
 * `undefined` for a failed decryption, inputs already checked), for tests
 * that check they agree. Use the exported functions.
 */
export const AEAD_IMPLEMENTATIONS = Object.freeze({
  sync: Object.freeze({
    encrypt(key: AeadKey, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      const out = new Uint8Array(plaintext.length + TAG_LENGTH);
      encryptSyncInto(key, nonce, plaintext, aad, out, 0);
      return out;
    },
    decrypt: decryptSync,
  }),
  webCrypto: Object.freeze({ encrypt: encryptWebCrypto, decrypt: decryptWebCrypto }),
});

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
  checkKey(key);
  if (plaintext.length > SYNC_LIMIT) return await encryptWebCrypto(key, nonce, plaintext, aad);
  return AEAD_IMPLEMENTATIONS.sync.encrypt(key, nonce, plaintext, aad);
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
  checkKey(key);
  if (ciphertext.length < TAG_LENGTH) throw new CryptoError(OPEN_FAILED);
  const plaintext = ciphertext.length - TAG_LENGTH > SYNC_LIMIT
    ? await decryptWebCrypto(key, nonce, ciphertext, aad)
    : decryptSync(key, nonce, ciphertext, aad);
  if (plaintext === undefined) throw new CryptoError(OPEN_FAILED);
  return plaintext;
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
  checkBytes("plaintext", plaintext);
  checkBytes("associated data", aad);
  checkKey(key);
  const nonce = drawRandom(random, NONCE_LENGTH);
  const out = new Uint8Array(SEALED_OVERHEAD + plaintext.length);
  out[0] = SEALED_VERSION;
  out.set(nonce, 1);
  if (plaintext.length > SYNC_LIMIT) {
    out.set(await encryptWebCrypto(key, nonce, plaintext, aad), 1 + NONCE_LENGTH);
  } else {
    encryptSyncInto(key, nonce, plaintext, aad, out, 1 + NONCE_LENGTH);
  }
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
    checkKey(key);
    throw new CryptoError(OPEN_FAILED);
  }
  return await decryptGcm(
    key,
    sealed.subarray(1, 1 + NONCE_LENGTH),
    sealed.subarray(1 + NONCE_LENGTH),
    aad,
  );
}
