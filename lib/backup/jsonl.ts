/**
 * The logical export: JSON lines, the same from SQLite and Postgres and
 * restorable into either. Line 1 is the header (the manifest without the
 * file's hash), then one line per secret, policy and meta value, and a last
 * line with the SHA-256 of every line before it — so truncation and any
 * change are caught before a restore touches the target.
 *
 * ```
 * {"type":"header","format":"spike-backup","formatVersion":2,"kind":"jsonl",...,"counts":{...}}
 * {"type":"secret","path":"app/db","revision":3,...,"versions":[{"version":1,...,"sealed":"<base64>"}]}
 * {"type":"policy","name":"web",...}
 * {"type":"meta","key":"root_key_check","value":"<base64>"}
 * {"type":"end","sha256":"<hex of all lines above>"}
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  BACKUP_FORMAT,
  BackupError,
  type BackupItem,
  type BackupManifest,
  checkManifest,
  countItem,
  decodeItem,
  describeCounts,
  encodeItem,
  NO_ROWS,
  sameCounts,
} from "./format.ts";
import { type PendingFile, readLines } from "./files.ts";

/** The manifest minus the hash of the file, as the first line carries it. */
export type BackupHeader = Omit<BackupManifest, "sha256">;

/** Writes header, items and end line to `file`. */
export async function writeJsonl(
  file: PendingFile,
  header: BackupHeader,
  items: AsyncIterable<BackupItem>,
): Promise<void> {
  await file.write(JSON.stringify({ type: "header", ...header }) + "\n");
  for await (const item of items) await file.write(JSON.stringify(encodeItem(item)) + "\n");
  await file.write(JSON.stringify({ type: "end", sha256: file.digestSoFar() }) + "\n");
}

/** Whether `prefix` (the first bytes of a file) looks like a logical export. */
export function looksLikeJsonl(prefix: Uint8Array): boolean {
  return new TextDecoder().decode(prefix).startsWith(`{"type":"header","format":"${BACKUP_FORMAT}"`);
}

/**
 * Reads the whole export once without keeping it: checks the header, every
 * line, the counts against the header and the end line's hash. Resolves the
 * header; throws `BackupError` at the first problem.
 */
export async function verifyJsonl(path: string): Promise<BackupHeader> {
  const hash = createHash("sha256");
  let header: BackupHeader | undefined;
  let counts = NO_ROWS;
  let ended = false;
  for await (const item of jsonlLines(path)) {
    if (ended) throw new BackupError(`${path}: lines after the end line`);
    if (item.kind === "header") header = item.header;
    else if (item.kind === "end") {
      if (item.sha256 !== hash.digest("hex")) {
        throw new BackupError(`${path}: the content does not match its checksum (the file was changed or damaged)`);
      }
      ended = true;
      continue;
    } else counts = countItem(counts, item.item);
    hash.update(item.raw);
    hash.update(NEWLINE);
  }
  if (!header) throw new BackupError(`${path} is empty`);
  if (!ended) throw new BackupError(`${path} ends before its end line: the backup is incomplete`);
  if (!sameCounts(counts, header.counts)) {
    throw new BackupError(
      `${path} holds ${describeCounts(counts)}, but its header says ${describeCounts(header.counts)}`,
    );
  }
  return header;
}

/** The items of an export, in order (call `verifyJsonl` first). */
export async function* jsonlItems(path: string): AsyncGenerator<BackupItem> {
  for await (const line of jsonlLines(path)) if (line.kind === "item") yield line.item;
}

const NEWLINE = new Uint8Array([0x0a]);

type Line =
  | { readonly kind: "header"; readonly header: BackupHeader; readonly raw: Uint8Array }
  | { readonly kind: "item"; readonly item: BackupItem; readonly raw: Uint8Array }
  | { readonly kind: "end"; readonly sha256: string; readonly raw: Uint8Array };

async function* jsonlLines(path: string): AsyncGenerator<Line> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let number = 0;
  for await (const { bytes, terminated } of readLines(path)) {
    number++;
    const where = `${path} line ${number}`;
    if (!terminated) throw new BackupError(`${where}: incomplete line (the backup is truncated)`);
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch {
      throw new BackupError(`${where}: not a JSON line`);
    }
    const type = (value as { type?: unknown } | null)?.type;
    if (number === 1) {
      if (type !== "header") throw new BackupError(`${path} is not a spike logical export (no header line)`);
      const { type: _, ...rest } = value as Record<string, unknown>;
      const header = checkManifest({ ...rest, sha256: "0".repeat(64) }, `${where} (header)`);
      if (header.kind !== "jsonl") throw new BackupError(`${where}: the header is not one of a logical export`);
      const { sha256: __, ...withoutHash } = header;
      yield { kind: "header", header: withoutHash, raw: bytes };
    } else if (type === "end") {
      const sha256 = (value as { sha256?: unknown }).sha256;
      if (typeof sha256 !== "string") throw new BackupError(`${where}: invalid end line`);
      yield { kind: "end", sha256, raw: bytes };
    } else if (type === "header") {
      throw new BackupError(`${where}: a second header`);
    } else {
      yield { kind: "item", item: decodeItem(value, where), raw: bytes };
    }
  }
}
