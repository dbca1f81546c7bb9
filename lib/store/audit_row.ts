/**
 * One audit record as the `audit_logs` table keeps it [ours]: the record's
 * fields as columns (for queries), its chain position, and the exact line
 * Nexus wrote (what the MAC covers, so the table can be verified like the
 * file). Stores with an audit table insert these; the others never see one.
 *
 * @module
 */

/** A row of `audit_logs`. */
export interface AuditRow {
  /** The writing Nexus process's chain id (UUID). */
  readonly instance: string;
  /** Position in that chain. */
  readonly seq: number;
  /** Output segment (reopen count). */
  readonly segment: number;
  /** The record's `time`. */
  readonly recordedAt: Date;
  /** `audit`, `audit-intent` or `audit-chain`. */
  readonly type: string;
  /** The event of an `audit-chain` record. */
  readonly event: string | null;
  /** The request's trail id (UUID); `null` for chain events. */
  readonly trail: string | null;
  /** The caller's SPIFFE ID. */
  readonly spiffeId: string | null;
  /** URL path. */
  readonly route: string | null;
  /** `?action=` value. */
  readonly action: string | null;
  /** Secret path or reserved path authorized against. */
  readonly resource: string | null;
  /** Permissions asked for. */
  readonly permissions: readonly string[] | null;
  /** HTTP status (request records only). */
  readonly status: number | null;
  /** Wire error code. */
  readonly err: string | null;
  /** Outcome class. */
  readonly outcome: string | null;
  /** Time spent, ms. */
  readonly durationMs: number | null;
  /** Audit key version behind `mac`; `null` before the root key was loaded. */
  readonly keyVersion: number | null;
  /** SHA-256 of the previous line. */
  readonly prev: string | null;
  /** The record's MAC. */
  readonly mac: string;
  /** The line exactly as written. */
  readonly line: string;
}

/**
 * A store refused the audit row that had to go with a change, so the change
 * was not made either (it was in the same transaction).
 */
export class AuditRowRefusedError extends Error {
  /** Creates the error; `detail` is the driver's message (no data of the record in it). */
  constructor(detail: string) {
    super(`audit row not stored, change rolled back: ${detail}`);
    this.name = "AuditRowRefusedError";
  }
}
