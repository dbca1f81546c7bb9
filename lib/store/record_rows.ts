/**
 * Turns rows of the SQL backends into store records: a `SecretRecord` from
 * the one query both read a secret with (the secret row left-joined to its
 * versions, one row per version, or one row with a null version when none
 * is left), and a `PolicyRecord` from a policy row. Each backend passes the
 * decoders of its own column types; the queries alias columns to the names
 * below.
 *
 * Secret columns: `revision`, `current_version`, `oldest_version`,
 * `max_versions`, `created`, `updated`, `custom_metadata`, `expires`,
 * `version`, `v_created`, `v_deleted`, `sealed`, `v_expires`. Policy columns: `name`, `spiffe_id_pattern`, `path_pattern`,
 * `permissions`, `created`, `updated`.
 *
 * @module
 */
import type { Permission, PolicyRecord, SecretRecord, SecretVersion } from "./types.ts";

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

/** The record the joined rows describe, or `undefined` when there are none (no such path). */
export function recordFromJoinRows(
  rows: readonly Record<string, unknown>[],
  decode: ColumnDecoders,
): SecretRecord | undefined {
  const first = rows[0];
  if (!first) return undefined;
  const versions = new Map<number, SecretVersion>();
  for (const row of rows) {
    if (row.version === null) continue; // a record with no versions left
    const version = decode.int(row.version);
    versions.set(version, {
      version,
      createdTime: decode.date(row.v_created),
      deletedTime: row.v_deleted === null ? null : decode.date(row.v_deleted),
      sealed: decode.bytes(row.sealed),
      ...(row.v_expires == null ? {} : { expiresAt: decode.date(row.v_expires) }),
    });
  }
  return {
    revision: decode.int(first.revision),
    currentVersion: decode.int(first.current_version),
    oldestVersion: decode.int(first.oldest_version),
    maxVersions: decode.int(first.max_versions),
    createdTime: decode.date(first.created),
    updatedTime: decode.date(first.updated),
    versions,
    ...(first.custom_metadata == null ? {} : { customMetadata: decode.bytes(first.custom_metadata) }),
    ...(first.expires == null ? {} : { expiresAt: decode.date(first.expires) }),
  };
}

/** The policy a row describes. */
export function policyFromRow(row: Record<string, unknown>, decode: ColumnDecoders): PolicyRecord {
  return {
    name: decode.text(row.name),
    spiffeIdPattern: decode.text(row.spiffe_id_pattern),
    pathPattern: decode.text(row.path_pattern),
    permissions: decode.permissions(row.permissions),
    createdAt: decode.date(row.created),
    updatedAt: decode.date(row.updated),
  };
}

/** A text column, the same in every SQL backend. */
export function textColumn(value: unknown): string {
  if (typeof value === "string") return value;
  throw new TypeError("store: unexpected column type");
}
