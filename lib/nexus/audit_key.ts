/**
 * The audit key: what the audit chain's MACs are made with. Version v is
 * `HKDF-SHA-256(root key of version v, info = "spike/v1/audit")`, so nobody
 * without the root key can forge or re-chain records, and the key never
 * needs to be stored: whoever can rebuild the root key (Nexus from its
 * Keepers, an operator from recovery shards) can rebuild it.
 *
 * Keys are asked for by version because the root key rotates: records
 * carry `keyVersion`, Nexus signs under its write version's audit key, and
 * a record is checkable by whoever holds the root key of its version (a
 * Nexus while it holds that version, an operator with that version's
 * recovery files).
 *
 * @module
 */
import { type AuditMacKey, createAuditMacKey } from "../audit/chain_format.ts";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { RootKeyState } from "./root_key_state.ts";

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

/**
 * The audit keys of the root keys Nexus holds: new records are signed under
 * the write version's (it changes when a rotation switches new data to the
 * new key, see `RootKeyState.onWriteKeyChange`); a version no longer held
 * (retired by a rotation) has none here.
 */
export function rootKeyAuditKeys(keys: RootKeyState): AuditKeySource {
  return {
    currentVersion: () => keys.ready ? keys.writeVersion : undefined,
    key(version) {
      if (!keys.holds(version)) return undefined;
      return keys.withRootKey((root) => deriveAuditKey(root, version), version);
    },
  };
}
