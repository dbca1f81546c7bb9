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
   * Root key version `sealed` was sealed under (≥ 1; versions written before
   * key versions are 1). A destroyed version has nothing sealed: its number
   * is kept only so that a rotation can tell it is done with it.
   */
  readonly keyVersion: number;
  /**
   * When this version expires [ours]: from then on reads treat it as gone,
   * and the expiry sweep destroys it. Absent: never.
   */
  readonly expiresAt?: Date;
}

/** A secret's custom metadata [ours] as the store keeps it: sealed bytes and their key version. */
export interface SealedMetadata {
  /** The metadata as sealed by Nexus; opaque here. */
  readonly sealed: Uint8Array;
  /** Root key version `sealed` was sealed under (≥ 1). */
  readonly keyVersion: number;
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
   * and the purpose), with the root key version it was sealed under; opaque
   * here. Absent when the secret has none.
   */
  readonly customMetadata?: SealedMetadata;
  /**
   * When the whole secret expires [ours]: from then on reads treat the path
   * as absent, and the expiry sweep removes it. Absent: never.
   */
  readonly expiresAt?: Date;
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
 * `expected.name` only while that row is still `expected` (the same sealed
 * bytes under the same key version; for a plain row, still plain). A `null`
 * `next` deletes the row (a rotation removing a row that fails
 * authentication, without touching one written since).
 */
export interface PolicyReplacement {
  /** The row as read. */
  readonly expected: StoredPolicy;
  /** What replaces it (same name), or `null` to delete it. */
  readonly next: SealedPolicy | null;
}

/** Where a root key rotation stands (see `docs/CRYPTO.md`, "Root key rotation"). */
export type KeyPhase = "idle" | "preparing" | "sealing";

/**
 * The root key versions the stored data is under: one row every Nexus
 * sharing the store reads. Plain (not secret); changed only by
 * {@linkcode Store.changeKeyState}.
 */
export interface KeyState {
  /** Compare-and-swap token of the row (≥ 1). */
  readonly revision: number;
  /** The version every record is under when idle; the version being retired while rotating. */
  readonly currentVersion: number;
  /** `idle`; `preparing` (a new key is being handed to the Keepers, nothing sealed under it yet); `sealing` (new data is sealed under the target, old records are being re-sealed). */
  readonly phase: KeyPhase;
  /** The version being rotated to (`currentVersion + 1`), or `null` when idle. */
  readonly targetVersion: number | null;
  /** The sealed key-check value of the target version, or `null` when idle. */
  readonly targetCheck: Uint8Array | null;
  /**
   * Writes that seal new data must seal under this version or a higher
   * one: the store refuses others ({@linkcode StaleKeyVersionError}). It is
   * the target from the moment sealing begins, so no Nexus that missed the
   * rotation can seal under the old key again.
   */
  readonly minWriteVersion: number;
  /** Which Nexus runs the rotation now (an id of its own), or `null`. */
  readonly leaseOwner: string | null;
  /** Until when its lease holds; another Nexus takes over a rotation whose lease ran out. */
  readonly leaseUntil: Date | null;
  /** When the rotation started, or `null`. */
  readonly startedAt: Date | null;
  /** Records under the old version when sealing began (progress); 0 when idle. */
  readonly toReseal: number;
}

/** The fields of a key state change (the store sets the revision). */
export type KeyStateChange = Omit<KeyState, "revision">;

/**
 * What goes with a write that may seal new data: the root key version it
 * sealed under (the write gate) and the audit row of the request.
 */
export interface WriteOptions extends ChangeOptions {
  /**
   * The root key version the write sealed new data under; absent when it
   * sealed nothing (a delete, an undelete, a destroy, an expiry change).
   * Below the key state's `minWriteVersion` the write is refused with
   * `StaleKeyVersionError`, changing nothing.
   */
  readonly sealedUnder?: number;
}

/** What goes with a change that seals nothing. */
export interface ChangeOptions {
  /**
   * On a store with an audit table, inserted in the same transaction exactly
   * when the change happens; if the store refuses it, the change rolls back
   * and the call rejects with `AuditRowRefusedError`. Stores without an
   * audit table ignore it.
   */
  readonly audit?: AuditRow;
}

/** One compare-and-swap write of {@linkcode Store.writeSecrets}. */
export interface SecretWrite {
  /** The path. */
  readonly path: string;
  /** The revision read (0: the path must not exist). */
  readonly expectedRevision: number;
  /** The record to store. */
  readonly next: SecretRecord;
  /** The root key version this write sealed new data under; absent when it sealed nothing. */
  readonly sealedUnder?: number;
}

