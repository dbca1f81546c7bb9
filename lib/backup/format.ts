/**
 * What a spike backup holds and how it is written down: the manifest
 * (format, source store and schema, the root key version and its sealed
 * key check value, counts, time), and the items of the logical export — one
 * JSON object per secret (with every kept version), policy row and meta
 * value, and the key state. Every byte string is sealed data or an opaque
 * value as the store keeps it (base64); a backup never holds a plaintext, a
 * key or a shard, so it needs no key to make.
 *
 * @module
 */
import { decodeBase64, encodeBase64 } from "../api/base64.ts";
import { checkKeyStateChange } from "../store/record_check.ts";
import type { KeyState, PolicyRecord, SecretRecord, SecretVersion, StoredPolicy } from "../store/types.ts";

/** The `format` value of every spike backup manifest. */
export const BACKUP_FORMAT = "spike-backup";
/**
 * The version of the backup format this build writes. Version 2 added the
 * key-value extensions' fields to secret items (`customMetadata`,
 * `expiresAt`, and a version's `expiresAt`), all optional. Version 3 added
 * root key versions: a version's `keyVersion` and the custom metadata's
 * `customMetadataKeyVersion` (absent: 1), sealed policy rows
 * (`keyVersion`, `sealed`) beside plain ones, a `key-state` item, and the
 * manifest's `keyVersion` (the version `keyCheck` belongs to; absent: 1).
 */
export const BACKUP_FORMAT_VERSION = 3;

/**
 * The versions this build reads: every one so far. An older backup simply
 * has none of the later fields: everything in it is under root key version
 * 1, and its policies are plain rows, which Nexus seals when it first holds
 * the key (their key check value is the format from before sealing).
 */
const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2, 3];

/** A backup that cannot be made, read or restored, with a message for the operator. */
export class BackupError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BackupError";
  }
}

/** How many rows of each kind a store or backup holds. */
export interface BackupCounts {
  /** Secret paths (including paths whose versions are all deleted). */
  readonly secrets: number;
  /** Kept secret versions, over all paths. */
  readonly versions: number;
  /** Policies. */
  readonly policies: number;
  /** Meta values (the sealed key check value among them). */
  readonly meta: number;
}

/** The stores a backup can come from or go to. */
export type BackupStoreKind = "sqlite" | "postgres";

/** What the backup file itself is. */
export type BackupFileKind = "sqlite" | "jsonl";

/** The facts about one backup, written beside it (and, in the JSON-lines form, as its first line). */
export interface BackupManifest {
  /** Always {@linkcode BACKUP_FORMAT}. */
  readonly format: typeof BACKUP_FORMAT;
  /** {@linkcode BACKUP_FORMAT_VERSION} of the writer. */
  readonly formatVersion: number;
  /** `sqlite`: a SQLite database file; `jsonl`: the logical export. */
  readonly kind: BackupFileKind;
  /** The spike version that wrote it. */
  readonly spikeVersion: string;
  /** When the snapshot was taken (ISO 8601). */
  readonly createdAt: string;
  /** The store it was taken from and that store's schema version. */
  readonly source: { readonly store: BackupStoreKind; readonly schemaVersion: number };
  /**
   * The root key version the store's records are under (the key state's
   * current version; 1 for backups older than format 3). During a rotation
   * some records are under the next version already (`rotatingTo`).
   */
  readonly keyVersion: number;
  /** The version a rotation in progress when the backup was taken goes to; absent when none was. */
  readonly rotatingTo?: number;
  /**
   * The sealed check value of root key version `keyVersion` (base64), or
   * `null` when the store never had a key. Sealed under a key derived from
   * the root key: it tells which recovery shards belong to this backup, and
   * reveals nothing without them.
   */
  readonly keyCheck: string | null;
  /** Rows of each kind in the snapshot. */
  readonly counts: BackupCounts;
  /** SHA-256 (hex) of the backup file; for `jsonl`, of every line but the last (which carries it too). */
  readonly sha256: string;
}

