/**
 * Types shared by the two SQLite stores (in-thread and worker) and the
 * connection code they both run: the store's public face, and the store
 * calls a connection answers, named after the `Store` methods so that one
 * table of names drives both the in-thread calls and the worker messages.
 *
 * @module
 */
import type { Store } from "./types.ts";

/** Options of the SQLite stores. */
export interface SqliteStoreOptions {
  /** Directory holding `spike.db`; created with mode 0700 when missing. */
  readonly dataDir: string;
  /** How long a writer waits for another connection's lock, in ms (default 5000). */
  readonly busyTimeoutMs?: number;
}

/** The SQLite store, with maintenance calls beyond `Store`. */
export interface SqliteStore extends Store {
  /** Full path of the database file. */
  readonly file: string;
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
 * `close`, `tryExclusive` (a lock held in this process, around work that
 * runs here, not on a connection) and the audit table SQLite lacks.
 */
export type SqliteCallName = Exclude<keyof SqliteStore, "file" | "close" | "tryExclusive" | "insertAuditRows">;

/** The calls that change data; the worker store commits them in groups. */
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
