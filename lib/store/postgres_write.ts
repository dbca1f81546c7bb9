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
 * A write that sealed new data names the root key version it sealed under;
 * the statement then locks the key state row `FOR SHARE` and swaps only when
 * that version is at least the row's `min_write_version`. A rotation raises
 * the minimum with an `UPDATE` of that row, which waits for every write
 * holding the lock, and a write that arrives meanwhile waits for the update
 * and then sees the new minimum (Read Committed re-reads a row it had to
 * wait for). So once the minimum is raised, no write sealed under an older
 * version commits. The statement answers the minimum it saw, so the caller
 * can tell a refusal from a lost compare-and-swap.
 *
 * A request's audit row [ours] rides in the same statement, inserted only
 * when the swap happened (after the gate, so a refused write leaves no row
 * either): the change and its row commit together or not at all.
 *
 * @module
 */
import { auditInsertCte } from "./postgres_audit.ts";
import type { SecretRecord, WriteOptions } from "./types.ts";

/** SQL text with `$n` placeholders, and the values for them. */
export interface Statement {
  /** The SQL. */
  readonly text: string;
  /** Parameter values, `$1` first. */
  readonly params: unknown[];
}

/**
 * The statement replacing the record at `path` when its revision is still
 * `expectedRevision` (and, with `options.sealedUnder`, when that key version
 * is still accepted); with `options.audit`, it also inserts that audit row
 * exactly when the swap happens, so neither commits without the other. It
 * answers `swapped` (0 or 1) and `min_write` (the key state's minimum, or
 * null without `sealedUnder`).
 */
export function secretWriteStatement(
  path: string,
  expectedRevision: number,
  next: SecretRecord,
  options: WriteOptions = {},
): Statement {
  const { sealedUnder, audit } = options;
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
    param(next.customMetadata?.sealed ?? null, "bytea"),
    param(next.customMetadata?.keyVersion ?? null, "integer"),
    param(next.expiresAt ?? null, "timestamptz"),
  ];
  const gated = sealedUnder !== undefined;
  const allowed = gated ? `${param(sealedUnder, "integer")} >= (SELECT min_write_version FROM gate)` : "true";
  const swap = expectedRevision === 0
    ? `INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_at, updated_at,
                           custom_metadata, custom_metadata_key_version, expires_at)
       SELECT ${p}, ${fields.join(", ")} WHERE ${allowed}
       ON CONFLICT (path) DO NOTHING
       RETURNING path`
    : `UPDATE secrets SET revision = ${fields[0]}, current_version = ${fields[1]}, oldest_version = ${fields[2]},
              max_versions = ${fields[3]}, created_at = ${fields[4]}, updated_at = ${fields[5]},
              custom_metadata = ${fields[6]}, custom_metadata_key_version = ${fields[7]}, expires_at = ${fields[8]}
       WHERE path = ${p} AND revision = ${param(expectedRevision, "bigint")} AND ${allowed}
       RETURNING path`;
  const kept = param([...next.versions.keys()], "integer[]");
  const ctes = [
    ...(gated ? ["gate AS (SELECT min_write_version FROM key_state WHERE id = 1 FOR SHARE)"] : []),
    `swapped AS (${swap})`,
    `pruned AS (
       DELETE FROM secret_versions
       WHERE path = ${p} AND NOT (version = ANY(${kept})) AND EXISTS (SELECT 1 FROM swapped))`,
  ];
  const rows = [...next.versions.values()].map((v) =>
    `(${param(v.version, "integer")}, ${param(v.createdTime, "timestamptz")}, ` +
    `${param(v.deletedTime, "timestamptz")}, ${param(v.sealed, "bytea")}, ${param(v.keyVersion, "integer")}, ` +
    `${param(v.expiresAt ?? null, "timestamptz")})`
  );
  if (rows.length > 0) {
    // A version row is rewritten only when something in it changed, so a put
    // touches one new row instead of all kept ones.
    ctes.push(`upserted AS (
       INSERT INTO secret_versions (path, version, created_at, deleted_at, sealed, key_version, expires_at)
       SELECT ${p}, v.version, v.created_at, v.deleted_at, v.sealed, v.key_version, v.expires_at
       FROM (VALUES ${rows.join(", ")}) AS v (version, created_at, deleted_at, sealed, key_version, expires_at)
       WHERE EXISTS (SELECT 1 FROM swapped)
       ON CONFLICT (path, version) DO UPDATE SET
         created_at = excluded.created_at, deleted_at = excluded.deleted_at, sealed = excluded.sealed,
         key_version = excluded.key_version, expires_at = excluded.expires_at
       WHERE (secret_versions.created_at, secret_versions.deleted_at, secret_versions.sealed,
              secret_versions.key_version, secret_versions.expires_at)
             IS DISTINCT FROM (excluded.created_at, excluded.deleted_at, excluded.sealed, excluded.key_version,
                               excluded.expires_at))`);
  }
  if (audit) ctes.push(auditInsertCte("audited", audit, param, "EXISTS (SELECT 1 FROM swapped)"));
  const minWrite = gated ? "(SELECT min_write_version FROM gate)" : "NULL::integer";
  return {
    text: `WITH ${
      ctes.join(",\n")
    }\nSELECT (SELECT count(*)::integer FROM swapped) AS swapped, ${minWrite} AS min_write`,
    params,
  };
}

/**
 * The statement removing the record at `path` (its versions go with it: ON
 * DELETE CASCADE) when its revision is still `expectedRevision`; answers
 * `removed` 1 or 0. A removal seals nothing, so no key version gates it.
 * With `audit`, it also inserts that audit row exactly when the path was
 * removed, so neither commits without the other.
 */
export function secretDeleteStatement(
  path: string,
  expectedRevision: number,
  audit?: WriteOptions["audit"],
): Statement {
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
