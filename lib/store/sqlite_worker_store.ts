/**
 * The SQLite store with its commits off the event loop. `node:sqlite` is
 * synchronous, so in `sqlite_store.ts` every commit, fsync included, stops
 * the whole process; here a module worker (`sqlite_worker.ts`) owns the
 * write connection and the main thread only posts messages to it.
 *
 * Group commit (`group_commit.ts`): writes (`writeSecret`, `writeSecrets`,
 * `deleteSecret`, `moveSecret`, `upsertPolicy`, `deletePolicy`,
 * `replacePolicies`, `putMeta`, `changeKeyState`) queue up here while the
 * worker commits the previous group, and go to it together as one
 * transaction, each in its own savepoint with its own compare-and-swap, so
 * one failing write never affects another. The worker's connection runs at
 * the `synchronous` level itself (`full`: `synchronous=FULL`), so its
 * `COMMIT` fsyncs the WAL in the worker, once for the whole group, and a
 * write is acknowledged only after that `COMMIT` returned: the in-thread
 * store's guarantee.
 *
 * Reads run on the calling thread through a second connection of their own:
 * a read is a few tens of microseconds of SQLite work, less than a message
 * round trip, and in WAL mode it never waits for the writer. Every read sees
 * every write acknowledged before it started. `ping` and `checkpoint` go to
 * the worker, so `/ready` fails when the worker does.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { localExclusive } from "./exclusive.ts";
import { createGroupCommit } from "./group_commit.ts";
import { guarded, settle } from "./settle.ts";
import type { ConnectionOptions, SynchronousPragma } from "./sqlite_connection.ts";
import { openSqliteDatabase } from "./sqlite_database.ts";
import { prepareSqliteFile } from "./sqlite_files.ts";
import { groupedWrites } from "./sqlite_grouped_writes.ts";
import {
  DEFAULT_MAX_BATCH,
  type SqliteCall,
  type SqliteCommitStats,
  type SqliteOutcome,
  type SqliteResult,
  type SqliteStore,
  type SqliteStoreOptions,
  type SqliteSynchronous,
  type SqliteWriteName,
} from "./sqlite_types.ts";
import {
  fromWireError,
  type SqliteSingleName,
  type WireOutcome,
  type WorkerReply,
  type WorkerRequest,
} from "./sqlite_worker_protocol.ts";
// Not for its exports: a static import puts the worker module into the
// module graph, so `deno compile` embeds it (its body runs only as a worker).
import "./sqlite_worker.ts";

export { DEFAULT_MAX_BATCH };

/** Options of `createSqliteWorkerStore`. */
export interface SqliteWorkerStoreOptions extends SqliteStoreOptions {
  /** The worker module (default `sqlite_worker.ts`; tests swap in one that misbehaves). */
  readonly workerUrl?: URL;
}

/** Counters of the group commit (writes ÷ commits = the mean group size). */
export type SqliteWorkerStats = SqliteCommitStats;

/** The worker store. */
export type SqliteWorkerStore = SqliteStore;

/** The worker connection's `PRAGMA synchronous` per level: its fsyncs already run off the event loop. */
const PRAGMA_OF: Readonly<Record<SqliteSynchronous, SynchronousPragma>> = {
  full: "FULL",
  normal: "NORMAL",
  off: "OFF",
};

const WORKER_OPTIONS: WorkerOptions = { type: "module", name: "spike-sqlite" };

/**
 * Whether this process may start the SQLite worker: Deno checks read
 * permission for every module a worker loads, so the directory holding
 * `sqlite_worker.ts` (and its imports) must be readable. Always true in a
 * `deno compile` binary built with `--allow-read`.
 */
