/**
 * Rebuilds the root key from an operator's recovery files (what `spike
 * operator recover` wrote: `spike.recovery.<i>.txt`, one shard each), for
 * work done away from Nexus, such as checking the audit chain offline.
 * Every shard found is used; the caller zeroes the key it gets. The files
 * name the root key version they rebuild (files from before rotation
 * existed name none: version 1); files of different versions are refused.
 *
 * @module
 */
import { join } from "node:path";
import { combineShares, type Share } from "../crypto/shamir.ts";
import { zeroize } from "../crypto/zeroize.ts";
import { parseRecoveryFile } from "./recovery_file.ts";

const RECOVERY_FILE = /^spike\.recovery\.\d+\.txt$/;

/** A root key rebuilt from recovery files, and the root key version it is. */
export interface RecoveredRootKey {
  /** The root key (the caller zeroes it). */
  readonly rootKey: Uint8Array;
  /** Its root key version, from the files' comment line. */
  readonly keyVersion: number;
}

/** Rebuilds the root key from every recovery file in `dir`; throws with a reason (never shard data). */
export async function rootKeyFromRecoveryDir(dir: string): Promise<RecoveredRootKey> {
  const shares: Share[] = [];
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && RECOVERY_FILE.test(entry.name)) names.push(entry.name);
    }
    if (names.length === 0) throw new Error(`no spike.recovery.<i>.txt files in ${dir}`);
    const versions = new Set<number>();
    for (const name of names.sort()) {
      let parsed;
      try {
        parsed = parseRecoveryFile(await Deno.readTextFile(join(dir, name)));
      } catch {
        throw new Error(`${join(dir, name)} is not a recovery shard (spike:<index>:<64 hex characters>)`);
      }
      shares.push({ index: parsed.index, value: parsed.shard });
      versions.add(parsed.keyVersion ?? 1);
    }
    if (versions.size > 1) {
      throw new Error(
        `the recovery files in ${dir} belong to different root key versions (${[...versions].sort().join(", ")})`,
      );
    }
    try {
      return { rootKey: combineShares(shares), keyVersion: [...versions][0]! };
    } catch (error) {
      throw new Error(`the recovery files in ${dir} do not combine into a root key: ${(error as Error).message}`);
    }
  } finally {
    for (const share of shares) zeroize(share.value);
  }
}
