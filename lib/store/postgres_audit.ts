/**
 * The `audit_logs` table of the Postgres backend [ours]: audit records as
 * rows (`audit_row.ts`), one per chained record, keyed by the writing
 * Nexus's chain id and sequence number. Columns hold the fields for queries;
 * `line` holds the exact line, so the table verifies like the file:
 *
 * ```sh
 * psql -At -c "SELECT line FROM audit_logs ORDER BY instance, seq" | spike audit verify -
 * ```
 *
 * A change's intent row goes in the change's own statement or transaction,
 * so a secret or policy write cannot commit without it; other rows are
 * appended in batches.
 *
 * @module
 */
import type { Sql, TransactionSql } from "postgres";
import { type AuditRow, AuditRowRefusedError } from "./audit_row.ts";

/** The schema step that creates the table (appended to the migrations as its own version). */
export const AUDIT_LOGS_MIGRATION_SQL = `
  CREATE TABLE audit_logs (
    instance    uuid        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    segment     integer     NOT NULL CHECK (segment >= 0),
    recorded_at timestamptz NOT NULL,
    type        text        NOT NULL,
    event       text,
    trail       uuid,
    spiffe_id   text,
    route       text,
    action      text,
    resource    text,
    permissions jsonb,
    status      integer,
    err         text,
    outcome     text,
    duration_ms double precision,
    key_version integer,
    prev        text,
    mac         text        NOT NULL,
    line        text        NOT NULL,
    PRIMARY KEY (instance, seq)
  );
  CREATE INDEX audit_logs_recorded_at ON audit_logs (recorded_at);
  CREATE INDEX audit_logs_trail ON audit_logs (trail);
`;

/** Column names, in the order `auditValues` gives them. */
const COLUMNS = [
  "instance",
  "seq",
  "segment",
  "recorded_at",
  "type",
  "event",
  "trail",
  "spiffe_id",
  "route",
  "action",
  "resource",
  "permissions",
  "status",
  "err",
  "outcome",
  "duration_ms",
  "key_version",
  "prev",
  "mac",
  "line",
] as const;

/** Postgres types of the columns, for typed parameters. */
const TYPES = [
  "uuid",
  "bigint",
  "integer",
  "timestamptz",
  "text",
  "text",
  "uuid",
  "text",
  "text",
  "text",
  "text",
  "jsonb",
  "integer",
  "text",
  "text",
  "double precision",
  "integer",
  "text",
  "text",
  "text",
] as const;

function auditValues(row: AuditRow): unknown[] {
  return [
    row.instance,
    row.seq,
    row.segment,
    row.recordedAt,
    row.type,
    row.event,
    row.trail,
    row.spiffeId,
    row.route,
    row.action,
    row.resource,
    // The driver encodes a jsonb parameter as JSON itself.
    row.permissions === null ? null : [...row.permissions],
    row.status,
    row.err,
    row.outcome,
    row.durationMs,
    row.keyVersion,
    row.prev,
    row.mac,
    row.line,
  ];
}

/**
 * A CTE for a one-statement write: inserts `row` when `condition` (SQL) is
 * true. `param` adds a parameter and returns its placeholder.
 */
export function auditInsertCte(
  name: string,
  row: AuditRow,
  param: (value: unknown, type: string) => string,
  condition: string,
): string {
  const values = auditValues(row).map((value, i) => param(value, TYPES[i]!));
  return `${name} AS (
       INSERT INTO audit_logs (${COLUMNS.join(", ")})
       SELECT ${values.join(", ")}
       WHERE ${condition}
       ON CONFLICT (instance, seq) DO NOTHING)`;
}

/** Inserts `rows` in one statement (a row already there is left alone). */
export async function insertAuditRows(sql: Sql | TransactionSql, rows: readonly AuditRow[]): Promise<void> {
  if (rows.length === 0) return;
  const params: unknown[] = [];
  const tuples = rows.map((row) =>
    `(${
      auditValues(row).map((value, i) => {
        params.push(value);
        return `$${params.length}::${TYPES[i]}`;
      }).join(", ")
    })`
  );
  await sql.unsafe(
    `INSERT INTO audit_logs (${COLUMNS.join(", ")}) VALUES ${tuples.join(", ")}
     ON CONFLICT (instance, seq) DO NOTHING`,
    params as never[],
  );
}

/**
 * Whether a driver error is the database refusing an audit row (a
 * constraint, a trigger or a privilege on `audit_logs`), as opposed to the
 * change itself failing.
 */
export function isAuditRowRefusal(error: unknown): boolean {
  const e = error as { table_name?: unknown; message?: unknown; where?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  if (e.table_name === "audit_logs") return true;
  return [e.message, e.where].some((text) => typeof text === "string" && /\baudit_logs\b/.test(text));
}

/** Rethrows a refusal of the audit row as `AuditRowRefusedError`, anything else as it is. */
export function auditRefusalOr(error: unknown): never {
  if (isAuditRowRefusal(error)) throw new AuditRowRefusedError(String((error as Error).message));
  throw error;
}
