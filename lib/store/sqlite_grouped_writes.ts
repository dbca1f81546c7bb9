/**
 * The write methods both SQLite stores commit in groups, each turned into
 * one call for the group committer. Kept in one place so that the two
 * stores pass the same arguments on, and drop the same ones.
 *
 * @module
 */
import type { SqliteCall, SqliteResult, SqliteStore, SqliteWriteName } from "./sqlite_types.ts";

/** Hands one write call to a store's group committer. */
export type SubmitWrite = <K extends SqliteWriteName>(call: SqliteCall<K>) => Promise<SqliteResult<K>>;

/** The store methods {@linkcode groupedWrites} builds. */
export type GroupedWrites = Pick<
  SqliteStore,
  | "writeSecret"
  | "writeSecrets"
  | "deleteSecret"
  | "moveSecret"
  | "changeKeyState"
  | "upsertPolicy"
  | "deletePolicy"
  | "replacePolicies"
>;

/**
 * The grouped write methods of a SQLite store, submitting through `write`.
 * SQLite keeps no audit table: of a write's options only the key version
 * goes along (an audit row would not survive the trip to the worker anyway).
 */
export function groupedWrites(write: SubmitWrite): GroupedWrites {
  return {
    writeSecret: (path, expectedRevision, next, options) =>
      write({ name: "writeSecret", args: [path, expectedRevision, next, { sealedUnder: options?.sealedUnder }] }),
    writeSecrets: (writes) => write({ name: "writeSecrets", args: [writes] }),
    deleteSecret: (path, expectedRevision) => write({ name: "deleteSecret", args: [path, expectedRevision] }),
    moveSecret: (from, fromRevision, to, toRevision, next, options) =>
      write({
        name: "moveSecret",
        args: [from, fromRevision, to, toRevision, next, { sealedUnder: options?.sealedUnder }],
      }),
    changeKeyState: (expectedRevision, next, options) =>
      write({ name: "changeKeyState", args: [expectedRevision, next, options] }),
    upsertPolicy: (policy) => write({ name: "upsertPolicy", args: [policy] }),
    deletePolicy: (name) => write({ name: "deletePolicy", args: [name] }),
    replacePolicies: (replacements) => write({ name: "replacePolicies", args: [replacements] }),
  };
}
