/**
 * Turns rows of the SQL backends into store records: a `SecretRecord` from
 * the one query both read a secret with (the secret row left-joined to its
 * versions, one row per version, or one row with a null version when none
 * is left), and a `PolicyRecord` from a policy row. Each backend passes the
 * decoders of its own column types; the queries alias columns to the names
 * below.
 *
 * Secret columns, in this order ({@linkcode SECRET_JOIN_COLUMNS}):
 * `revision`, `current_version`, `oldest_version`, `max_versions`,
 * `created`, `updated`, `custom_metadata`, `custom_metadata_key_version`,
 * `expires`, `version`, `v_created`, `v_deleted`, `sealed`, `key_version`,
 * `v_expires`. SQLite's read hands them over as arrays in that order
 * (building an object with 15 named properties per row cost ~4 % of a
 * secret read's CPU); Postgres and the backups hand over objects.
 * Policy columns: `name`, `key_version`, `sealed`, and the plain
 * columns of rows from before sealing: `spiffe_id_pattern`, `path_pattern`,
 * `permissions`, `created`, `updated`.
 *
 * @module
 */
import type { KeyState, Permission, PolicyRecord, SecretRecord, SecretVersion, StoredPolicy } from "./types.ts";

/** How a backend turns its column values into JavaScript values. */
export interface ColumnDecoders {
  /** An integer column. */
  int(value: unknown): number;
  /** A timestamp column. */
  date(value: unknown): Date;
  /** A byte column, copied. */
  bytes(value: unknown): Uint8Array;
  /** A text column. */
  text(value: unknown): string;
  /** The permissions column (JSON text in SQLite, `jsonb` in Postgres). */
  permissions(value: unknown): Permission[];
}

/** The columns of the secret read's join, in the order its SELECT lists them. */
export const SECRET_JOIN_COLUMNS = [
  "revision",
  "current_version",
  "oldest_version",
  "max_versions",
  "created",
  "updated",
  "custom_metadata",
  "custom_metadata_key_version",
  "expires",
  "version",
  "v_created",
  "v_deleted",
  "sealed",
  "key_version",
  "v_expires",
] as const;

// Positions in SECRET_JOIN_COLUMNS (a test checks they agree).
const REVISION = 0;
const CURRENT_VERSION = 1;
const OLDEST_VERSION = 2;
const MAX_VERSIONS = 3;
const CREATED = 4;
const UPDATED = 5;
const CUSTOM_METADATA = 6;
const CUSTOM_METADATA_KEY_VERSION = 7;
const EXPIRES = 8;
const VERSION = 9;
const V_CREATED = 10;
const V_DELETED = 11;
const SEALED = 12;
const KEY_VERSION = 13;
const V_EXPIRES = 14;

/** @internal The positions the array form reads, by column name, for the test that checks them. */
export const SECRET_JOIN_POSITIONS: Readonly<Record<(typeof SECRET_JOIN_COLUMNS)[number], number>> = Object.freeze({
  revision: REVISION,
  current_version: CURRENT_VERSION,
  oldest_version: OLDEST_VERSION,
  max_versions: MAX_VERSIONS,
  created: CREATED,
  updated: UPDATED,
  custom_metadata: CUSTOM_METADATA,
  custom_metadata_key_version: CUSTOM_METADATA_KEY_VERSION,
  expires: EXPIRES,
  version: VERSION,
  v_created: V_CREATED,
  v_deleted: V_DELETED,
  sealed: SEALED,
  key_version: KEY_VERSION,
  v_expires: V_EXPIRES,
});

/**
 * The record the joined rows describe, each row an array of the
 * {@linkcode SECRET_JOIN_COLUMNS} in order; `undefined` when there are none
 * (no such path).
 */