/** One stored row group of a backup. */
export type BackupItem =
  | { readonly kind: "secret"; readonly path: string; readonly record: SecretRecord }
  | { readonly kind: "policy"; readonly policy: StoredPolicy }
  | { readonly kind: "meta"; readonly key: string; readonly value: Uint8Array }
  | { readonly kind: "key-state"; readonly state: KeyState };

/** Counts of `items` as they would be stored. */
export function countItem(counts: BackupCounts, item: BackupItem): BackupCounts {
  switch (item.kind) {
    case "secret":
      return { ...counts, secrets: counts.secrets + 1, versions: counts.versions + item.record.versions.size };
    case "policy":
      return { ...counts, policies: counts.policies + 1 };
    case "meta":
      return { ...counts, meta: counts.meta + 1 };
    case "key-state":
      // One row every store has; restoring replaces it, so it adds nothing to count.
      return counts;
  }
}

/** No rows at all. */
export const NO_ROWS: BackupCounts = Object.freeze({ secrets: 0, versions: 0, policies: 0, meta: 0 });

/** Whether two counts agree. */
export function sameCounts(a: BackupCounts, b: BackupCounts): boolean {
  return a.secrets === b.secrets && a.versions === b.versions && a.policies === b.policies && a.meta === b.meta;
}

/** `12 secrets (30 versions), 2 policies, 1 meta value`. */
export function describeCounts(c: BackupCounts): string {
  return `${c.secrets} secret${c.secrets === 1 ? "" : "s"} (${c.versions} version${c.versions === 1 ? "" : "s"}), ` +
    `${c.policies} polic${c.policies === 1 ? "y" : "ies"}, ${c.meta} meta value${c.meta === 1 ? "" : "s"}`;
}

/** The JSON object of one item in the logical export. */
export function encodeItem(item: BackupItem): Record<string, unknown> {
  switch (item.kind) {
    case "secret": {
      const r = item.record;
      return {
        type: "secret",
        path: item.path,
        revision: r.revision,
        currentVersion: r.currentVersion,
        oldestVersion: r.oldestVersion,
        maxVersions: r.maxVersions,
        createdTime: r.createdTime.toISOString(),
        updatedTime: r.updatedTime.toISOString(),
        versions: [...r.versions.values()].sort((a, b) => a.version - b.version).map((v) => ({
          version: v.version,
          createdTime: v.createdTime.toISOString(),
          deletedTime: v.deletedTime?.toISOString() ?? null,
          sealed: encodeBase64(v.sealed),
          keyVersion: v.keyVersion,
          ...(v.expiresAt === undefined ? {} : { expiresAt: v.expiresAt.toISOString() }),
        })),
        ...(r.customMetadata === undefined ? {} : {
          customMetadata: encodeBase64(r.customMetadata.sealed),
          customMetadataKeyVersion: r.customMetadata.keyVersion,
        }),
        ...(r.expiresAt === undefined ? {} : { expiresAt: r.expiresAt.toISOString() }),
      };
    }
    case "policy": {
      const row = item.policy;
      if (row.kind === "sealed") {
        return { type: "policy", name: row.name, keyVersion: row.keyVersion, sealed: encodeBase64(row.sealed) };
      }
      // A plain row (from before policies were sealed) as the store holds it; one whose
      // columns make no policy is kept by name only (Nexus never obeys either).
      const p = row.record;
      if (!p) return { type: "policy", name: row.name };
      return {
        type: "policy",
        name: p.name,
        spiffeIdPattern: p.spiffeIdPattern,
        pathPattern: p.pathPattern,
        permissions: [...p.permissions],
        createdAt: p.createdAt.toISOString(),
        updatedAt: p.updatedAt.toISOString(),
      };
    }
    case "meta":
      return { type: "meta", key: item.key, value: encodeBase64(item.value) };
    case "key-state": {
      const k = item.state;
      return {
        type: "key-state",
        revision: k.revision,
        currentVersion: k.currentVersion,
        phase: k.phase,
        targetVersion: k.targetVersion,
        targetCheck: k.targetCheck === null ? null : encodeBase64(k.targetCheck),
        minWriteVersion: k.minWriteVersion,
        leaseOwner: k.leaseOwner,
        leaseUntil: k.leaseUntil?.toISOString() ?? null,
        startedAt: k.startedAt?.toISOString() ?? null,
        toReseal: k.toReseal,
      };
    }
  }
}