export function sqliteWorkerPermitted(workerUrl = new URL("./sqlite_worker.ts", import.meta.url)): boolean {
  if (workerUrl.protocol !== "file:") return true;
  return Deno.permissions.querySync({ name: "read", path: dirname(fileURLToPath(workerUrl)) }).state === "granted";
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

function settleWith(waiter: Waiter, outcome: WireOutcome): void {
  if (outcome.ok) waiter.resolve(outcome.value);
  else waiter.reject(fromWireError(outcome.error));
}

/**
 * Opens (creating when missing) `spike.db` in `options.dataDir`, brings its
 * schema up to date on this thread (so a bad file fails here, at once), and
 * starts the worker. Like the in-thread store, several stores, in one
 * process or many, may share the file.
 */
export function createSqliteWorkerStore(options: SqliteWorkerStoreOptions): SqliteWorkerStore {
  const synchronous = options.synchronous ?? "full";
  if (!(synchronous in PRAGMA_OF)) throw new TypeError(`store: unknown synchronous level ${synchronous}`);
  const connection: ConnectionOptions = { busyTimeoutMs: options.busyTimeoutMs, synchronous: PRAGMA_OF[synchronous] };
  const workerUrl = options.workerUrl ?? new URL("./sqlite_worker.ts", import.meta.url);
  if (!sqliteWorkerPermitted(workerUrl)) {
    const code = dirname(fileURLToPath(workerUrl));
    throw new Error(`store: the SQLite worker needs read access to its code: add ${code} to --allow-read`);
  }
  const file = prepareSqliteFile(options.dataDir);
  const reader = openSqliteDatabase(file, connection);
  let worker: Worker;
  try {
    worker = options.workerUrl
      ? new Worker(options.workerUrl, WORKER_OPTIONS)
      : new Worker(new URL("./sqlite_worker.ts", import.meta.url), WORKER_OPTIONS);
  } catch (error) {
    reader.close();
    throw error;
  }

  const pending = new Map<number, Waiter>();
  const outstanding = new Set<Promise<unknown>>();
  let nextId = 0;
  let failure: Error | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  const exclusive = localExclusive();

  const group = createGroupCommit<SqliteCall<SqliteWriteName>>({
    maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
    commit: async (calls) =>
      ((await request({ type: "batch", id: ++nextId, calls })) as WireOutcome[]).map((outcome): SqliteOutcome =>
        outcome.ok ? outcome : { ok: false, error: fromWireError(outcome.error) }
      ),
  });

  /** Ends the worker and fails everything pending and everything after: the store is unusable. */
  function fail(error: Error): void {
    if (failure) return;
    failure = error;
    worker.terminate();
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
    group.fail(error);
  }

  worker.onmessage = (event: MessageEvent<WorkerReply>) => {
    const { id, outcome } = event.data;
    const waiter = pending.get(id);
    pending.delete(id);
    if (waiter) settleWith(waiter, outcome);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(new Error(`store: sqlite worker crashed (${event.message}); every pending call failed`));
  };
  worker.onmessageerror = () => fail(new Error("store: sqlite worker sent a message that could not be read"));
  worker.postMessage({ type: "open", file, connection } satisfies WorkerRequest);

  /** Tracks `promise` until it settles, so `close` can wait for it. */
  function track<T>(promise: Promise<T>): Promise<T> {
    outstanding.add(promise);
    const forget = () => outstanding.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  function usable(): void {
    if (closed) throw new Error("store is closed");
    if (failure) throw failure;
  }

  /** Posts one request and resolves with the worker's answer. */
  function request(message: WorkerRequest & { id: number }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      pending.set(message.id, { resolve, reject });
      try {
        worker.postMessage(message);
      } catch (error) {
        pending.delete(message.id);
        reject(error);
      }
    });
  }

  function call<K extends SqliteSingleName>(single: SqliteCall<K>): Promise<SqliteResult<K>> {
    const wire = single as SqliteCall<SqliteSingleName>;
    return guarded(
      usable,
      () => track(request({ type: "call", id: ++nextId, call: wire }) as Promise<SqliteResult<K>>),
    );
  }

  function write<K extends SqliteWriteName>(queued: SqliteCall<K>): Promise<SqliteResult<K>> {
    return guarded(
      usable,
      () => track(group.submit(queued as SqliteCall<SqliteWriteName>) as Promise<SqliteResult<K>>),
    );
  }

  function read<T>(work: () => T): Promise<T> {
    return settle(() => {
      usable();
      return work();
    });
  }

  return {
    file,
    thread: "worker",
    synchronous,
    readSecret: (path) => read(() => reader.readSecret(path)),
    // Writes go out in groups (`group_commit.ts`).
    ...groupedWrites(write),
    listExpired: (now, limit) => read(() => reader.listExpired(now, limit)),
    // Refused once the store has failed, as every other call is: the work would only meet that failure later.
    tryExclusive: (work) => guarded(usable, () => exclusive(work)),
    listSecretPathsPage: (query) => read(() => reader.listSecretPathsPage(query)),
    secretPathsSealedBelow: (version, after, limit) => read(() => reader.secretPathsSealedBelow(version, after, limit)),
    countSealedBelow: (version) => read(() => reader.countSealedBelow(version)),
    keyState: () => read(() => reader.keyState()),
    listSecretPaths: () => read(() => reader.listSecretPaths()),
    getPolicy: (name) => read(() => reader.getPolicy(name)),
    listPolicies: () => read(() => reader.listPolicies()),
    policyGeneration: () => read(() => reader.policyGeneration()),
    getMeta: (key) => read(() => reader.getMeta(key)),
    putMeta: (key, value) => write({ name: "putMeta", args: [key, value] }),
    hasData: () => read(() => reader.hasData()),
    counts: () => read(() => reader.counts()),
    ping: () => call({ name: "ping", args: [] }),
    checkpoint: () => call({ name: "checkpoint", args: [] }),
    synchronousPragma: () => call({ name: "synchronousPragma", args: [] }),
    stats: () => group.stats(),

    close() {
      closing ??= (async () => {
        closed = true;
        // Queued writes still go out; wait for every answer before closing.
        while (outstanding.size > 0) await Promise.allSettled([...outstanding]);
        reader.close();
        // The worker closes its connection last, so the final checkpoint runs there.
        if (!failure) {
          await request({ type: "close", id: ++nextId }).catch(() => {});
          worker.terminate();
        }
      })();
      return closing;
    },
  };
}
