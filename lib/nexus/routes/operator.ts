/**
 * Break-glass routes: `/v1/operator/recover` hands the Pilot recover role
 * every Shamir shard; `/v1/operator/restore` takes shards back one at a time
 * from the Pilot restore role until the root key can be rebuilt. Sent to a
 * Nexus that already holds its key, a shard is checked against that key:
 * `restored: true` (with nothing collected) when it belongs to it, a 400
 * when it does not. SPIKE collects it instead and, once it has had enough
 * shards, answers `restored: true` without looking.
 *
 * @module
 */
import { ApiError, badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { CryptoError } from "../../crypto/errors.ts";
import { constantTimeEqual } from "../../crypto/constant_time.ts";
import { isValidScalar, shareAt, splitSecret } from "../../crypto/shamir.ts";
import { zeroize } from "../../crypto/zeroize.ts";
import { parseJsonBody } from "../../api/body.ts";
import { installRootKey } from "../key_installer.ts";
import type { NexusDeps } from "../deps.ts";
import type { Route } from "../route.ts";

/** Whether `shard` is share `index` of the root key Nexus holds (compared in constant time). */
function shardOfHeldKey(deps: NexusDeps, index: number, shard: Uint8Array): boolean {
  const expected = deps.keys.withRootKey((root) => shareAt(root, index, deps.settings.shamirThreshold));
  try {
    return constantTimeEqual(expected, shard);
  } finally {
    zeroize(expected);
  }
}

/** The operator routes. */
export const operatorRoutes: readonly Route[] = [
  {
    path: PATHS.recover,
    action: "",
    // Gated by hand below so the role check (401) comes before readiness.
    needsRootKey: false,
    admit: (caller) => caller.recover,
    handle(input) {
      v.object(parseJsonBody(input.body));
      const { deps } = input;
      if (!deps.keys.ready) throw new ApiError("state_not_ready");
      const shares = deps.keys.withRootKey((root) =>
        splitSecret(root, deps.settings.shamirShares, deps.settings.shamirThreshold)
      );
      const shards: Record<string, number[]> = {};
      for (const share of shares) {
        shards[String(share.index)] = Array.from(share.value);
        zeroize(share.value);
      }
      deps.log.warn("recovery shards handed out", { caller: input.caller.spiffeId });
      return Promise.resolve({ shards });
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
      const shard = v.shardBytes(b.shard);
      try {
        if (shard.every((byte) => byte === 0)) throw badRequest("shard is all zeros");
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
            throw badRequest("Nexus holds its root key and this shard is not one of it");
          }
          return { collected: 0, remaining: 0, restored: true };
        }
        // Collecting a shard (and maybe installing the key) changes state: announce it first.
        await input.audit.beforeChange?.();
        let added;
        try {
          added = deps.restore.add(index, shard);
        } catch (error) {
          // Shares that combine to no valid key: the operator's input, not our fault.
          if (error instanceof CryptoError) throw badRequest("the shards do not combine into a root key; start again");
          throw error;
        }
        const { progress, rootKey } = added;
        if (!rootKey) return { ...progress };
        try {
          if (await installRootKey(deps, rootKey) === "mismatch") {
            throw badRequest("the shards do not rebuild the root key of this Nexus's data; start again");
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
];
