/**
 * The storage contract every backend (memory, SQLite, later Postgres)
 * fulfils. The store is deliberately dumb: it keeps sealed bytes it cannot
 * open, and it never decides version semantics — Nexus computes whole
 * records with `lib/nexus/secret_state.ts` and swaps them in atomically, so
 * any number of Nexus processes can share one backend.
 *
 * @module
 */
import type { Permission } from "../api/validate.ts";

export type { Permission };

/** One stored version of a secret. Treat as immutable. */
export interface SecretVersion {
  /** Version number, 1-based, never reused within a path. */
  readonly version: number;
  /** When this version was written. */
  readonly createdTime: Date;
  /** When it was soft-deleted, or `null` while live. */
  readonly deletedTime: Date | null;
  /** The version's values as sealed by Nexus (AAD binds path and version); opaque here. */
  readonly sealed: Uint8Array;
}

/**
 * A secret path with all of its kept versions. Treat as immutable: the
 * state functions return new records and share unchanged versions.
 *
 * The path is not part of the record: the store keys records by the path
 * argument, and a record computed for a path that does not exist yet has no
 * other source for it.
 */
export interface SecretRecord {
  /**
   * Compare-and-swap token. `0` means "does not exist yet". A stored record
   * read back has revision ≥ 1; `writeSecret` ignores this field of `next`
   * and stores `expectedRevision + 1`.
   */
  readonly revision: number;
  /** Highest undeleted version, or 0 when every version is deleted. */
  readonly currentVersion: number;
  /** Oldest version as SPIKE reports it (see `secret_state.ts`). */
  readonly oldestVersion: number;
  /** When the path was first written. */
  readonly createdTime: Date;
  /** Last put, or last change of the current version. */
  readonly updatedTime: Date;
  /** Version cap that applied at the last put. */
  readonly maxVersions: number;
  /** Kept versions by number. A version absent here does not exist (pruned for good). */
  readonly versions: ReadonlyMap<number, SecretVersion>;
}

/**
 * An access policy as Nexus works with it (opened). The store never sees
 * one in this form any more: it keeps {@linkcode SealedPolicy} rows. The
 * type stays here because plain-text rows written before policies were
 * sealed ({@linkcode PlainPolicyRow}) still have this shape.
 */
export interface PolicyRecord {
  /** Unique name (the wire's `id` and `name`). */
  readonly name: string;
  /** Regex source matched against the caller's SPIFFE ID. */
  readonly spiffeIdPattern: string;
  /** Regex source matched against the secret path. */
  readonly pathPattern: string;
  /** Granted permissions. */
  readonly permissions: readonly Permission[];
  /** First creation time; kept across updates. */
  readonly createdAt: Date;
  /** Time of the last upsert. */
  readonly updatedAt: Date;
}

/**
 * A policy as the store keeps it: the name in clear (the unique key), and
 * everything else (patterns, permissions, times) sealed by Nexus under a key
 * derived from root key version `keyVersion`, with the name bound in as
 * associated data. The store cannot read or change what a policy grants.
 */
export interface SealedPolicy {
  /** Unique name (the wire's `id` and `name`). */
  readonly name: string;
  /** Root key version the policy was sealed under (≥ 1). */
  readonly keyVersion: number;
  /** The sealed content; opaque here. */
  readonly sealed: Uint8Array;
}

/** A sealed policy row as read back. */
export interface SealedPolicyRow extends SealedPolicy {
  /** Discriminant. */
  readonly kind: "sealed";
}

/**
 * A policy row that is not sealed: written in plain text before policies
 * were sealed (schema 2 and older) and not yet migrated, or put there by
 * someone writing the database directly. Nexus never obeys one; it seals
 * the rows of an older store once, when it first holds the key.
 */
export interface PlainPolicyRow {
  /** Discriminant. */
  readonly kind: "plain";
  /** The row's name. */
  readonly name: string;
  /** The plain columns as a policy, or `undefined` when they do not make one. */
  readonly record?: PolicyRecord;
}

/** A policy row as the store holds it. */
export type StoredPolicy = SealedPolicyRow | PlainPolicyRow;

/**
 * A compare-and-swap of one policy row: `next` replaces the row named
 * `next.name` only while that row is still `expected` (the same sealed bytes
 * under the same key version; for a plain row, still plain).
 */
export interface PolicyReplacement {
  /** The row as read. */
  readonly expected: StoredPolicy;
  /** What replaces it. */
  readonly next: SealedPolicy;
}

/**
 * A storage backend. All methods are async so that networked backends fit;
 * every method rejects once `close()` has been called. Values handed in are
 * copied (callers may reuse their buffers), values handed out are fresh
 * copies (callers cannot change what is stored).
 */
export interface Store {
  /** The record at `path`, or `undefined` when the path was never written. */
  readSecret(path: string): Promise<SecretRecord | undefined>;
  /**
   * Atomically replaces the record at `path` with `next` when the stored
   * revision equals `expectedRevision` (0 = the path must not exist), and
   * stores it with revision `expectedRevision + 1`. Versions absent from
   * `next` are deleted for good. Resolves `false`, changing nothing, when
   * another writer got there first: re-read, recompute and try again.
   */
  writeSecret(path: string, expectedRevision: number, next: SecretRecord): Promise<boolean>;
  /**
   * Every secret path, sorted by UTF-8 byte order, including paths whose
   * versions are all soft-deleted (as SPIKE lists them).
   */
  listSecretPaths(): Promise<string[]>;
  /** Inserts or replaces the policy row named `policy.name` (a plain row becomes a sealed one). */
  upsertPolicy(policy: SealedPolicy): Promise<void>;
  /** The policy row named `name`, or `undefined`. */
  getPolicy(name: string): Promise<StoredPolicy | undefined>;
  /** Deletes the policy row named `name`, sealed or not; `false` when there was none. */
  deletePolicy(name: string): Promise<boolean>;
  /** Every policy row, sorted by name (UTF-8 byte order). */
  listPolicies(): Promise<StoredPolicy[]>;
  /**
   * Applies each replacement whose row is still as expected, all in one
   * transaction; resolves, per replacement, whether it was applied (a row
   * that changed or disappeared meanwhile is left alone). Used to seal the
   * plain rows of an older store and to re-seal rows under a new key, so
   * that a concurrent upsert always wins.
   */
  replacePolicies(replacements: readonly PolicyReplacement[]): Promise<boolean[]>;
  /**
   * A number that changes whenever any writer sharing this backend creates,
   * changes or deletes a policy (it may also change when nothing did). Read
   * before `listPolicies`, an equal number later means that list is still
   * current, which lets Nexus skip re-reading the policies per request.
   */
  policyGeneration(): Promise<number>;
  /** A small opaque value by key (e.g. the sealed root-key check value). */
  getMeta(key: string): Promise<Uint8Array | undefined>;
  /** Sets a small opaque value by key. */
  putMeta(key: string, value: Uint8Array): Promise<void>;
  /** Whether any secret, policy or meta value is stored. */
  hasData(): Promise<boolean>;
  /** Resolves when the backend answers; rejects otherwise (used by `/ready`). */
  ping(): Promise<void>;
  /** Releases the backend. Idempotent. */
  close(): Promise<void>;
}
