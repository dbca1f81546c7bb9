/**
 * Rebuilds the root key from an operator's recovery files (what `spike
 * operator recover` wrote: `spike.recovery.<i>.txt`, one shard each), for
 * work done away from Nexus, such as checking the audit chain offline.
 * Every shard found is used; the caller zeroes the key it gets.
 *
 * @module
 */
import { join } from "node:path";
import { combineShares, type Share } from "../crypto/shamir.ts";
import { zeroize } from "../crypto/zeroize.ts";
import { parseRecoveryShard } from "./recovery_file.ts";

const RECOVERY_FILE = /^spike\.recovery\.\d+\.txt$/;

/** Rebuilds the root key from every recovery file in `dir`; throws with a reason (never shard data). */
export async function rootKeyFromRecoveryDir(dir: string): Promise<Uint8Array> {
  const shares: Share[] = [];
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && RECOVERY_FILE.test(entry.name)) names.push(entry.name);
    }
    if (names.length === 0) throw new Error(`no spike.recovery.<i>.txt files in ${dir}`);
    for (const name of names.sort()) {
      let parsed;
      try {
        parsed = parseRecoveryShard(await Deno.readTextFile(join(dir, name)));
      } catch {
        throw new Error(`${join(dir, name)} is not a recovery shard (spike:<index>:<64 hex characters>)`);
      }
      shares.push({ index: parsed.index, value: parsed.shard });
    }
    try {
      return combineShares(shares);
    } catch (error) {
      throw new Error(`the recovery files in ${dir} do not combine into a root key: ${(error as Error).message}`);
    }
  } finally {
    for (const share of shares) zeroize(share.value);
  }
}