export function recordFromJoinArrays(
  rows: readonly (readonly unknown[])[],
  decode: ColumnDecoders,
): SecretRecord | undefined {
  const first = rows[0];
  if (!first) return undefined;
  const versions = new Map<number, SecretVersion>();
  for (const row of rows) {
    if (row[VERSION] === null) continue; // a record with no versions left
    const version = decode.int(row[VERSION]);
    versions.set(version, {
      version,
      createdTime: decode.date(row[V_CREATED]),
      deletedTime: row[V_DELETED] === null ? null : decode.date(row[V_DELETED]),
      sealed: decode.bytes(row[SEALED]),
      keyVersion: decode.int(row[KEY_VERSION]),
      ...(row[V_EXPIRES] == null ? {} : { expiresAt: decode.date(row[V_EXPIRES]) }),
    });
  }
  return {
    revision: decode.int(first[REVISION]),
    currentVersion: decode.int(first[CURRENT_VERSION]),
    oldestVersion: decode.int(first[OLDEST_VERSION]),
    maxVersions: decode.int(first[MAX_VERSIONS]),
    createdTime: decode.date(first[CREATED]),
    updatedTime: decode.date(first[UPDATED]),
    versions,
    ...(first[CUSTOM_METADATA] == null ? {} : {
      customMetadata: {
        sealed: decode.bytes(first[CUSTOM_METADATA]),
        // Metadata stored before key versions (schema step 6 sets 1 on those rows).
        keyVersion: first[CUSTOM_METADATA_KEY_VERSION] == null ? 1 : decode.int(first[CUSTOM_METADATA_KEY_VERSION]),
      },
    }),
    ...(first[EXPIRES] == null ? {} : { expiresAt: decode.date(first[EXPIRES]) }),
  };
}

/** {@linkcode recordFromJoinArrays} for rows as objects keyed by the column names. */
export function recordFromJoinRows(
  rows: readonly Record<string, unknown>[],
  decode: ColumnDecoders,
): SecretRecord | undefined {
  return recordFromJoinArrays(rows.map((row) => SECRET_JOIN_COLUMNS.map((column) => row[column])), decode);
}

/**
 * The policy row a row describes. A row is sealed when it holds sealed bytes
 * and a key version ≥ 1; anything else is a plain row, with its plain
 * columns decoded when they make a policy. Decoding never throws on a row's
 * content: a row written by hand must not make the whole list unreadable.
 */
export function storedPolicyFromRow(row: Record<string, unknown>, decode: ColumnDecoders): StoredPolicy {
  const name = decode.text(row.name);
  if (row.sealed !== null && row.sealed !== undefined && row.key_version !== null) {
    try {
      const keyVersion = decode.int(row.key_version);
      if (keyVersion >= 1) return { kind: "sealed", name, keyVersion, sealed: decode.bytes(row.sealed) };
    } catch {
      // Not a sealed row after all: reported as plain below.
    }
  }
  try {
    const record: PolicyRecord = {
      name,
      spiffeIdPattern: decode.text(row.spiffe_id_pattern),
      pathPattern: decode.text(row.path_pattern),
      permissions: decode.permissions(row.permissions),
      createdAt: decode.date(row.created),
      updatedAt: decode.date(row.updated),
    };
    const wellFormed = Array.isArray(record.permissions) && record.permissions.every((p) => typeof p === "string") &&
      !Number.isNaN(record.createdAt.getTime()) && !Number.isNaN(record.updatedAt.getTime());
    return wellFormed ? { kind: "plain", name, record } : { kind: "plain", name };
  } catch {
    return { kind: "plain", name };
  }
}

/** The key state a row describes (columns as in the schema, times aliased `lease_until`, `started`). */
export function keyStateFromRow(row: Record<string, unknown>, decode: ColumnDecoders): KeyState {
  const phase = decode.text(row.phase);
  if (phase !== "idle" && phase !== "preparing" && phase !== "sealing") {
    throw new TypeError("store: unexpected key phase");
  }
  return {
    revision: decode.int(row.revision),
    currentVersion: decode.int(row.current_version),
    phase,
    targetVersion: row.target_version === null ? null : decode.int(row.target_version),
    targetCheck: row.target_check === null ? null : decode.bytes(row.target_check),
    minWriteVersion: decode.int(row.min_write_version),
    leaseOwner: row.lease_owner === null ? null : decode.text(row.lease_owner),
    leaseUntil: row.lease_until === null ? null : decode.date(row.lease_until),
    startedAt: row.started === null ? null : decode.date(row.started),
    toReseal: decode.int(row.to_reseal),
  };
}

/** A text column, the same in every SQL backend. */
export function textColumn(value: unknown): string {
  if (typeof value === "string") return value;
  throw new TypeError("store: unexpected column type");
}
