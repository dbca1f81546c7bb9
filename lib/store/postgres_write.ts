/**
 * A whole secret write as one Postgres statement, so that a put costs one
 * round trip and one implicit transaction instead of BEGIN, the swap, the
 * version changes and COMMIT, each waiting for the server.
 *
 * The statement's first data-modifying CTE is the compare-and-swap itself
 * (`UPDATE … WHERE revision = $expected`, or `INSERT … ON CONFLICT DO
 * NOTHING` for a new path). The version deletions and upserts run only
 * when it returned a row (`WHERE EXISTS (SELECT 1 FROM swapped)`), and the
 * statement answers how many rows it swapped: 1, or 0 when another writer
 * got there first. Postgres row locks make a concurrent writer wait and then
 * re-check its `WHERE` against the committed row, so exactly one of two
 * writers with the same expected revision swaps; since every write bumps the
 * revision, a statement that swapped saw no other change to that path, and
 * its deletions and upserts work on the state it computed from.
 *
 * @module
 */
import { auditInsertCte } from "./postgres_audit.ts";
import type { AuditRow, SecretRecord } from "./types.ts";

/** SQL text with `$n` placeholders, and the values for them. */
export interface Statement {
  /** The SQL. */
  readonly text: string;
  /** Parameter values, `$1` first. */
  readonly params: unknown[];
}

/**
 * The statement replacing the record at `path` when its revision is still
 * `expectedRevision`; with `audit`, it also inserts that audit row exactly
 * when the swap happens, so neither commits without the other.
 */
export function secretWriteStatement(
  path: string,
  expectedRevision: number,
  next: SecretRecord,
  audit?: AuditRow,
): Statement {
  const params: unknown[] = [];
  const param = (value: unknown, type: string) => {
    params.push(value);
    return `$${params.length}::${type}`;
  };
  const p = param(path, "text");
  const fields = [
    param(expectedRevision + 1, "bigint"),
    param(next.currentVersion, "integer"),
    param(next.oldestVersion, "integer"),
    param(next.maxVersions, "integer"),
    param(next.createdTime, "timestamptz"),
    param(next.updatedTime, "timestamptz"),
    param(next.customMetadata ?? null, "bytea"),
    param(next.expiresAt ?? null, "timestamptz"),
  ];
  const swap = expectedRevision === 0
    ? `INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_at, updated_at,
                           custom_metadata, expires_at)
       VALUES (${p}, ${fields.join(", ")})
       ON CONFLICT (path) DO NOTHING
       RETURNING path`
    : `UPDATE secrets SET revision = ${fields[0]}, current_version = ${fields[1]}, oldest_version = ${fields[2]},
              max_versions = ${fields[3]}, created_at = ${fields[4]}, updated_at = ${fields[5]},
              custom_metadata = ${fields[6]}, expires_at = ${fields[7]}
       WHERE path = ${p} AND revision = ${param(expectedRevision, "bigint")}
       RETURNING path`;
  const kept = param([...next.versions.keys()], "integer[]");
  const ctes = [
    `swapped AS (${swap})`,
    `pruned AS (
       DELETE FROM secret_versions
       WHERE path = ${p} AND NOT (version = ANY(${kept})) AND EXISTS (SELECT 1 FROM swapped))`,
  ];
  const rows = [...next.versions.values()].map((v) =>
    `(${param(v.version, "integer")}, ${param(v.createdTime, "timestamptz")}, ` +
    `${param(v.deletedTime, "timestamptz")}, ${param(v.sealed, "bytea")}, ${param(v.expiresAt ?? null, "timestamptz")})`
  );
  if (rows.length > 0) {
    // A version row is rewritten only when something in it changed, so a put
    // touches one new row instead of all kept ones.
    ctes.push(`upserted AS (
       INSERT INTO secret_versions (path, version, created_at, deleted_at, sealed, expires_at)
       SELECT ${p}, v.version, v.created_at, v.deleted_at, v.sealed, v.expires_at
       FROM (VALUES ${rows.join(", ")}) AS v (version, created_at, deleted_at, sealed, expires_at)
       WHERE EXISTS (SELECT 1 FROM swapped)
       ON CONFLICT (path, version) DO UPDATE SET
         created_at = excluded.created_at, deleted_at = excluded.deleted_at, sealed = excluded.sealed,
         expires_at = excluded.expires_at
       WHERE (secret_versions.created_at, secret_versions.deleted_at, secret_versions.sealed,
              secret_versions.expires_at)
             IS DISTINCT FROM (excluded.created_at, excluded.deleted_at, excluded.sealed, excluded.expires_at))`);
  }
  if (audit) ctes.push(auditInsertCte("audited", audit, param, "EXISTS (SELECT 1 FROM swapped)"));
  return { text: `WITH ${ctes.join(",\n")}\nSELECT count(*)::integer AS swapped FROM swapped`, params };
}

/**
 * The statement removing the record at `path` (its versions go with it: ON
 * DELETE CASCADE) when its revision is still `expectedRevision`; answers
 * `removed` 1 or 0. With `audit`, it also inserts that audit row exactly
 * when the path was removed, so neither commits without the other.
 */
export function secretDeleteStatement(path: string, expectedRevision: number, audit?: AuditRow): Statement {
  const params: unknown[] = [];
  const param = (value: unknown, type: string) => {
    params.push(value);
    return `$${params.length}::${type}`;
  };
  const ctes = [
    `removed AS (
       DELETE FROM secrets WHERE path = ${param(path, "text")} AND revision = ${param(expectedRevision, "bigint")}
       RETURNING 1)`,
  ];
  if (audit) ctes.push(auditInsertCte("audited", audit, param, "EXISTS (SELECT 1 FROM removed)"));
  return { text: `WITH ${ctes.join(",\n")}\nSELECT count(*)::integer AS removed FROM removed`, params };
}
