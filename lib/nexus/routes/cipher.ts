/**
 * `/v1/cipher/encrypt` and `/v1/cipher/decrypt`: encryption as a service,
 * in JSON mode (base64 fields) or `application/octet-stream` mode
 * (`0x01 ‖ nonce(12) ‖ ciphertext+tag`). Unlike SPIKE, JSON mode returns the
 * nonce, so its output can be decrypted again.
 *
 * @module
 */
import { ApiError, badRequest } from "../../api/errors.ts";
import { encodeBase64 } from "../../api/base64.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { decryptGcm, encryptGcm, open, seal } from "../../crypto/aead.ts";
import { zeroize } from "../../crypto/zeroize.ts";
import { CIPHER_PATH } from "../authorizer.ts";
import { parseJsonBody } from "../../api/body.ts";
import { authorize, type Route, type RouteInput } from "../route.ts";

/** Associated data for cipher API payloads (domain separation). */
const CIPHER_AAD = new TextEncoder().encode("spike/v1/cipher");
const OCTET_STREAM = "application/octet-stream";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

async function admitCipher(input: RouteInput): Promise<void> {
  if (input.caller.lite) return;
  await authorize(input, CIPHER_PATH, ["execute"]);
}

function checkSize(bytes: Uint8Array, input: RouteInput): void {
  if (bytes.length > input.deps.settings.maxCiphertextSize) throw new ApiError("api_payload_too_large");
}

function octets(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: { "content-type": OCTET_STREAM } });
}

/**
 * Checks the optional `algorithm` hint of JSON mode. SPIKE ignores it; its
 * pilot sends whatever `--algorithm` says. Every spelling of the one
 * algorithm served (AES-256-GCM: `AES-GCM`, `aes-256-gcm`, `AES_256_GCM`,
 * ...) is accepted; naming another algorithm is a 400 rather than getting
 * AES-GCM silently.
 */
function checkAlgorithm(value: unknown): void {
  if (value === undefined || value === null || value === "") return;
  const normalized = typeof value === "string" ? value.toUpperCase().replace(/[-_ ]/g, "") : "";
  if (normalized !== "AESGCM" && normalized !== "AES256GCM") {
    throw badRequest("algorithm must be AES-GCM (AES-256-GCM)");
  }
}

function cipherFailed(): ApiError {
  // Wrong key, tampered or truncated input all look the same to the caller.
  return badRequest("ciphertext could not be decrypted");
}

/**
 * Decrypts with the write key, then with the other root key version held
 * (during a rotation, ciphertexts made just before it began still open; once
 * the old key is dropped they no longer do, see docs/CRYPTO.md).
 */
async function withAnyKey(
  input: RouteInput,
  decrypt: (key: CryptoKey) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const { keys } = input.deps;
  const versions = [keys.writeVersion, ...keys.heldVersions().filter((v) => v !== keys.writeVersion)];
  for (const version of versions) {
    const key = keys.keysFor(version)?.cipher;
    if (!key) continue;
    try {
      return await decrypt(key);
    } catch {
      // Another version's key may open it.
    }
  }
  throw cipherFailed();
}

/** The cipher routes. */
export const cipherRoutes: readonly Route[] = [
  {
    path: PATHS.encrypt,
    action: "",
    needsRootKey: true,
    admit: () => true,
    async handle(input) {
      await admitCipher(input);
      const key = input.deps.keys.keys().cipher;
      if (input.contentType === OCTET_STREAM) {
        checkSize(input.body, input);
        return octets(await seal(key, input.body, CIPHER_AAD, input.deps.random));
      }
      const b = v.object(parseJsonBody(input.body));
      checkAlgorithm(b.algorithm);
      const plaintext = v.base64(b.plaintext, "plaintext");
      try {
        checkSize(plaintext, input);
        const nonce = input.deps.random(NONCE_BYTES);
        const ciphertext = await encryptGcm(key, nonce, plaintext, CIPHER_AAD);
        return { version: 1, nonce: encodeBase64(nonce), ciphertext: encodeBase64(ciphertext) };
      } finally {
        zeroize(plaintext);
      }
    },
  },
  {
    path: PATHS.decrypt,
    action: "",
    needsRootKey: true,
    admit: () => true,
    async handle(input) {
      await admitCipher(input);
      if (input.contentType === OCTET_STREAM) {
        checkSize(input.body, input);
        return octets(await withAnyKey(input, (key) => open(key, input.body, CIPHER_AAD)));
      }
      const b = v.object(parseJsonBody(input.body));
      if (b.version !== undefined && b.version !== 1) throw badRequest("version must be 1");
      checkAlgorithm(b.algorithm);
      const nonce = v.base64(b.nonce, "nonce");
      const ciphertext = v.base64(b.ciphertext, "ciphertext");
      if (nonce.length !== NONCE_BYTES) throw badRequest("nonce must be 12 bytes");
      if (ciphertext.length < TAG_BYTES) throw cipherFailed();
      checkSize(ciphertext, input);
      const plaintext = await withAnyKey(input, (key) => decryptGcm(key, nonce, ciphertext, CIPHER_AAD));
      try {
        return { plaintext: encodeBase64(plaintext) };
      } finally {
        zeroize(plaintext);
      }
    },
  },
];