/** Reads one item of the logical export back; throws `BackupError` naming `where` when it is malformed. */
export function decodeItem(value: unknown, where: string): BackupItem {
  const o = object(value, where);
  switch (o.type) {
    case "secret": {
      const versions = new Map<number, SecretVersion>();
      if (!Array.isArray(o.versions)) throw bad(where, "versions");
      for (const entry of o.versions) {
        const v = object(entry, where);
        const version = count(v.version, where, "version", 1);
        if (versions.has(version)) throw bad(where, `version ${version} (twice)`);
        versions.set(version, {
          version,
          createdTime: date(v.createdTime, where, "version createdTime"),
          deletedTime: v.deletedTime === null ? null : date(v.deletedTime, where, "version deletedTime"),
          sealed: bytes(v.sealed, where, "sealed"),
          // Format 1 and 2: everything was under root key version 1.
          keyVersion: v.keyVersion === undefined ? 1 : count(v.keyVersion, where, "version keyVersion", 1),
          ...(v.expiresAt === undefined ? {} : { expiresAt: date(v.expiresAt, where, "version expiresAt") }),
        });
      }
      return {
        kind: "secret",
        path: text(o.path, where, "path"),
        record: {
          revision: count(o.revision, where, "revision", 1),
          currentVersion: count(o.currentVersion, where, "currentVersion", 0),
          oldestVersion: count(o.oldestVersion, where, "oldestVersion", 0),
          maxVersions: count(o.maxVersions, where, "maxVersions", 0),
          createdTime: date(o.createdTime, where, "createdTime"),
          updatedTime: date(o.updatedTime, where, "updatedTime"),
          versions,
          ...(o.customMetadata === undefined ? {} : {
            customMetadata: {
              sealed: bytes(o.customMetadata, where, "customMetadata"),
              keyVersion: o.customMetadataKeyVersion === undefined
                ? 1
                : count(o.customMetadataKeyVersion, where, "customMetadataKeyVersion", 1),
            },
          }),
          ...(o.expiresAt === undefined ? {} : { expiresAt: date(o.expiresAt, where, "expiresAt") }),
        },
      };
    }
    case "policy": {
      const name = text(o.name, where, "name");
      if (o.sealed !== undefined) {
        return {
          kind: "policy",
          policy: {
            kind: "sealed",
            name,
            keyVersion: count(o.keyVersion, where, "keyVersion", 1),
            sealed: bytes(o.sealed, where, "sealed"),
          },
        };
      }
      if (o.spiffeIdPattern === undefined && o.pathPattern === undefined && o.permissions === undefined) {
        return { kind: "policy", policy: { kind: "plain", name } };
      }
      if (!Array.isArray(o.permissions) || !o.permissions.every((p) => typeof p === "string")) {
        throw bad(where, "permissions");
      }
      return {
        kind: "policy",
        policy: {
          kind: "plain",
          name,
          record: {
            name,
            spiffeIdPattern: text(o.spiffeIdPattern, where, "spiffeIdPattern", true),
            pathPattern: text(o.pathPattern, where, "pathPattern", true),
            permissions: o.permissions as PolicyRecord["permissions"],
            createdAt: date(o.createdAt, where, "createdAt"),
            updatedAt: date(o.updatedAt, where, "updatedAt"),
          },
        },
      };
    }
    case "meta":
      return { kind: "meta", key: text(o.key, where, "key"), value: bytes(o.value, where, "value") };
    case "key-state": {
      const nullable = <T>(value: unknown, read: (v: unknown) => T): T | null => value === null ? null : read(value);
      const state: KeyState = {
        revision: count(o.revision, where, "revision", 1),
        currentVersion: count(o.currentVersion, where, "currentVersion", 1),
        phase: o.phase as KeyState["phase"],
        targetVersion: nullable(o.targetVersion, (v) => count(v, where, "targetVersion", 1)),
        targetCheck: nullable(o.targetCheck, (v) => bytes(v, where, "targetCheck")),
        minWriteVersion: count(o.minWriteVersion, where, "minWriteVersion", 1),
        leaseOwner: nullable(o.leaseOwner, (v) => text(v, where, "leaseOwner")),
        leaseUntil: nullable(o.leaseUntil, (v) => date(v, where, "leaseUntil")),
        startedAt: nullable(o.startedAt, (v) => date(v, where, "startedAt")),
        toReseal: count(o.toReseal, where, "toReseal", 0),
      };
      try {
        const { revision, ...change } = state;
        checkKeyStateChange(revision, change);
      } catch {
        throw bad(where, "key state");
      }
      return { kind: "key-state", state };
    }
    default:
      throw new BackupError(`${where}: unknown item type`);
  }
}

