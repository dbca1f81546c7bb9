/**
 * Shared by the SQL backends' backup code: secret rows arrive from one
 * ordered join (a secret row left-joined to its versions, ordered by path
 * and version), and are regrouped here into one record per path while
 * streaming, so a backup never holds the whole store in memory.
 *
 * @module
 */
import type { BackupItem } from "../backup/format.ts";
import { type ColumnDecoders, recordFromJoinRows } from "./record_rows.ts";

type Row = Record<string, unknown>;

/**
 * Groups consecutive rows by their `path` column and yields one secret item
 * per path. Rows must be ordered by path, then version.
 */
export async function* secretItems(
  rows: AsyncIterable<Row> | Iterable<Row>,
  decode: ColumnDecoders,
): AsyncGenerator<BackupItem> {
  let path: string | undefined;
  let group: Row[] = [];
  const flush = (): BackupItem | undefined => {
    if (path === undefined) return undefined;
    const record = recordFromJoinRows(group, decode)!;
    return { kind: "secret", path, record };
  };
  for await (const row of rows) {
    const rowPath = decode.text(row.path);
    if (rowPath !== path) {
      const item = flush();
      if (item) yield item;
      path = rowPath;
      group = [];
    }
    group.push(row);
  }
  const last = flush();
  if (last) yield last;
}

/** Where a SQL backend's schema differs for the backup's queries. */
export interface BackupQueryDialect {
  /** Suffix of the time columns: `ms` (SQLite, integer milliseconds) or `at` (Postgres, timestamptz). */
  readonly time: "ms" | "at";
  /** Schema versions that added custom metadata, expiry, sealed policies and key versions. */
  readonly steps: {
    readonly customMetadata: number;
    readonly expiry: number;
    readonly sealedPolicies: number;
    readonly keyVersions: number;
  };
}

/**
 * Every secret row with its versions, ordered for {@linkcode secretItems},
 * from a database at `schemaVersion`: the columns later steps added read
 * as NULL (key versions: 1) from an older schema, such as a database an
 * earlier build left, backed up before this build migrated it.
 */
export function secretsQuery(schemaVersion: number, dialect: BackupQueryDialect): string {
  const { time, steps } = dialect;
  const since = (version: number, column: string, alias: string, before = "NULL") =>
    schemaVersion >= version ? `${column} AS ${alias}` : `${before} AS ${alias}`;
  return `
    SELECT s.path, s.revision, s.current_version, s.oldest_version, s.max_versions,
           s.created_${time} AS created, s.updated_${time} AS updated,
           ${since(steps.customMetadata, "s.custom_metadata", "custom_metadata")},
           ${since(steps.keyVersions, "s.custom_metadata_key_version", "custom_metadata_key_version")},
           ${since(steps.expiry, `s.expires_${time}`, "expires")},
           v.version, v.created_${time} AS v_created, v.deleted_${time} AS v_deleted, v.sealed,
           ${since(steps.keyVersions, "v.key_version", "key_version", "1")},
           ${since(steps.expiry, `v.expires_${time}`, "v_expires")}
    FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path
    ORDER BY s.path, v.version`;
}

/**
 * Every policy row, sorted by name, from a database at `schemaVersion`
 * (rows from before sealed policies are all plain), aliased as
 * `storedPolicyFromRow` reads them.
 */
export function policiesQuery(schemaVersion: number, dialect: BackupQueryDialect): string {
  const { time, steps } = dialect;
  const sealed = schemaVersion >= steps.sealedPolicies ? "key_version, sealed" : "NULL AS key_version, NULL AS sealed";
  return `SELECT name, ${sealed}, spiffe_id_pattern, path_pattern, permissions,
                 created_${time} AS created, updated_${time} AS updated
          FROM policies ORDER BY name`;
}
