/**
 * Storage backends behind one contract. Nexus seals values before they get
 * here; a store keeps opaque bytes and swaps whole records atomically.
 *
 * @module
 */
export type {
  Permission,
  PlainPolicyRow,
  PolicyRecord,
  PolicyReplacement,
  SealedPolicy,
  SealedPolicyRow,
  SecretRecord,
  SecretVersion,
  Store,
  StoredPolicy,
} from "./types.ts";
export { createMemoryStore } from "./memory_store.ts";
export { createSqliteStore, SQLITE_FILE_NAME, type SqliteStore, type SqliteStoreOptions } from "./sqlite_store.ts";
export {
  createSqliteWorkerStore,
  sqliteWorkerPermitted,
  type SqliteWorkerStats,
  type SqliteWorkerStore,
  type SqliteWorkerStoreOptions,
} from "./sqlite_worker_store.ts";
