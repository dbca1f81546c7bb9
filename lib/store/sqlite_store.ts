/**
 * The embedded backend: one SQLite file (`spike.db`) through `node:sqlite`,
 * which is built into Deno and needs no native download. The connection
 * runs on the calling thread; `sqlite_worker_store.ts` is the same store
 * with its write connection in a worker.
 *
 * Group commit: writes (`writeSecret`, `writeSecrets`, `deleteSecret`,
 * `moveSecret`, `upsertPolicy`, `deletePolicy`, `replacePolicies`,
 * `changeKeyState`) issued while the previous group is being committed queue up and go out
 * together as the next group (`group_commit.ts`): one transaction, each
 * write in its own savepoint with its own compare-and-swap, so one failing
 * write never affects another. Any other call that changes rows (`putMeta`,
 * and a call added later) runs on its own and is made durable the same way
 * before it answers.
 *
 * Durability (`synchronous`, see `SqliteSynchronous`): at `full`, the
 * default, the connection runs at `synchronous=NORMAL`, so `COMMIT` does
 * not wait for the disk, and the group's one fsync of the WAL runs on a
 * thread of Deno's blocking pool (`wal_sync.ts`) while the event loop goes
 * on serving; every write of the group is acknowledged only after it
 * returned. That is `synchronous=FULL`'s guarantee without its fsync on
 * the event loop. (A lone write, with no other write queued, is fsynced on
 * the calling thread while fsyncs are fast: `fsync_placement.ts`.) A
 * failed fsync closes the store for good (every later call rejects): a
 * write that was committed but maybe not written cannot be answered either
 * way.
 *
 * A commit is visible in the database before its fsync completes. So that
 * no caller of this store sees a write before it is durable, a read that
 * touches what the group in flight wrote (the same secret path; the set of
 * paths, for lists; policies; the key state; anything, for every other
 * read) waits for that fsync.
 * Readers in other processes sharing the file do not wait (docs/STORAGE.md).
 *
 * Concurrency: compare-and-swap in `BEGIN IMMEDIATE` transactions, so it
 * holds across connections and processes sharing the file. All SQLite work
 * is synchronous inside each call, so two calls never interleave
 * mid-transaction.
 *
 * See `docs/STORAGE.md` for the schema and what is stored in plain text.
 *
 * @module
 */
import { localExclusive } from "./exclusive.ts";
import { DEFAULT_INLINE_FSYNC_LIMIT_MS, FsyncPlacement } from "./fsync_placement.ts";
import { createGroupCommit } from "./group_commit.ts";
import { guarded, settle } from "./settle.ts";
import type { SynchronousPragma } from "./sqlite_connection.ts";
import { openSqliteDatabase } from "./sqlite_database.ts";
import { prepareSqliteFile } from "./sqlite_files.ts";
import { groupedWrites } from "./sqlite_grouped_writes.ts";
import {
  DEFAULT_MAX_BATCH,
  type SqliteCall,
  type SqliteResult,
  type SqliteStore,
  type SqliteStoreOptions,
  type SqliteSynchronous,
  type SqliteWriteName,
} from "./sqlite_types.ts";
import { openWalSync, type WalSync } from "./wal_sync.ts";

export { SQLITE_FILE_NAME } from "./sqlite_files.ts";
export type { SqliteStore, SqliteStoreOptions, SqliteSynchronous } from "./sqlite_types.ts";

/**
 * The connection's `PRAGMA synchronous` per level. At `full` the WAL's
 * fsync is the store's own, off the event loop; `NORMAL` keeps SQLite's
 * fsyncs around checkpoints, which a checkpoint needs to be crash-safe.
 */
const PRAGMA_OF: Readonly<Record<SqliteSynchronous, SynchronousPragma>> = {
  full: "NORMAL",
  normal: "NORMAL",
  off: "OFF",
};

/** What a read waits for when it may see anything that was written. */
const ANYTHING = "*";
const POLICIES = "policies";
/** Which paths exist, and their expiry: what lists of paths (and of expired ones) read. */
const PATHS = "paths";
/** The root key versions the data is under (rotation). */
const KEY_STATE = "key-state";
const secretKey = (path: string) => `secret\0${path}`;

