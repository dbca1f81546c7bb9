/**
 * Where the SQLite store keeps its file, and the file modes it insists on.
 * Both SQLite stores (in-thread and worker) prepare the file on the calling
 * thread before any connection opens it.
 *
 * @module
 */
import { join } from "node:path";

/** Name of the database file inside the data directory. */
export const SQLITE_FILE_NAME = "spike.db";

/**
 * Creates the data directory (0700) and `spike.db` (0600) when missing,
 * tightens a database file readable by group or others to 0600, and returns
 * the file's full path.
 */
export function prepareSqliteFile(dataDir: string): string {
  const file = join(dataDir, SQLITE_FILE_NAME);
  const posix = Deno.build.os !== "windows";
  try {
    Deno.statSync(dataDir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    Deno.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // mkdir's mode passes through the umask; set it exactly.
    if (posix) Deno.chmodSync(dataDir, 0o700);
  }
  try {
    Deno.openSync(file, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  // SQLite gives the -wal and -shm files the database file's mode, so this
  // one check covers all three.
  if (posix && ((Deno.statSync(file).mode ?? 0) & 0o077) !== 0) Deno.chmodSync(file, 0o600);
  return file;
}