/** Checks that `value` is a manifest this build can read; throws `BackupError` saying what is wrong. */
export function checkManifest(value: unknown, where: string): BackupManifest {
  const o = object(value, where);
  if (o.format !== BACKUP_FORMAT) throw new BackupError(`${where} is not a spike backup manifest`);
  if (typeof o.formatVersion !== "number" || !READABLE_FORMAT_VERSIONS.includes(o.formatVersion)) {
    throw new BackupError(
      `${where}: backup format version ${String(o.formatVersion)} is not one this build reads ` +
        `(${READABLE_FORMAT_VERSIONS.join(", ")})`,
    );
  }
  if (o.kind !== "sqlite" && o.kind !== "jsonl") throw bad(where, "kind");
  const source = object(o.source, where);
  if (source.store !== "sqlite" && source.store !== "postgres") throw bad(where, "source.store");
  const counts = object(o.counts, where);
  if (o.keyCheck !== null) bytes(o.keyCheck, where, "keyCheck");
  // Format 1 and 2 backups have no key version: their store had only version 1.
  const keyVersion = o.keyVersion === undefined ? 1 : count(o.keyVersion, where, "keyVersion", 1);
  const rotatingTo = o.rotatingTo === undefined ? undefined : count(o.rotatingTo, where, "rotatingTo", 2);
  if (typeof o.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(o.sha256)) throw bad(where, "sha256");
  return {
    format: BACKUP_FORMAT,
    formatVersion: o.formatVersion,
    kind: o.kind,
    spikeVersion: text(o.spikeVersion, where, "spikeVersion"),
    createdAt: date(o.createdAt, where, "createdAt").toISOString(),
    source: { store: source.store, schemaVersion: count(source.schemaVersion, where, "source.schemaVersion", 0) },
    keyVersion,
    ...(rotatingTo === undefined ? {} : { rotatingTo }),
    keyCheck: o.keyCheck as string | null,
    counts: {
      secrets: count(counts.secrets, where, "counts.secrets", 0),
      versions: count(counts.versions, where, "counts.versions", 0),
      policies: count(counts.policies, where, "counts.policies", 0),
      meta: count(counts.meta, where, "counts.meta", 0),
    },
    sha256: o.sha256,
  };
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new BackupError(`${where}: not an object`);
  }
  return value as Record<string, unknown>;
}

function bad(where: string, field: string): BackupError {
  return new BackupError(`${where}: invalid ${field}`);
}

function count(value: unknown, where: string, field: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) throw bad(where, field);
  return value;
}

function text(value: unknown, where: string, field: string, emptyOk = false): string {
  if (typeof value !== "string" || (!emptyOk && value === "")) throw bad(where, field);
  return value;
}

function date(value: unknown, where: string, field: string): Date {
  const parsed = typeof value === "string" ? new Date(value) : undefined;
  if (!parsed || Number.isNaN(parsed.getTime())) throw bad(where, field);
  return parsed;
}

function bytes(value: unknown, where: string, field: string): Uint8Array {
  const decoded = typeof value === "string" ? decodeBase64(value) : undefined;
  if (!decoded) throw bad(where, field);
  return decoded;
}
