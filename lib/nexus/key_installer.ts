/**
 * The one way a root key enters Nexus (Keepers, restore, tests): it must
 * match the check value stored for one of the versions the store uses now.
 *
 * @module
 */
import { KeyPurpose } from "../crypto/kdf.ts";
import type { NexusDeps } from "./deps.ts";
import { writeRootKeyCheck } from "./key_check.ts";
import { identifyRootKey, retiredKeyMessage, versionsNeeded } from "./key_versions.ts";
import { sealLegacyPolicies } from "./legacy_policies.ts";
import { importDerivedKey } from "./root_key_state.ts";

/** Result of offering a root key to Nexus. */
export type InstallResult = "installed" | "pending" | "mismatch" | "retired";

/** What became of an offered key. */
export type KeyOffer =
  /** Nexus holds every version it needs and serves (the key was version `version`). */
  | { readonly result: "installed"; readonly version: number }
  /** Held; a rotation is in progress and Nexus still needs another version to serve. */
  | { readonly result: "pending"; readonly version: number }
  /** Not a key of this store's data. */
  | { readonly result: "mismatch" }
  /** A key of this store that a rotation retired: its data is sealed under a later version now. */
  | { readonly result: "retired"; readonly version: number; readonly retiredAt?: Date };

type InstallDeps = Pick<NexusDeps, "store" | "keys" | "random" | "log">;

/** {@linkcode offerRootKey}, reduced to its result. */
export async function installRootKey(deps: InstallDeps, rootKey: Uint8Array): Promise<InstallResult> {
  return (await offerRootKey(deps, rootKey)).result;
}

/**
 * Takes `rootKey` if it is a version the store uses now (its check value
 * opens), so a wrong set of shards can never make Nexus serve (or write)
 * under the wrong key. A new store gets the check value of version 1 from
 * the first key. A key that opens a check value from before policies were
 * sealed first seals the store's plain-text policies (`legacy_policies.ts`)
 * and rewrites the check in the current format; only then is it installed,
 * so no request is ever decided by a plain-text policy.
 *
 * While a rotation is sealing, Nexus needs both versions: the first one
 * offered is held ("pending") until the other arrives.
 */
export async function offerRootKey(deps: InstallDeps, rootKey: Uint8Array): Promise<KeyOffer> {
  const { store, keys, log } = deps;
  if (!store) {
    // Lite mode keeps no data: nothing to check against, and no rotation.
    await keys.install(rootKey, 1);
    log.info("root key installed", { keyVersion: 1 });
    return { result: "installed", version: 1 };
  }
  const state = await store.keyState();
  const identity = await identifyRootKey(store, state, rootKey);
  if (identity.kind === "unknown") {
    log.error("refused a root key that does not match the stored data");
    return { result: "mismatch" };
  }
  if (identity.kind === "retired") {
    log.error("refused a retired root key", { detail: retiredKeyMessage(identity.version, identity.retiredAt) });
    return {
      result: "retired",
      version: identity.version,
      ...(identity.retiredAt ? { retiredAt: identity.retiredAt } : {}),
    };
  }
  if (identity.kind === "new") {
    await writeRootKeyCheck(store, rootKey, deps.random, 1);
    await keys.install(rootKey, 1);
    log.info("root key installed", { keyVersion: 1 });
    return { result: "installed", version: 1 };
  }
  const { version, check } = identity;
  if (version === 1 && !check.policiesSealed) {
    await sealLegacyPolicies(store, await importDerivedKey(rootKey, KeyPurpose.policies), 1, deps.random, log);
    await writeRootKeyCheck(store, rootKey, deps.random, 1);
  }
  const needed = versionsNeeded(state);
  if (needed.required.length === 1 && needed.required[0] === version) {
    await keys.install(rootKey, version);
  } else {
    await keys.add(rootKey, version);
    if (needed.required.every((v) => keys.holds(v))) keys.useForWrites(needed.write);
  }
  if (!keys.ready) {
    log.info("root key version held; another version is needed while the rotation runs", { keyVersion: version });
    return { result: "pending", version };
  }
  log.info("root key installed", { keyVersion: version });
  return { result: "installed", version };
}