/** What a write changes, for the reads that must not see it before its fsync. */
function writtenBy(call: SqliteCall<SqliteWriteName>): string[] {
  switch (call.name) {
    case "writeSecret":
    case "deleteSecret":
      return [secretKey(call.args[0]), PATHS];
    case "writeSecrets":
      return [...call.args[0].map((w) => secretKey(w.path)), PATHS];
    case "moveSecret":
      return [secretKey(call.args[0]), secretKey(call.args[2]), PATHS];
    case "upsertPolicy":
    case "deletePolicy":
    case "replacePolicies":
      return [POLICIES];
    case "changeKeyState":
      return [KEY_STATE];
    default:
      return [ANYTHING];
  }
}

/** Commits in the WAL whose fsync has not completed yet, and what they wrote. */
interface Unsynced {
  readonly keys: ReadonlySet<string>;
  /** Settles (never rejects) when the fsync does. */
  readonly done: Promise<void>;
}

function noop(): void {}

/** Options of `createSqliteStore`. */
export interface SqliteInThreadStoreOptions extends SqliteStoreOptions {
  /** Opens the WAL handle whose fsync makes a group durable at `full` (default `openWalSync`; tests wrap it). */
  readonly openWalSync?: (databaseFile: string) => WalSync;
  /**
   * A lone write's fsync runs on the calling thread while fsyncs average
   * less than this, in ms (default 1; 0: every fsync off the thread). See
   * `fsync_placement.ts`.
   */
  readonly inlineFsyncLimitMs?: number;
}

/**
 * Opens (creating when missing) `spike.db` in `options.dataDir` and brings
 * its schema up to date. Each call is an independent connection; several
 * stores, in one process or many, may share the file.
 */
