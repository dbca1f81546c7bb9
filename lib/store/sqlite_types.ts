/**
 * Types shared by the two SQLite stores (in-thread and worker) and the
 * connection code they both run: the store's public face, and the store
 * calls a connection answers, named after the `Store` methods so that one
 * table of names drives both the in-thread calls and the worker messages.
 *
 * @module
 */
import type { GroupCommitStats } from "./group_commit.ts";
import type { Store } from "./types.ts";

/**
 * What an acknowledged write survives (`SPIKE_NEXUS_DB_SYNCHRONOUS`), in
 * WAL mode; docs/STORAGE.md "Durability" says it at length.
 *
 * - `full` (default): power loss and OS crashes. A write is acknowledged
 *   only after the WAL frames holding it were fsynced.
 * - `normal`: a crash of the process (`kill -9`), not of the machine. A
 *   power loss or OS crash may lose the last writes acknowledged before it;
 *   the database stays consistent.
 * - `off`: a crash of the process only. A power loss or OS crash may also
 *   corrupt the database (checkpoints are not fsynced either).
 */
export type SqliteSynchronous = "full" | "normal" | "off";

/** The levels of {@linkcode SqliteSynchronous}, safest first. */
export const SQLITE_SYNCHRONOUS_LEVELS: readonly SqliteSynchronous[] = ["full", "normal", "off"];

/** Options of the SQLite stores. */
export interface SqliteStoreOptions {
  /** Directory holding `spike.db`; created with mode 0700 when missing. */
  readonly dataDir: string;
  /** How long a writer waits for another connection's lock, in ms (default 5000). */
  readonly busyTimeoutMs?: number;
  /** What an acknowledged write survives (default `full`). */
  readonly synchronous?: SqliteSynchronous;
  /** Most writes committed in one transaction (default 256). */
  readonly maxBatch?: number;
}

/** Default cap on one group commit: bounds how long one transaction holds the write lock. */
export const DEFAULT_MAX_BATCH = 256;

/** Counters of a SQLite store's group commit. */
export type SqliteCommitStats = GroupCommitStats;

/** The SQLite store, with maintenance calls beyond `Store`. */
export interface SqliteStore extends Store {
  /** Full path of the database file. */
  readonly file: string;
  /** Where the write connection runs: on the calling thread, or in a worker. */
  readonly thread: "main" | "worker";
  /** What an acknowledged write survives: the level the store was opened with. */
  readonly synchronous: SqliteSynchronous;
  /**
   * `PRAGMA synchronous` of the write connection, as SQLite reports it (0
   * `OFF`, 1 `NORMAL`, 2 `FULL`). At `full` the in-thread store's
   * connection runs at `NORMAL` and the store fsyncs the WAL itself.
   */
  synchronousPragma(): Promise<number>;
  /**
   * Writes and the groups they were committed in so far (one transaction
   * each, and at `full` one fsync each).
   */
  stats(): SqliteCommitStats;
  /**
   * Copies the WAL into the database file and truncates the WAL to zero
   * bytes, so page images of pruned versions left in the WAL are gone too.
   * Resolves `false` when another connection's reader kept it from
   * completing (nothing is lost; try again later).
   */
  checkpoint(): Promise<boolean>;
}

/**
 * Every store call a connection answers: the `SqliteStore` methods except
 * `close`, the store's own properties and counters, `tryExclusive` (a lock
 * held in this process, around work that runs here, not on a connection)
 * and the audit table SQLite lacks.
 */
export type SqliteCallName = Exclude<
  keyof SqliteStore,
  "file" | "thread" | "synchronous" | "stats" | "close" | "tryExclusive" | "insertAuditRows"
>;

/** The calls that change data; both stores commit them in groups (the in-thread store: all but `putMeta`). */
export type SqliteWriteName =
  | "writeSecret"
  | "writeSecrets"
  | "deleteSecret"
  | "moveSecret"
  | "upsertPolicy"
  | "deletePolicy"
  | "replacePolicies"
  | "putMeta"
  | "changeKeyState";

/** Arguments of call `K`. */
export type SqliteArgs<K extends SqliteCallName> = Parameters<SqliteStore[K]>;

/** Result of call `K`, unwrapped from its promise. */
export type SqliteResult<K extends SqliteCallName> = Awaited<ReturnType<SqliteStore[K]>>;

/** One call with its arguments, e.g. `{ name: "getMeta", args: ["k"] }`. */
export type SqliteCall<K extends SqliteCallName = SqliteCallName> = {
  [N in K]: { readonly name: N; readonly args: SqliteArgs<N> };
}[K];

/** The store calls, answered synchronously by one open connection. */
export type SqliteCalls = {
  readonly [K in SqliteCallName]: (...args: SqliteArgs<K>) => SqliteResult<K>;
};

/** What one call of a group commit came to: its result, or what it threw. */
export type SqliteOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };
