/**
 * Sealed check values kept in the store, one per root key version, so Nexus
 * can tell whether a root key (from Keepers, a restore, or a bootstrap) is
 * the one its data was written with — before it serves a single request
 * with a wrong key.
 *
 * Two formats exist. The first (`v1`, written before policies were sealed)
 * is the text "spike root key check v1" under associated data
 * `spike/v1/root-key-check`; the current one (`v2`) is "spike root key check
 * v2" bound to its key version. Which one opens also says whether the store
 * may still hold plain-text policies from before sealing: only a store
 * whose check is still `v1` may (see `legacy_policies.ts`). An attacker
 * cannot turn a `v2` check back into a `v1` one without the root key.
 *
 * @module
 */
import { open, seal } from "../crypto/aead.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Store } from "../store/types.ts";

/** Meta key of the check value of root key version 1 (the name from before key versions). */
export const KEY_CHECK_META = "root_key_check";

const encoder = new TextEncoder();
const LEGACY_TEXT = encoder.encode("spike root key check v1");
const LEGACY_AAD = encoder.encode("spike/v1/root-key-check");
const CHECK_TEXT = encoder.encode("spike root key check v2");

/** Associated data of a `v2` check value: binds the key version. */
function checkAad(version: number): Uint8Array {
  return encoder.encode(`spike/v2/root-key-check\0${version}`);
}

/** Meta key under which the check value of root key version `version` is stored. */
export function keyCheckMetaKey(version: number): string {
  return version === 1 ? KEY_CHECK_META : `${KEY_CHECK_META}.v${version}`;
}

/** Outcome of comparing a key with the stored check value. */
export type KeyCheckResult = "match" | "mismatch" | "absent";

/** What the stored check value says about a key. */
export interface KeyCheck {
  /** Whether the key opens the check value of its version (`absent`: there is none). */
  readonly result: KeyCheckResult;
  /**
   * On a match: whether the check is the current format, i.e. every policy
   * row is sealed and a plain-text row can only be tampering. `false` for a
   * store written before policies were sealed.
   */
  readonly policiesSealed: boolean;
}

/** Whether `rootKey` opens `stored`, the check value of version `version`. */
export async function openKeyCheck(
  stored: Uint8Array,
  rootKey: Uint8Array,
  version: number,
): Promise<KeyCheck> {
  const key = deriveKey(rootKey, KeyPurpose.keyCheck);
  try {
    if (await opensTo(key, stored, checkAad(version), CHECK_TEXT)) return { result: "match", policiesSealed: true };
    if (version === 1 && await opensTo(key, stored, LEGACY_AAD, LEGACY_TEXT)) {
      return { result: "match", policiesSealed: false };
    }
    return { result: "mismatch", policiesSealed: false };
  } finally {
    zeroize(key);
  }
}

/** Compares `rootKey` with the stored check value of version `version` (if any). */
export async function checkRootKey(store: Store, rootKey: Uint8Array, version = 1): Promise<KeyCheck> {
  const stored = await store.getMeta(keyCheckMetaKey(version));
  if (!stored) return { result: "absent", policiesSealed: false };
  return await openKeyCheck(stored, rootKey, version);
}

/** The check value of `rootKey` as version `version`, current format. */
export async function sealKeyCheck(rootKey: Uint8Array, version: number, random: RandomBytes): Promise<Uint8Array> {
  const key = deriveKey(rootKey, KeyPurpose.keyCheck);
  try {
    return await seal(key, CHECK_TEXT, checkAad(version), random);
  } finally {
    zeroize(key);
  }
}

/** Stores the check value for `rootKey` as version `version` (current format), replacing any previous one. */
export async function writeRootKeyCheck(
  store: Store,
  rootKey: Uint8Array,
  random: RandomBytes,
  version = 1,
): Promise<void> {
  await store.putMeta(keyCheckMetaKey(version), await sealKeyCheck(rootKey, version, random));
}

/**
 * The check value in the format written before policies were sealed. Only
 * tests use it, to build a store as an older build left it.
 */
export async function sealLegacyKeyCheck(rootKey: Uint8Array, random: RandomBytes): Promise<Uint8Array> {
  const key = deriveKey(rootKey, KeyPurpose.keyCheck);
  try {
    return await seal(key, LEGACY_TEXT, LEGACY_AAD, random);
  } finally {
    zeroize(key);
  }
}

async function opensTo(key: Uint8Array, stored: Uint8Array, aad: Uint8Array, text: Uint8Array): Promise<boolean> {
  let plain: Uint8Array | undefined;
  try {
    plain = await open(key, stored, aad);
    return constantTimeEqual(plain, text);
  } catch {
    return false;
  } finally {
    zeroize(plain);
  }
}
