/**
 * The audit key: what the audit chain's MACs are made with. Version v is
 * `HKDF-SHA-256(root key of version v, info = "spike/v1/audit")`, so nobody
 * without the root key can forge or re-chain records, and the key never
 * needs to be stored: whoever can rebuild the root key (Nexus from its
 * Keepers, an operator from recovery shards) can rebuild it.
 *
 * Keys are asked for by version so that root key rotation can add versions:
 * records carry `keyVersion`, and a rotation starts signing under the new
 * version while older records stay checkable under theirs. Today there is
 * one root key, version 1.
 *
 * @module
 */
import { type AuditMacKey, createAuditMacKey } from "../audit/chain_format.ts";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { RootKeyState } from "./root_key_state.ts";

/** The audit key version of the one root key Nexus holds until rotation exists. */
export const CURRENT_AUDIT_KEY_VERSION = 1;

/** Derives audit key `version` from `rootKey`, the root key of that version (the caller zeroes `rootKey`). */
export function deriveAuditKey(rootKey: Uint8Array, version: number): AuditMacKey {
  const raw = deriveKey(rootKey, KeyPurpose.audit);
  try {
    return createAuditMacKey(version, raw);
  } finally {
    zeroize(raw);
  }
}

/** Where audit keys come from, by version. */
export interface AuditKeySource {
  /** The version new records are signed under; `undefined` while no root key is loaded. */
  currentVersion(): number | undefined;
  /** A new key object for `version` (the caller destroys it), or `undefined` when this source has none. */
  key(version: number): AuditMacKey | undefined;
}

/** The audit keys of the root key Nexus holds (version 1). */
export function rootKeyAuditKeys(keys: RootKeyState): AuditKeySource {
  return {
    currentVersion: () => keys.ready ? CURRENT_AUDIT_KEY_VERSION : undefined,
    key(version) {
      if (!keys.ready || version !== CURRENT_AUDIT_KEY_VERSION) return undefined;
      return keys.withRootKey((root) => deriveAuditKey(root, version));
    },
  };
}
