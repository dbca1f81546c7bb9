/**
 * A sealed check value kept in the store so Nexus can tell whether a root
 * key (from Keepers, a restore, or a bootstrap) is the one its data was
 * written with — before it serves a single request with a wrong key.
 *
 * @module
 */
import { open, seal } from "../crypto/aead.ts";
import { deriveKey } from "../crypto/kdf.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Store } from "../store/types.ts";

/** Meta key under which the check value is stored. */
export const KEY_CHECK_META = "root_key_check";
const CHECK_TEXT = new TextEncoder().encode("spike root key check v1");
const CHECK_AAD = new TextEncoder().encode("spike/v1/root-key-check");

/** Outcome of comparing a key with the stored check value. */
export type KeyCheckResult = "match" | "mismatch" | "absent";

/** Compares `rootKey` with the stored check value (if any). */
export async function checkRootKey(store: Store, rootKey: Uint8Array): Promise<KeyCheckResult> {
  const stored = await store.getMeta(KEY_CHECK_META);
  if (!stored) return "absent";
  const key = deriveKey(rootKey, "key-check");
  try {
    const text = await open(key, stored, CHECK_AAD);
    zeroize(text);
    return "match";
  } catch {
    return "mismatch";
  } finally {
    zeroize(key);
  }
}

/** Stores the check value for `rootKey`, replacing any previous one. */
export async function writeRootKeyCheck(store: Store, rootKey: Uint8Array, random: RandomBytes): Promise<void> {
  const key = deriveKey(rootKey, "key-check");
  try {
    await store.putMeta(KEY_CHECK_META, await seal(key, CHECK_TEXT, CHECK_AAD, random));
  } finally {
    zeroize(key);
  }
}
