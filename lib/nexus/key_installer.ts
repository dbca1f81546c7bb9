/**
 * The one way a root key enters Nexus (Keepers, restore, tests): it must
 * match the check value stored with the data, if there is one.
 *
 * @module
 */
import { importAeadKey } from "../crypto/aead.ts";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { NexusDeps } from "./deps.ts";
import { checkRootKey, writeRootKeyCheck } from "./key_check.ts";
import { sealLegacyPolicies } from "./legacy_policies.ts";

/** Result of offering a root key to Nexus. */
export type InstallResult = "installed" | "mismatch";

/**
 * Installs `rootKey` after checking it against the store. A first key
 * writes the check value; a key that does not match it is refused, so a
 * wrong set of shards can never make Nexus serve (or write) under the wrong
 * key. A key that opens a check value from before policies were sealed
 * first seals the store's plain-text policies (`legacy_policies.ts`), then
 * rewrites the check value in the current format; only then is it
 * installed, so no request is ever decided by a plain-text policy.
 */
export async function installRootKey(
  deps: Pick<NexusDeps, "store" | "keys" | "random" | "log">,
  rootKey: Uint8Array,
): Promise<InstallResult> {
  if (deps.store) {
    const check = await checkRootKey(deps.store, rootKey);
    if (check.result === "mismatch") {
      deps.log.error("refused a root key that does not match the stored data");
      return "mismatch";
    }
    if (check.result === "match" && !check.policiesSealed) {
      const raw = deriveKey(rootKey, KeyPurpose.policies);
      try {
        await sealLegacyPolicies(deps.store, await importAeadKey(raw), 1, deps.random, deps.log);
      } finally {
        zeroize(raw);
      }
    }
    if (check.result === "absent" || !check.policiesSealed) await writeRootKeyCheck(deps.store, rootKey, deps.random);
  }
  await deps.keys.install(rootKey);
  deps.log.info("root key installed");
  return "installed";
}
