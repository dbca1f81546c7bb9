/**
 * Writes plain-text policy rows straight into a database, the way a store
 * written before policies were sealed holds them, or the way someone with
 * write access to the database would add one. Tests only.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import type { PolicyRecord } from "../types.ts";

/** Inserts `records` as plain rows into the (migrated) SQLite file `file`. */
export function insertPlainPoliciesSqlite(file: string, records: readonly PolicyRecord[]): void {
  const db = new DatabaseSync(file);
  try {
    const insert = db.prepare(
      "INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const p of records) {
      insert.run(
        p.name,
        p.spiffeIdPattern,
        p.pathPattern,
        JSON.stringify(p.permissions),
        p.createdAt.getTime(),
        p.updatedAt.getTime(),
      );
    }
  } finally {
    db.close();
  }
}

/** Inserts `records` as plain rows into the (migrated) Postgres database at `url`. */
export async function insertPlainPoliciesPostgres(url: string, records: readonly PolicyRecord[]): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (const p of records) {
      await sql`
        INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_at, updated_at)
        VALUES (${p.name}, ${p.spiffeIdPattern}, ${p.pathPattern}, ${sql.json([...p.permissions])},
                ${p.createdAt}, ${p.updatedAt})`;
    }
  } finally {
    await sql.end();
  }
}
