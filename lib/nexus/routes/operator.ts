/**
 * Break-glass routes: `/v1/operator/recover` hands the Pilot recover role
 * every Shamir shard; `/v1/operator/restore` takes shards back one at a time
 * from the Pilot restore role until the root key can be rebuilt. Sent to a
 * Nexus that already holds its key, a shard is checked against that key:
 * `restored: true` (with nothing collected) when it belongs to it, a 400
 * when it does not. SPIKE collects it instead and, once it has had enough
 * shards, answers `restored: true` without looking.
 *
 * Key versions **[ours]**: `recover` answers the root key version its
 * shards rebuild (`keyVersion`) and refuses while a rotation runs (the
 * shards would be of a key that is not settled yet); `restore` takes an
 * optional `keyVersion` (from the recovery file) and refuses shards of a
 * retired version with a `reason` naming it. `/v1/operator/rotate` starts a
 * rotation and `/v1/operator/status` reports on keys and rotation; both are
 * for the Pilot superuser only.
 *
 * @module
 */
import { ApiError, badRequest, refusal } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { CryptoError } from "../../crypto/errors.ts";
import { constantTimeEqual, isAllZero } from "../../crypto/constant_time.ts";
import { isValidScalar, shareAt, splitSecret } from "../../crypto/shamir.ts";
import { zeroize } from "../../crypto/zeroize.ts";
import { parseJsonBody } from "../../api/body.ts";
import { offerRootKey } from "../key_installer.ts";
import { keyStatus } from "../key_status.ts";
import { retiredAt, retiredKeyMessage, versionsNeeded } from "../key_versions.ts";
import type { NexusDeps } from "../deps.ts";
import { requireStore, type Route } from "../route.ts";

/** Whether `shard` is share `index` of a root key version Nexus holds (compared in constant time). */
function shardOfHeldKey(deps: NexusDeps, index: number, shard: Uint8Array): boolean {
  return deps.keys.heldVersions().some((version) => {
    const expected = deps.keys.withRootKey((root) => shareAt(root, index, deps.settings.shamirThreshold), version);
    try {
      return constantTimeEqual(expected, shard);
    } finally {
      zeroize(expected);
    }
  });
}

/** The optional `keyVersion` of a restore call (what the recovery file says). */
function optionalKeyVersion(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw badRequest("keyVersion must be a whole number from 1");
  }
  return value;
}

/**
 * Refuses a restore of shards whose recovery file names a version the data
 * is no longer under (before they are even collected).
 */
async function refuseRetired(deps: NexusDeps, keyVersion: number | undefined): Promise<void> {
  if (keyVersion === undefined || !deps.store) return;
  const state = await deps.store.keyState();
  const { required, optional } = versionsNeeded(state);
  if (required.includes(keyVersion) || optional.includes(keyVersion)) return;
  if (keyVersion < state.currentVersion) {
    deps.restore.reset();
    throw refusal(retiredKeyMessage(keyVersion, await retiredAt(deps.store, keyVersion)));
  }
  throw refusal(`this Nexus's data is under root key version ${state.currentVersion}, not ${keyVersion}`);
}