export function createSqliteStore(options: SqliteInThreadStoreOptions): SqliteStore {
  const synchronous = options.synchronous ?? "full";
  if (!(synchronous in PRAGMA_OF)) throw new TypeError(`store: unknown synchronous level ${synchronous}`);
  const file = prepareSqliteFile(options.dataDir);
  const db = openSqliteDatabase(file, { busyTimeoutMs: options.busyTimeoutMs, synchronous: PRAGMA_OF[synchronous] });
  let wal: WalSync | undefined;
  try {
    if (synchronous === "full") wal = (options.openWalSync ?? openWalSync)(file);
  } catch (error) {
    db.close();
    throw error;
  }
  // Exclusive within this process; Nexus processes sharing one file may each sweep (the compare-and-swap keeps that safe).
  const exclusive = localExclusive();

  const placement = new FsyncPlacement(options.inlineFsyncLimitMs ?? DEFAULT_INLINE_FSYNC_LIMIT_MS);
  const unsynced = new Set<Unsynced>();
  const outstanding = new Set<Promise<unknown>>();
  let failure: Error | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;

  function usable(): void {
    if (closed) throw new Error("store is closed");
    if (failure) throw failure;
  }

  /** Tracks `promise` until it settles, so `close` can wait for it. */
  function track<T>(promise: Promise<T>): Promise<T> {
    outstanding.add(promise);
    const forget = () => outstanding.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /**
   * At `full`, fsyncs the WAL, so every commit so far is durable: on this
   * thread for a lone write while fsyncs are fast (nothing can run meanwhile
   * that would need the thread), otherwise off it, with reads of `keys`
   * waiting meanwhile. A failure is fatal to the store.
   */
  async function makeDurable(keys: ReadonlySet<string>, size: number, queued: number): Promise<void> {
    if (!wal) return;
    const started = performance.now();
    if (placement.inline(size, queued)) {
      try {
        wal.syncNow();
      } catch (error) {
        throw fatal(error);
      }
      placement.record(performance.now() - started);
      return;
    }
    const synced = wal.sync();
    const entry: Unsynced = { keys, done: synced.then(noop, noop) };
    unsynced.add(entry);
    try {
      await synced;
      placement.record(performance.now() - started);
    } catch (error) {
      throw fatal(error);
    } finally {
      unsynced.delete(entry);
    }
  }

  /** Closes the store for good after a failed fsync; returns the error every call gets from now on. */
  function fatal(error: unknown): Error {
    failure ??= new Error(
      `store: fsync of the SQLite WAL failed (${(error as Error).message}); committed writes may not be on disk, ` +
        "so the store refuses every call from now on: restart Nexus",
    );
    group.fail(failure);
    return failure;
  }

  /** Resolves once no commit that wrote `key` (`ANYTHING`: any commit) is waiting for its fsync; `undefined` when none is. */
  function visible(key: string): Promise<void> | undefined {
    for (const entry of unsynced) {
      if (key === ANYTHING || entry.keys.has(key) || entry.keys.has(ANYTHING)) {
        // Look again afterwards: another group may have written `key` since.
        return entry.done.then(() => visible(key));
      }
    }
    return undefined;
  }

  const group = createGroupCommit<SqliteCall<SqliteWriteName>>({
    maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
    async commit(calls, queued) {
      const outcomes = db.writeBatch(calls);
      await makeDurable(new Set(calls.flatMap(writtenBy)), calls.length, queued);
      return outcomes;
    },
  });

  function write<K extends SqliteWriteName>(call: SqliteCall<K>): Promise<SqliteResult<K>> {
    return guarded(usable, () => track(group.submit(call as SqliteCall<SqliteWriteName>) as Promise<SqliteResult<K>>));
  }

  /** A read of what writes to `key` change: runs at once unless such a write awaits its fsync. */
  function read<T>(key: string, work: () => T): Promise<T> {
    return guarded(usable, () => {
      const wait = visible(key);
      // A call issued before `close` still runs (close waits for it); only a failure stops it.
      return wait ? track(wait.then(() => afterWait(work))) : settle(work);
    });
  }

  /**
   * Any other call (and a call added to the store later): runs once every
   * commit so far is durable, and if it changed rows itself, answers only
   * once that change is durable too.
   */
  function run<T>(work: () => T): Promise<T> {
    return guarded(usable, () =>
      track((async () => {
        await visible(ANYTHING);
        const before = db.totalChanges();
        const result = afterWait(work);
        if (db.totalChanges() !== before) await makeDurable(new Set([ANYTHING]), 1, 0);
        return result;
      })()));
  }

  function afterWait<T>(work: () => T): T {
    if (failure) throw failure;
    return work();
  }

  /** Calls that neither read nor write data: no waiting. */
  function direct<T>(work: () => T): Promise<T> {
    return settle(() => {
      usable();
      return work();
    });
  }

  return {
    file,
    thread: "main",
    synchronous,
    readSecret: (path) => read(secretKey(path), () => db.readSecret(path)),
    // Writes go out in groups (`group_commit.ts`).
    ...groupedWrites(write),
    listExpired: (now, limit) => read(PATHS, () => db.listExpired(now, limit)),
    tryExclusive: (work) => guarded(usable, () => exclusive(work)),
    listSecretPathsPage: (query) => read(PATHS, () => db.listSecretPathsPage(query)),
    // Rotation's scans look at every secret and policy row.
    secretPathsSealedBelow: (version, after, limit) =>
      read(ANYTHING, () => db.secretPathsSealedBelow(version, after, limit)),
    countSealedBelow: (version) => read(ANYTHING, () => db.countSealedBelow(version)),
    keyState: () => read(KEY_STATE, () => db.keyState()),
    listSecretPaths: () => read(PATHS, () => db.listSecretPaths()),
    getPolicy: (name) => read(POLICIES, () => db.getPolicy(name)),
    listPolicies: () => read(POLICIES, () => db.listPolicies()),
    policyGeneration: () => read(POLICIES, () => db.policyGeneration()),
    // Meta values are rare (the root key's check value): on their own, not in groups.
    getMeta: (key) => run(() => db.getMeta(key)),
    putMeta: (key, value) => run(() => db.putMeta(key, value)),
    hasData: () => run(() => db.hasData()),
    counts: () => run(() => db.counts()),
    ping: () => direct(() => db.ping()),
    // SQLite fsyncs the WAL before a checkpoint and the database after it, at NORMAL too.
    checkpoint: () => direct(() => db.checkpoint()),
    synchronousPragma: () => direct(() => db.synchronousPragma()),
    stats: () => group.stats(),

    close() {
      closing ??= (async () => {
        closed = true;
        // Queued writes still go out; wait for every answer before closing.
        while (outstanding.size > 0) await Promise.allSettled([...outstanding]);
        wal?.close();
        db.close();
      })();
      return closing;
    },
  };
}
