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
