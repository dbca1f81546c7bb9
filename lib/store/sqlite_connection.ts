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
 * Opens `file` with: a busy timeout (so a second process waits out a lock
 * instead of failing), WAL journal (readers never block the writer),
 * `synchronous=FULL` (the WAL is fsynced at every commit, so an
 * acknowledged write survives a crash or power loss), foreign keys, and
 * `secure_delete` (deleted rows and freed pages are overwritten with zeros).
 */
export function openDatabase(file: string, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS): DatabaseSync {
  const db = new DatabaseSync(file, { enableForeignKeyConstraints: true });
  try {
    // First, so every statement after it waits out another process's lock.
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA secure_delete = ON");
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
