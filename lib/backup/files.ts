/**
 * File handling for backups: written under a temporary name with mode 0600
 * and renamed into place only when complete (so a half-written backup never
 * sits under the name an operator will restore from), hashed while written,
 * and read back line by line.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { BackupError } from "./format.ts";

/** The manifest that goes beside backup `file`. */
export function manifestPathOf(file: string): string {
  return `${file}.manifest.json`;
}

/** Throws unless nothing exists at `path` (a backup never overwrites anything). */
export async function requireAbsent(path: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  throw new BackupError(`${path} already exists; choose another name (a backup never overwrites a file)`);
}

/** A new file written under `<path>.partial`, renamed to `path` by `commit`. */
export class PendingFile {
  readonly #path: string;
  readonly #partial: string;
  readonly #file: Deno.FsFile;
  readonly #hash: Hash = createHash("sha256");
  readonly #encoder = new TextEncoder();
  #buffered: Uint8Array[] = [];
  #bufferedBytes = 0;

  private constructor(path: string, partial: string, file: Deno.FsFile) {
    this.#path = path;
    this.#partial = partial;
    this.#file = file;
  }

  /** Creates `<path>.partial` (mode 0600); fails when it or `path` exists. */
  static async create(path: string): Promise<PendingFile> {
    await requireAbsent(path);
    const partial = `${path}.partial`;
    try {
      const file = await Deno.open(partial, { createNew: true, write: true, mode: 0o600 });
      return new PendingFile(path, partial, file);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new BackupError(`${partial} exists: another backup is being written there, or one failed; remove it`);
      }
      throw error;
    }
  }

  /** Appends `text` (hashed; flushed in large writes). */
  async write(text: string): Promise<void> {
    const bytes = this.#encoder.encode(text);
    this.#hash.update(bytes);
    this.#buffered.push(bytes);
    this.#bufferedBytes += bytes.length;
    if (this.#bufferedBytes >= 1 << 20) await this.#flush();
  }

  /** SHA-256 (hex) of everything written so far. */
  digestSoFar(): string {
    return this.#hash.copy().digest("hex");
  }

  /** Flushes, syncs to disk, closes and renames into place. */
  async commit(): Promise<void> {
    await this.#flush();
    await this.#file.sync();
    this.#file.close();
    await requireAbsent(this.#path);
    await Deno.rename(this.#partial, this.#path);
  }

  /** Closes and removes the partial file (after a failure). */
  async abandon(): Promise<void> {
    try {
      this.#file.close();
    } catch { /* already closed */ }
    await Deno.remove(this.#partial).catch(() => {});
  }

  async #flush(): Promise<void> {
    for (const chunk of this.#buffered) {
      let written = 0;
      while (written < chunk.length) written += await this.#file.write(chunk.subarray(written));
    }
    this.#buffered = [];
    this.#bufferedBytes = 0;
  }
}

/** Writes `text` to `path` (mode 0600) through a temporary file; `path` must not exist. */
export async function writeNewFile(path: string, text: string): Promise<void> {
  const pending = await PendingFile.create(path);
  try {
    await pending.write(text);
    await pending.commit();
  } catch (error) {
    await pending.abandon();
    throw error;
  }
}

/** SHA-256 (hex) of the whole file at `path`. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** One line of a file: its bytes without the newline, and whether a newline ended it. */
export interface FileLine {
  /** The line's bytes. */
  readonly bytes: Uint8Array;
  /** False only for a last line with no newline after it. */
  readonly terminated: boolean;
}

/** Yields the lines of the file at `path` as bytes, streaming. */
export async function* readLines(path: string): AsyncGenerator<FileLine> {
  using file = await Deno.open(path, { read: true });
  let pending: Uint8Array[] = [];
  for await (const chunk of file.readable) {
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
      pending.push(chunk.subarray(start, i));
      yield { bytes: concat(pending), terminated: true };
      pending = [];
      start = i + 1;
    }
    if (start < chunk.length) pending.push(chunk.slice(start));
  }
  if (pending.length > 0) yield { bytes: concat(pending), terminated: false };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
