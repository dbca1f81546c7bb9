/**
 * Recovery shard files. The shard line is SPIKE's Pilot format,
 * `spike:<index>:<64 hex>`, unchanged and first, so SPIKE's tools (and
 * older builds of ours, which read one line) still read the file. A second
 * line **[ours]** is a comment naming the root key version the shard
 * belongs to:
 *
 * ```
 * spike:1:3f9c…
 * # spike root key version 2; shard 1 of 3, 2 needed; written 2026-12-01T10:00:00.000Z
 * ```
 *
 * A file without the comment (SPIKE's, or written before key versions)
 * still restores; Nexus then learns the version from the shards themselves.
 *
 * @module
 */
import { badRequest } from "../api/errors.ts";

/** Formats a shard as `spike:<index>:<hex>`. */
export function formatRecoveryShard(index: number, shard: Uint8Array): string {
  let hex = "";
  for (const byte of shard) hex += byte.toString(16).padStart(2, "0");
  return `spike:${index}:${hex}`;
}

/** What a recovery file says besides the shard. */
export interface RecoveryFileInfo {
  /** The root key version the shard belongs to. */
  readonly keyVersion: number;
  /** Shards made. */
  readonly shares: number;
  /** Shards needed. */
  readonly threshold: number;
  /** When the file was written. */
  readonly writtenAt: Date;
}

/** The whole text of a recovery file: the shard line, then the comment naming its key version. */
export function formatRecoveryFile(index: number, shard: Uint8Array, info: RecoveryFileInfo): string {
  return `${formatRecoveryShard(index, shard)}\n` +
    `# spike root key version ${info.keyVersion}; shard ${index} of ${info.shares}, ${info.threshold} needed; ` +
    `written ${info.writtenAt.toISOString()}\n`;
}

/**
 * Parses `spike:<index>:<64 hex chars>` (surrounding blanks ignored).
 * Throws an error that never quotes the input (it is key material).
 */
export function parseRecoveryShard(text: string): { index: number; shard: Uint8Array } {
  const match = /^spike:(\d{1,4}):([0-9a-fA-F]{64})$/.exec(text.trim());
  if (!match) throw badRequest("a recovery shard looks like spike:<index>:<64 hex characters>");
  const index = Number(match[1]);
  if (index < 1 || index > 1000) throw badRequest("the shard index must be from 1 to 1000");
  const shard = new Uint8Array(32);
  for (let i = 0; i < 32; i++) shard[i] = parseInt(match[2]!.slice(i * 2, i * 2 + 2), 16);
  return { index, shard };
}

/**
 * Parses a recovery file (or a single pasted shard line): the one
 * `spike:` line, and the key version from the comment when there is one.
 * Blank lines and other comments are ignored.
 */
export function parseRecoveryFile(text: string): { index: number; shard: Uint8Array; keyVersion?: number } {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
  const shardLines = lines.filter((line) => !line.startsWith("#"));
  if (shardLines.length !== 1) throw badRequest("a recovery file holds exactly one spike:<index>:<hex> line");
  const parsed = parseRecoveryShard(shardLines[0]!);
  const version = lines.map((line) => /^#.*\broot key version (\d{1,9})\b/.exec(line)?.[1]).find((v) => v);
  return version === undefined ? parsed : { ...parsed, keyVersion: Number(version) };
}
