/**
 * Storage backends behind one contract. Nexus seals values before they get
 * here; a store keeps opaque bytes and swaps whole records atomically.
 *
 * @module
 */
export type {
  ChangeOptions,
  KeyState,
  Permission,
  PlainPolicyRow,
  PolicyRecord,
  PolicyReplacement,
  SealedMetadata,
  SealedPolicy,
  SealedPolicyRow,
  SecretRecord,
  SecretVersion,
  Store,
  StoreCounts,
  StoredPolicy,
  WriteOptions,
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
