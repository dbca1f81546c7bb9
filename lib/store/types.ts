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
import type { AuditRow } from "./audit_row.ts";

export type { AuditRow, Permission };

/** One stored version of a secret. Treat as immutable. */
export interface SecretVersion {
  /** Version number, 1-based, never reused within a path. */
  readonly version: number;
  /** When this version was written. */
  readonly createdTime: Date;
  /** When it was soft-deleted, or `null` while live. */
  readonly deletedTime: Date | null;
  /**
   * The version's values as sealed by Nexus (AAD binds path and version);
   * opaque here. Empty for a destroyed version [ours]: its values are gone
   * for good, and the entry stays so that metadata shows it and its number
   * is never reused.
   */
  readonly sealed: Uint8Array;
  /**
   * When this version expires [ours]: from then on reads treat it as gone,
   * and the expiry sweep destroys it. Absent: never.
   */
  readonly expiresAt?: Date;
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
  /**
   * The path's custom metadata [ours] as sealed by Nexus (AAD binds the path
   * and the purpose); opaque here. Absent when the secret has none.
   */
  readonly customMetadata?: Uint8Array;
  /**
   * When the whole secret expires [ours]: from then on reads treat the path
   * as absent, and the expiry sweep removes it. Absent: never.
   */
  readonly expiresAt?: Date;
}

/** An access policy, stored by unique name. */
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

/** What {@linkcode Store.counts} answers. */
export interface StoreCounts {
  /** Secret paths, including those whose versions are all soft-deleted. */
  readonly secrets: number;
  /** Policies. */
  readonly policies: number;
}

/** What `Store.listSecretPathsPage` lists [ours]. */
export interface PathPageQuery {
  /** Only paths starting with this text (`""` or absent: all). */
  readonly prefix?: string;
  /** Only paths after this one in byte order (absent: from the first). */
  readonly after?: string;
  /** Most paths returned (≥ 0). */
  readonly limit: number;
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
   *
   * `audit`, on a store with an audit table, is inserted in the same
   * transaction exactly when the swap happens; if the store refuses it, the
   * write rolls back and this rejects with `AuditRowRefusedError`. Stores
   * without an audit table ignore it.
   */
  writeSecret(path: string, expectedRevision: number, next: SecretRecord, audit?: AuditRow): Promise<boolean>;
  /**
   * Removes the record at `path` with every version when its stored
   * revision equals `expectedRevision` (≥ 1). Resolves `false`, changing
   * nothing, when the path does not exist or another writer got there
   * first. `audit`: as for `writeSecret`, inserted exactly when the path
   * was removed.
   */
  deleteSecret(path: string, expectedRevision: number, audit?: AuditRow): Promise<boolean>;
  /**
   * Moves a record [ours], atomically: removes the record at `from` when its
   * stored revision is `fromRevision` (≥ 1) and stores `next` at `to` when
   * `to`'s stored revision is `toRevision` (0 = `to` must not exist), at
   * revision `toRevision + 1` — both, or, resolving `false`, neither (a
   * revision changed meanwhile). Nexus re-seals `next` for its new path
   * (the path is in every sealed value's associated data); the store only
   * moves bytes. `audit`: as for `writeSecret`, inserted exactly when the
   * move happened.
   */
  moveSecret(
    from: string,
    fromRevision: number,
    to: string,
    toRevision: number,
    next: SecretRecord,
    audit?: AuditRow,
  ): Promise<boolean>;
  /**
   * Up to `limit` distinct paths holding something expired at `now` [ours]:
   * the secret's own `expiresAt`, or a version's, at or before `now`. In no
   * particular order; work is bounded by `limit`, whatever the store holds.
   */
  listExpired(now: Date, limit: number): Promise<string[]>;
  /**
   * Runs `work` unless another holder of this backend's exclusive lock —
   * in this process or, where the backend is shared (Postgres), in another
   * Nexus — is running its own now [ours]. Resolves `{ ran: true, value }`,
   * or `{ ran: false }` at once when the lock is taken. The expiry sweep
   * runs under it, so instances sharing a database take turns.
   */
  tryExclusive<T>(work: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
  /**
   * Every secret path, sorted by UTF-8 byte order, including paths whose
   * versions are all soft-deleted (as SPIKE lists them).
   */
  listSecretPaths(): Promise<string[]>;
  /**
   * One page of `listSecretPaths` [ours]: at most `limit` paths, in byte
   * order, that start with `prefix` (default `""`: all) and sort after
   * `after` (default: from the first). Work is bounded by `limit`, not by
   * the number of paths stored (a range scan of the path index).
   */
  listSecretPathsPage(query: PathPageQuery): Promise<string[]>;
  /**
   * Inserts or replaces the policy named `policy.name`. On replace the
   * stored `createdAt` is kept and the given one ignored. Resolves the policy
   * as stored. `audit`: as for `writeSecret`.
   */
  upsertPolicy(policy: PolicyRecord, audit?: AuditRow): Promise<PolicyRecord>;
  /** The policy named `name`, or `undefined`. */
  getPolicy(name: string): Promise<PolicyRecord | undefined>;
  /** Deletes the policy named `name`; `false` when there was none. `audit`: inserted when a policy was deleted. */
  deletePolicy(name: string, audit?: AuditRow): Promise<boolean>;
  /** Every policy, sorted by name. */
  listPolicies(): Promise<PolicyRecord[]>;
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
  /**
   * How many secret paths (as `listSecretPaths` lists them) and policies are
   * stored, by counting in the backend rather than reading rows out: Nexus's
   * `/metrics` asks for it (cached), so it must stay cheap at any size.
   */
  counts(): Promise<StoreCounts>;
  /** Resolves when the backend answers; rejects otherwise (used by `/ready`). */
  ping(): Promise<void>;
  /** Releases the backend. Idempotent. */
  close(): Promise<void>;
  /**
   * Appends rows to the audit table [ours], in one statement; present only
   * on stores that have one (Postgres). With `durable: false` the store may
   * answer before the rows reach its disk (Postgres: `synchronous_commit`
   * off for that transaction), for rows that guard no change.
   */
  insertAuditRows?(rows: readonly AuditRow[], options?: { readonly durable?: boolean }): Promise<void>;
}
