/**
 * Writes a rendered file so that a reader sees either the old content or
 * the new, never a part: the bytes go to a temporary file in the same
 * directory (same file system, so the rename is atomic), are flushed to disk,
 * get their mode and owner, and only then replace the destination by rename.
 * The directory is flushed too, so the rename survives a crash. On any
 * failure the temporary file is removed and the destination is untouched.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { FileOwner } from "./config.ts";

/** How the file is written. */
export interface WriteOptions {
  /** Permission bits (the umask does not apply). */
  readonly mode: number;
  /** Numeric owner to set, when given (needs the privilege to chown). */
  readonly owner?: FileOwner;
}

/** What a destination holds now. */
export interface ExistingFile {
  /** Its bytes. */
  readonly bytes: Uint8Array;
  /** Its permission bits. */
  readonly mode: number;
  /** Its owner. */
  readonly uid: number | null;
  /** Its group. */
  readonly gid: number | null;
}

/** File operations the agent uses; {@linkcode realFiles} by default. */
export interface FileOps {
  /** Replaces `path` atomically with `data`. */
  write(path: string, data: Uint8Array, options: WriteOptions): Promise<void>;
  /** The current file, or `undefined` when there is none. */
  read(path: string): Promise<ExistingFile | undefined>;
  /** Removes `path`; a missing file is fine. */
  remove(path: string): Promise<void>;
}

/** Replaces `path` with `data` atomically (see the module doc). Creates missing parent directories (0755). */
export async function writeFileAtomic(path: string, data: Uint8Array, options: WriteOptions): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
  const temp = join(dir, `.${basename(path)}.${suffix}.tmp`);
  // Created 0600 whatever the final mode, so no one can open it while it is written.
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  let renamed = false;
  try {
    try {
      let offset = 0;
      while (offset < data.length) offset += await file.write(data.subarray(offset));
      await file.sync();
      await Deno.chmod(temp, options.mode);
      if (options.owner) await Deno.chown(temp, options.owner.uid, options.owner.gid ?? null);
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
    renamed = true;
    await syncDirectory(dir);
  } finally {
    if (!renamed) await Deno.remove(temp).catch(() => {});
  }
}

/** Flushes a directory entry change to disk; file systems that refuse it are left be. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Some file systems (and platforms) cannot fsync a directory; the rename itself is still atomic.
  } finally {
    handle?.close();
  }
}

/** The real file system. */
export const realFiles: FileOps = Object.freeze({
  write: writeFileAtomic,
  async read(path: string): Promise<ExistingFile | undefined> {
    try {
      const [bytes, info] = await Promise.all([Deno.readFile(path), Deno.stat(path)]);
      return { bytes, mode: (info.mode ?? 0) & 0o777, uid: info.uid, gid: info.gid };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  },
  async remove(path: string): Promise<void> {
    await Deno.remove(path).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  },
});
