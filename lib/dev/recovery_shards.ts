/**
 * The recovery shards a development stack keeps beside its data, so that a
 * restart brings the same secrets back without a human: saved once after
 * Bootstrap (`spike operator recover`'s files), sent back to a Nexus that
 * came up without its key (`spike operator restore`). `spike dev` and the
 * compose demo (`spike dev unlock`) both do this. Development only: in
 * production the shards are kept offline, apart from the data.
 *
 * @module
 */
import { join } from "node:path";
import type { NexusClient } from "../client/nexus_client.ts";
import { zeroize } from "../crypto/zeroize.ts";
import { formatRecoveryShard, parseRecoveryShard } from "../pilot/recovery_file.ts";
import { DevStackError } from "./errors.ts";

/** One saved shard. */
export interface SavedShard {
  /** Share index (1-based). */
  readonly index: number;
  /** The shard; the caller zeroes it. */
  readonly shard: Uint8Array;
}

const SHARD_FILE = /^spike\.recovery\.\d+\.txt$/;

/** The shards saved in `dir` (none when it does not exist), by index. */
export async function readSavedShards(dir: string): Promise<SavedShard[]> {
  const shards: SavedShard[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!SHARD_FILE.test(entry.name)) continue;
      try {
        shards.push(parseRecoveryShard(await Deno.readTextFile(join(dir, entry.name))));
      } catch {
        for (const { shard } of shards) zeroize(shard);
        throw new DevStackError(`${join(dir, entry.name)} is not a recovery shard; remove it or the whole directory`);
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return shards;
    throw error;
  }
  return shards.sort((a, b) => a.index - b.index);
}

/**
 * Sends saved shards to Nexus (as the Pilot restore role) until it rebuilds
 * its key. Resolves `restored`, or `already` when Nexus held its key and
 * confirmed the first shard belongs to it. Zeroes every shard.
 */
export async function restoreFromShards(
  nexus: NexusClient,
  shards: readonly SavedShard[],
  threshold: number,
): Promise<"restored" | "already"> {
  try {
    for (const { index, shard } of shards.slice(0, threshold)) {
      const progress = await nexus.restore(index, shard);
      if (progress.restored) return progress.collected === 0 ? "already" : "restored";
    }
    throw new DevStackError("Nexus did not accept the saved recovery shards");
  } catch (error) {
    if (error instanceof DevStackError) throw error;
    throw new DevStackError(`restoring the root key failed: ${(error as Error).message}`);
  } finally {
    for (const { shard } of shards) zeroize(shard);
  }
}

/** Asks Nexus for every shard (as the Pilot recover role) and writes them into `dir`, mode 0600. */
export async function saveRecoveryShards(nexus: NexusClient, dir: string): Promise<number> {
  const shards = await nexus.recover();
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [index, shard] of shards) {
      const file = join(dir, `spike.recovery.${index}.txt`);
      // Written aside and renamed, so a crash never leaves half a shard behind.
      await Deno.writeTextFile(`${file}.partial`, formatRecoveryShard(index, shard) + "\n", { mode: 0o600 });
      await Deno.rename(`${file}.partial`, file);
    }
    return shards.size;
  } finally {
    for (const shard of shards.values()) zeroize(shard);
  }
}
