/**
 * Opens one SQLite connection with the settings every spike connection
 * needs. Most of these PRAGMAs are per connection, so each store instance
 * (and each process) applies them itself.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** Default time a writer waits for another connection's lock, in ms. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * SQLite's `synchronous` levels a spike connection may run at. In WAL mode:
 * `FULL` fsyncs the WAL at every commit; `NORMAL` fsyncs only around
 * checkpoints (a commit is in the OS page cache when it returns); `OFF`
 * never fsyncs. What each means for a store is in `sqlite_durability.ts`.
 */
export type SynchronousPragma = "FULL" | "NORMAL" | "OFF";

/** How a connection is opened. */
export interface ConnectionOptions {
  /** How long a writer waits for another connection's lock, in ms (default 5000). */
  readonly busyTimeoutMs?: number;
  /** `PRAGMA synchronous` (default `FULL`). */
  readonly synchronous?: SynchronousPragma;
}

const SYNCHRONOUS_PRAGMAS: readonly SynchronousPragma[] = ["FULL", "NORMAL", "OFF"];

/**
 * Opens `file` with: a busy timeout (so a second process waits out a lock
 * instead of failing), WAL journal (readers never block the writer),
 * `synchronous` (default `FULL`: the WAL is fsynced at every commit, so an
 * acknowledged write survives a crash or power loss), foreign keys, and
 * `secure_delete` (deleted rows and freed pages are overwritten with zeros).
 * A number as `options` is the busy timeout (the older form).
 */
export function openDatabase(file: string, options: ConnectionOptions | number = {}): DatabaseSync {
  const { busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, synchronous = "FULL" } = typeof options === "number"
    ? { busyTimeoutMs: options }
    : options;
  // Interpolated into SQL below: only the known words get there.
  if (!SYNCHRONOUS_PRAGMAS.includes(synchronous)) {
    throw new TypeError(`store: unknown synchronous level ${synchronous}`);
  }
  const db = new DatabaseSync(file, { enableForeignKeyConstraints: true });
  try {
    // First, so every statement after it waits out another process's lock.
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${synchronous}`);
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA secure_delete = ON");
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
