/**
 * The key management status an operator sees (`spike operator status`,
 * `/v1/operator/status` [ours]): root key versions, rotation progress,
 * which Keepers hold which versions, retired versions, tampered rows. No
 * key material, only numbers and names.
 *
 * @module
 */
import type { NexusDeps } from "./deps.ts";
import { retiredAt } from "./key_versions.ts";
import type { RotationStatus } from "./key_rotation.ts";
import type { KeeperView } from "./keeper_sync.ts";

/** The answer of `/v1/operator/status`. */
export interface KeyStatus {
  /** Whether Nexus holds every key it needs and serves. */
  readonly ready: boolean;
  /** Root key versions and the rotation. */
  readonly rotation: RotationStatus;
  /** Versions retired by earlier rotations, with when. */
  readonly retiredKeyVersions: readonly { readonly version: number; readonly retiredAt: string | null }[];
  /** The Keepers, as this Nexus last heard from them. */
  readonly keepers: readonly KeeperView[];
  /** Names of policy rows failing authentication in the current generation (empty when unknown). */
  readonly tamperedPolicies: readonly string[];
}

/** Gathers the status (the store must answer). */
export async function keyStatus(deps: NexusDeps): Promise<KeyStatus> {
  const store = deps.store!;
  const rotation = deps.keyManager.rotation ? await deps.keyManager.rotation.status() : await plainStatus(deps);
  const retired = [];
  for (let version = 1; version < rotation.keyVersion; version++) {
    retired.push({ version, retiredAt: (await retiredAt(store, version))?.toISOString() ?? null });
  }
  const tampered = deps.keys.ready ? (await deps.policies.generation(store)).tampered : [];
  return {
    ready: deps.keys.ready,
    rotation,
    retiredKeyVersions: retired,
    keepers: deps.keyManager.keepers(),
    tamperedPolicies: tampered,
  };
}

/** The rotation status of a Nexus without a rotation coordinator (no Keepers). */
async function plainStatus(deps: NexusDeps): Promise<RotationStatus> {
  const state = await deps.store!.keyState();
  const left = state.phase === "sealing" && state.targetVersion !== null
    ? await deps.store!.countSealedBelow(state.targetVersion)
    : undefined;
  return {
    keyVersion: state.currentVersion,
    writeKeyVersion: deps.keys.ready ? deps.keys.writeVersion : null,
    heldKeyVersions: deps.keys.heldVersions(),
    phase: state.phase,
    targetKeyVersion: state.targetVersion,
    startedAt: state.startedAt?.toISOString() ?? null,
    driver: state.phase === "idle" ? null : "other",
    toReseal: state.toReseal,
    remaining: left ? left.secretVersions + left.policies : 0,
    resealedHere: 0,
  };
}
