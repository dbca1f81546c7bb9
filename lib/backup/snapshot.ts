/**
 * The two sides of a backup as the backends implement them: a consistent
 * read-only snapshot of a store (one read transaction, so rows written
 * while it is read are all in or all out), and an import that fills an
 * empty store in one write transaction (so a failed restore leaves the
 * target as empty as it was).
 *
 * @module
 */
import type { KeyState } from "../store/types.ts";
import type { BackupCounts, BackupItem, BackupStoreKind } from "./format.ts";

/** A store as of one instant. Valid only inside the callback it was handed to. */
export interface StoreSnapshot {
  /** Which backend it is. */
  readonly store: BackupStoreKind;
  /** The backend's schema version. */
  readonly schemaVersion: number;
  /** Rows of each kind in the snapshot. */
  readonly counts: BackupCounts;
  /** The key state row, or `undefined` for a store from before root key versions (all under version 1). */
  readonly keyState: KeyState | undefined;
  /** The sealed check value of the root key version the records are under, when the store has one. */
  readonly keyCheck: Uint8Array | undefined;
  /** Every secret (path order, with its versions), then every policy row, every meta value, the key state. */
  items(): AsyncIterable<BackupItem>;
}

/** An empty store being filled. Valid only inside the callback it was handed to. */
export interface StoreImport {
  /** Adds one item (a path, policy name or meta key already present is an error). */
  add(item: BackupItem): Promise<void>;
  /** Rows in the target now, items added so far included. */
  counts(): Promise<BackupCounts>;
  /** The target's key state now. */
  keyState(): Promise<KeyState | undefined>;
  /** The target's sealed check value of its key state's current version now. */
  keyCheck(): Promise<Uint8Array | undefined>;
}

/** Runs `use` with a snapshot and ends the read transaction afterwards. */
export type SnapshotOpener = <T>(use: (snapshot: StoreSnapshot) => Promise<T>) => Promise<T>;

/**
 * Checks the target is empty (throwing `BackupError` otherwise), runs `use`,
 * and commits only when it resolves; on any failure nothing is kept.
 */
export type ImportOpener = (use: (target: StoreImport) => Promise<void>) => Promise<void>;
