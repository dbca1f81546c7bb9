/**
 * The recovery shard text format of SPIKE's Pilot: `spike:<index>:<64 hex>`.
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
