/**
 * Carries audit rows to the audit table without holding requests up: rows
 * queue in memory and one flush at a time inserts everything queued so far
 * in one statement, so under load many records share a round trip (a
 * statement the database refuses is retried row by row, so one bad row
 * loses only itself). Each
 * row's promise says whether it was stored (fail-closed requests wait for
 * it; the others do not). The queue is bounded: past `maxQueued` rows a new
 * row fails at once instead of growing memory while the database is away.
 *
 * @module
 */
import type { AuditRow } from "../store/audit_row.ts";

/** Inserts rows into the audit table (one statement; all or none). */
export type InsertAuditRows = (rows: readonly AuditRow[]) => Promise<void>;

/** What a flush reports: the rows and, when they were not stored, why. */
export type RowOutcome = (rows: readonly AuditRow[], error: unknown | undefined) => void;

interface Queued {
  readonly row: AuditRow;
  readonly resolve: (stored: boolean) => void;
}

/** A bounded queue of rows for the audit table. */
export class AuditRowQueue {
  readonly #insert: InsertAuditRows;
  readonly #onOutcome: RowOutcome;
  readonly #maxQueued: number;
  readonly #maxBatch: number;
  #queued: Queued[] = [];
  #flushing: Promise<void> | undefined;

  /** Creates a queue over `insert`; `onOutcome` hears about every flush. */
  constructor(insert: InsertAuditRows, onOutcome: RowOutcome, limits: { maxQueued?: number; maxBatch?: number } = {}) {
    this.#insert = insert;
    this.#onOutcome = onOutcome;
    this.#maxQueued = limits.maxQueued ?? 10_000;
    this.#maxBatch = limits.maxBatch ?? 500;
  }

  /** Queues `row`; resolves whether it was stored. */
  enqueue(row: AuditRow): Promise<boolean> {
    if (this.#queued.length >= this.#maxQueued) {
      this.#onOutcome([row], new Error(`more than ${this.#maxQueued} audit rows waiting for the database`));
      return Promise.resolve(false);
    }
    const stored = new Promise<boolean>((resolve) => this.#queued.push({ row, resolve }));
    this.#flushing ??= this.#flush();
    return stored;
  }

  /** Resolves once every row queued so far was inserted or given up. */
  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** Inserts `rows`; resolves the error, or `undefined` when they were stored. */
  async #attempt(rows: readonly AuditRow[]): Promise<unknown> {
    try {
      await this.#insert(rows);
      return undefined;
    } catch (error) {
      return error ?? new Error("insert failed");
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queued.length > 0) {
        const batch = this.#queued.splice(0, this.#maxBatch);
        const error = await this.#attempt(batch.map((queued) => queued.row));
        if (error === undefined || batch.length === 1) {
          this.#onOutcome(batch.map((queued) => queued.row), error);
          for (const queued of batch) queued.resolve(error === undefined);
          continue;
        }
        // One refused row fails a whole statement: try them one by one, so
        // only the rows the database really refuses are lost.
        for (const queued of batch) {
          const own = await this.#attempt([queued.row]);
          this.#onOutcome([queued.row], own);
          queued.resolve(own === undefined);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }
}