/** Records still sealed under versions below some version. */
export interface SealedBelowCount {
  /** Secret version rows (destroyed ones included: a rotation relabels them). */
  readonly secretVersions: number;
  /** Secrets whose custom metadata [ours] is sealed under a lower version. */
  readonly customMetadata: number;
  /** Sealed policy rows (plain rows are not sealed under any version and are not counted). */
  readonly policies: number;
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
   * `options.sealedUnder` gates the write by key version; `options.audit`
   * goes in the same transaction (see {@linkcode WriteOptions}).
   */
  writeSecret(path: string, expectedRevision: number, next: SecretRecord, options?: WriteOptions): Promise<boolean>;
  /**
   * Several `writeSecret`s in one transaction (one commit): each applies when
   * its revision still matches; resolves, per write, whether it did. A write
   * that throws (invalid, or refused for its key version) fails the whole call
   * and nothing is written. (No audit row: the rotation's re-sealing uses
   * it, which no request asks for.)
   */
  writeSecrets(writes: readonly SecretWrite[]): Promise<boolean[]>;
  /**
   * Removes the record at `path` with every version when its stored
   * revision equals `expectedRevision` (≥ 1). Resolves `false`, changing
   * nothing, when the path does not exist or another writer got there
   * first. It seals nothing, so no key version gates it; `options.audit` is
   * inserted exactly when the path was removed.
   */
  deleteSecret(path: string, expectedRevision: number, options?: ChangeOptions): Promise<boolean>;
  /**
   * Moves a record [ours], atomically: removes the record at `from` when its
   * stored revision is `fromRevision` (≥ 1) and stores `next` at `to` when
   * `to`'s stored revision is `toRevision` (0 = `to` must not exist), at
   * revision `toRevision + 1` — both, or, resolving `false`, neither (a
   * revision changed meanwhile). Nexus re-seals `next` for its new path
   * (the path is in every sealed value's associated data) under its write
   * key version, which it names in `options.sealedUnder` (gated as for
   * `writeSecret`); the store only moves bytes. `options.audit`: inserted
   * exactly when the move happened.
   */
  moveSecret(
    from: string,
    fromRevision: number,
    to: string,
    toRevision: number,
    next: SecretRecord,
    options?: WriteOptions,
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
   * Up to `limit` paths, in path order after `after` (exclusive; `""` from
   * the start), that have a version, or custom metadata, sealed under a
   * root key version below `version`.
   */
  secretPathsSealedBelow(version: number, after: string, limit: number): Promise<string[]>;
  /** How many records are sealed under root key versions below `version`. */
  countSealedBelow(version: number): Promise<SealedBelowCount>;
  /** The key state row. */
  keyState(): Promise<KeyState>;
  /**
   * Replaces the key state when its revision is still `expectedRevision`
   * (storing revision + 1). With `requireNoneBelow`, only when no record is
   * sealed under a version below it (the end of a rotation). When the
   * change raises `minWriteVersion`, it waits for writes in flight, so none
   * checked against the old minimum commits after it. Resolves whether it
   * applied.
   */
  changeKeyState(
    expectedRevision: number,
    next: KeyStateChange,
    options?: { readonly requireNoneBelow?: number },
  ): Promise<boolean>;
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
   * Inserts or replaces the policy row named `policy.name` (a plain row
   * becomes a sealed one). Refused with `StaleKeyVersionError` when
   * `policy.keyVersion` is below the key state's `minWriteVersion`.
   * `options.audit`: as for `writeSecret`.
   */
  upsertPolicy(policy: SealedPolicy, options?: ChangeOptions): Promise<void>;
  /** The policy row named `name`, or `undefined`. */
  getPolicy(name: string): Promise<StoredPolicy | undefined>;
  /**
   * Deletes the policy row named `name`, sealed or not; `false` when there
   * was none. `options.audit`: inserted when a row was deleted.
   */
  deletePolicy(name: string, options?: ChangeOptions): Promise<boolean>;
  /** Every policy row, sorted by name (UTF-8 byte order). */
  listPolicies(): Promise<StoredPolicy[]>;
  /**
   * Applies each replacement whose row is still as expected, all in one
   * transaction; resolves, per replacement, whether it was applied (a row
   * that changed or disappeared meanwhile is left alone). Used to seal the
   * plain rows of an older store and to re-seal rows under a new key, so
   * that a concurrent upsert always wins. Refused (nothing written) with
   * `StaleKeyVersionError` when a `next.keyVersion` is below the key state's
   * `minWriteVersion`.
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
