/**
 * Root key versions as the store describes them: which versions a Nexus
 * needs to serve in each phase of a rotation, where the check value of each
 * version is kept, when a version was retired, and which version a key is.
 *
 * @module
 */
import type { KeyState, Store } from "../store/types.ts";
import { checkRootKey, type KeyCheck, openKeyCheck } from "./key_check.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The versions a Nexus needs for a key state. */
export interface NeededVersions {
  /** Without these it cannot serve: reads of some records need them, or writes do. */
  readonly required: readonly number[];
  /** Held if possible (the target of a rotation being prepared), not needed to serve. */
  readonly optional: readonly number[];
  /** The version new data is sealed under. */
  readonly write: number;
}

/**
 * Idle: the current version. Preparing: the current version (nothing is
 * sealed under the target yet; it is held if it can be). Sealing: both, and
 * new data goes under the target.
 */
export function versionsNeeded(state: KeyState): NeededVersions {
  const { currentVersion: current, targetVersion: target } = state;
  if (state.phase === "sealing" && target !== null) {
    return { required: [current, target], optional: [], write: target };
  }
  if (state.phase === "preparing" && target !== null) {
    return { required: [current], optional: [target], write: current };
  }
  return { required: [current], optional: [], write: current };
}

/** Meta key of the retirement time of root key version `version`. */
export function retiredMetaKey(version: number): string {
  return `root_key_retired.v${version}`;
}

/** Records when version `version` was retired (idempotent: an earlier record is kept). */
export async function recordRetired(store: Store, version: number, at: Date): Promise<void> {
  if (await store.getMeta(retiredMetaKey(version))) return;
  await store.putMeta(retiredMetaKey(version), encoder.encode(at.toISOString()));
}

/** When version `version` was retired, or `undefined` (not retired, or not recorded). */
export async function retiredAt(store: Store, version: number): Promise<Date | undefined> {
  const bytes = await store.getMeta(retiredMetaKey(version));
  if (!bytes) return undefined;
  const date = new Date(decoder.decode(bytes));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Whether `rootKey` is version `version` according to its check value. While
 * a rotation runs, the target's check is the one in the key state (a meta
 * value under that version may be left from an attempt that was given up).
 */
export async function checkVersion(
  store: Store,
  state: KeyState,
  rootKey: Uint8Array,
  version: number,
): Promise<KeyCheck> {
  if (state.phase !== "idle" && version === state.targetVersion && state.targetCheck) {
    return await openKeyCheck(state.targetCheck, rootKey, version);
  }
  return await checkRootKey(store, rootKey, version);
}

/** What a root key is to the store. */
export type KeyIdentity =
  /** A version the store uses now (current or rotation target). */
  | { readonly kind: "live"; readonly version: number; readonly check: KeyCheck }
  /** A version the store no longer uses; its records were re-sealed under a later one. */
  | { readonly kind: "retired"; readonly version: number; readonly retiredAt?: Date }
  /** The store has no check value at all: a new store, version 1. */
  | { readonly kind: "new" }
  /** No version of this store. */
  | { readonly kind: "unknown" };

/** Which version of the store's root key `rootKey` is, if any. */
export async function identifyRootKey(store: Store, state: KeyState, rootKey: Uint8Array): Promise<KeyIdentity> {
  const { required, optional } = versionsNeeded(state);
  let anyCheck = false;
  for (const version of [...required, ...optional]) {
    const check = await checkVersion(store, state, rootKey, version);
    if (check.result === "match") return { kind: "live", version, check };
    if (check.result !== "absent") anyCheck = true;
  }
  for (let version = state.currentVersion - 1; version >= 1; version--) {
    const check = await checkRootKey(store, rootKey, version);
    if (check.result === "match") return { kind: "retired", version, retiredAt: await retiredAt(store, version) };
    if (check.result !== "absent") anyCheck = true;
  }
  if (!anyCheck && state.currentVersion === 1 && state.phase === "idle") return { kind: "new" };
  return { kind: "unknown" };
}

/** A sentence for an operator about a key of a retired version. */
export function retiredKeyMessage(version: number, at: Date | undefined): string {
  return `these shards rebuild root key version ${version}, retired${at ? ` on ${at.toISOString()}` : ""}: ` +
    "use recovery files made after that rotation";
}
