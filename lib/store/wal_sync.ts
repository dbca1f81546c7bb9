/**
 * The fsync that makes a group of commits durable, off the event loop.
 *
 * `node:sqlite` is synchronous: at `synchronous=FULL` every `COMMIT` waits
 * for its fsync on the calling thread, and the whole process waits with it.
 * The in-thread store instead commits at `synchronous=NORMAL` (the commit's
 * WAL frames are written to the OS, not yet to the disk) and then calls
 * `sync()`: an `fdatasync` of the WAL file on a thread of Deno's blocking
 * pool, while the event loop serves other requests. Once it resolves, every
 * frame written before it started is on stable storage, which is exactly
 * what `FULL`'s fsync at commit guarantees; one call covers every commit of
 * a group.
 *
 * A lone write may be fsynced on the calling thread instead, where that is
 * faster and blocks nothing for long (`fsync_placement.ts`).
 *
 * This relies on SQLite keeping its WAL file open, under the same path,
 * for as long as any connection is open (it deletes the file only when the
 * last connection closes; a checkpoint restarts or truncates it in place),
 * and on the fsync of any descriptor of a file flushing that file's data.
 *
 * @module
 */
import { dirname } from "node:path";

/** An open handle on a database's WAL file. */
export interface WalSync {
  /** `fdatasync` of the WAL, off the calling thread; rejects on an I/O error. */
  sync(): Promise<void>;
  /** `fdatasync` of the WAL on the calling thread (it waits for the disk); throws on an I/O error. */
  syncNow(): void;
  /** Closes the handle (the connection that owns the WAL stays open). */
  close(): void;
}

/**
 * Opens the WAL of `databaseFile` (`<file>-wal`), which an open WAL-mode
 * connection to it must have created, and fsyncs its directory once so the
 * WAL's directory entry is durable too.
 */
export function openWalSync(databaseFile: string): WalSync {
  let wal: Deno.FsFile;
  try {
    wal = Deno.openSync(`${databaseFile}-wal`, { read: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(`store: ${databaseFile}-wal is missing; the database is not open in WAL mode`);
  }
  try {
    const dir = Deno.openSync(dirname(databaseFile), { read: true });
    try {
      dir.syncSync();
    } finally {
      dir.close();
    }
  } catch (error) {
    wal.close();
    throw error;
  }
  return {
    sync: () => wal.syncData(),
    syncNow: () => wal.syncDataSync(),
    close: () => wal.close(),
  };
}
