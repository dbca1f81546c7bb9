/**
 * The one way a root key enters Nexus (Keepers, restore, tests): it must
 * match the check value stored with the data, if there is one.
 *
 * @module
 */
import type { NexusDeps } from "./deps.ts";
import { checkRootKey, writeRootKeyCheck } from "./key_check.ts";

/** Result of offering a root key to Nexus. */
export type InstallResult = "installed" | "mismatch";

/**
 * Installs `rootKey` after checking it against the store. A first key
 * writes the check value; a key that does not match it is refused, so a
 * wrong set of shards can never make Nexus serve (or write) under the wrong key.
 */
export async function installRootKey(
  deps: Pick<NexusDeps, "store" | "keys" | "random" | "log">,
  rootKey: Uint8Array,
): Promise<InstallResult> {
  if (deps.store) {
    const check = await checkRootKey(deps.store, rootKey);
    if (check === "mismatch") {
      deps.log.error("refused a root key that does not match the stored data");
      return "mismatch";
    }
    if (check === "absent") await writeRootKeyCheck(deps.store, rootKey, deps.random);
  }
  await deps.keys.install(rootKey);
  deps.log.info("root key installed");
  return "installed";
}