/** The operator routes. */
export const operatorRoutes: readonly Route[] = [
  {
    path: PATHS.recover,
    action: "",
    // Gated by hand below so the role check (401) comes before readiness.
    needsRootKey: false,
    admit: (caller) => caller.recover,
    async handle(input) {
      v.object(parseJsonBody(input.body));
      const { deps } = input;
      if (!deps.keys.ready) throw new ApiError("state_not_ready");
      const state = deps.store ? await deps.store.keyState() : undefined;
      if (state && state.phase !== "idle") {
        throw refusal(
          `a root key rotation to version ${state.targetVersion} is in progress: take recovery files once ` +
            "'spike operator status' says it finished",
        );
      }
      const keyVersion = deps.keys.writeVersion;
      const shares = deps.keys.withRootKey((root) =>
        splitSecret(root, deps.settings.shamirShares, deps.settings.shamirThreshold)
      );
      const shards: Record<string, number[]> = {};
      for (const share of shares) {
        shards[String(share.index)] = Array.from(share.value);
        zeroize(share.value);
      }
      deps.log.warn("recovery shards handed out", { caller: input.caller.spiffeId, keyVersion });
      return { shards, keyVersion, threshold: deps.settings.shamirThreshold };
    },
  },
  {
    path: PATHS.restore,
    action: "",
    needsRootKey: false,
    admit: (caller) => caller.restore,
    async handle(input) {
      const b = v.object(parseJsonBody(input.body));
      const { deps } = input;
      const index = b.id;
      if (typeof index !== "number" || !Number.isInteger(index) || index < 1 || index > deps.restore.maxIndex) {
        throw badRequest(`id must be a whole number from 1 to ${deps.restore.maxIndex}`);
      }
      const keyVersion = optionalKeyVersion(b.keyVersion);
      const shard = v.shardBytes(b.shard);
      try {
        if (isAllZero(shard)) throw badRequest("shard is all zeros");
        // Refused here, so a mistyped shard never sits in the session only
        // to make the combination fail later.
        if (!isValidScalar(shard)) throw badRequest("shard is not a scalar below the P-256 group order");
        if (deps.keys.ready) {
          // A shard that arrived while another call was installing the key
          // must not stay in memory.
          deps.restore.reset();
          // Nexus already holds its key: say whether this shard belongs to
          // it, rather than "restored" for a shard nobody looked at.
          if (!shardOfHeldKey(deps, index, shard)) {
            await refuseRetired(deps, keyVersion);
            throw refusal("Nexus holds its root key and this shard is not one of it");
          }
          return { collected: 0, remaining: 0, restored: true };
        }
        await refuseRetired(deps, keyVersion);
        // Collecting a shard (and maybe installing the key) changes state: announce it first.
        await input.audit.beforeChange?.();
        let added;
        try {
          added = deps.restore.add(index, shard);
        } catch (error) {
          // Shares that combine to no valid key: the operator's input, not our fault.
          if (error instanceof CryptoError) throw refusal("the shards do not combine into a root key; start again");
          throw error;
        }
        const { progress, rootKey } = added;
        if (!rootKey) return { ...progress };
        try {
          const offer = await offerRootKey(deps, rootKey);
          if (offer.result === "retired") throw refusal(retiredKeyMessage(offer.version, offer.retiredAt));
          if (offer.result === "mismatch") {
            throw refusal("the shards do not rebuild the root key of this Nexus's data; start again");
          }
          if (offer.result === "pending") {
            deps.log.warn(
              "root key restored; a rotation was in progress and the other key version must come " +
                "from the Keepers before Nexus serves",
              { keyVersion: offer.version },
            );
          }
        } finally {
          zeroize(rootKey);
        }
        deps.log.info("root key restored from operator shards");
        return { ...progress };
      } finally {
        zeroize(shard);
      }
    },
  },
  {
    path: PATHS.rotate,
    action: "",
    needsRootKey: true,
    admit: (caller) => caller.superuser,
    async handle(input) {
      v.object(parseJsonBody(input.body));
      const { deps } = input;
      requireStore(deps);
      const rotation = deps.keyManager.rotation;
      if (!rotation) {
        throw refusal("rotation needs Keepers (SPIKE_NEXUS_KEEPER_PEERS): the new key must be held outside Nexus");
      }
      input.audit.resource = "spike/system/root-key";
      // Claiming a rotation changes the key state (through the rotation's own store): announce it first.
      await input.audit.beforeChange?.();
      const { from, to } = await rotation.start();
      deps.log.warn("root key rotation requested", { caller: input.caller.spiffeId, from, to });
      return { from, to };
    },
  },
  {
    path: PATHS.keyStatus,
    action: "",
    needsRootKey: false,
    admit: (caller) => caller.superuser,
    async handle(input) {
      v.object(parseJsonBody(input.body));
      requireStore(input.deps);
      return { ...await keyStatus(input.deps) };
    },
  },
];
