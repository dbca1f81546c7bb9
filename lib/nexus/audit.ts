/**
 * The audit trail: one JSON record per `/v1/` request, allowed or not,
 * saying who (the caller's SPIFFE ID), what (route, action, and the path and
 * permissions it was authorized against), and how it ended (status, error
 * code, outcome, duration). A record never holds a request or response body:
 * no secret value, plaintext, ciphertext, key or shard can reach it, because
 * none of those is ever a field of it.
 *
 * The expiry sweep [ours], Nexus's own change, leaves records of its own
 * (`audit-sweep`): the paths of a batch before it changes them, and what it
 * removed or destroyed after — paths and version numbers, never a value.
 *
 * @module
 */
import { CLIENT_CLOSED_STATUS } from "../api/client_closed.ts";
import type { Permission } from "../api/validate.ts";
import type { AuditRow } from "../store/audit_row.ts";

/** How a request ended, by status class. */
export type AuditOutcome = "ok" | "denied" | "limited" | "invalid" | "aborted" | "unavailable" | "error";

/**
 * One path of a request that acts on several [ours] (move, batch read):
 * which path, what was asked for it, and how it went. Never a value.
 */
export interface AuditResource {
  /** The secret path. */
  readonly path: string;
  /** The permissions asked for on it. */
  readonly permissions: readonly Permission[];
  /** `ok`, `denied` (no policy grants it), `not_found`, or `error`. */
  readonly outcome: "ok" | "denied" | "not_found" | "error";
}

/** One audit record. */
export interface AuditRecord {
  /** When the request ended (RFC 3339). */
  readonly time: string;
  /** Always `"audit"`, to tell these lines from diagnostics. */
  readonly type: "audit";
  /** A random id, unique per request. */
  readonly trail: string;
  /** The authenticated caller, or `null` when it presented no valid SVID. */
  readonly spiffeId: string | null;
  /** URL path, e.g. `/v1/store/secrets`. */
  readonly route: string;
  /** The `?action=` value (`""` for none). */
  readonly action: string;
  /** The secret path or reserved system path the request was authorized against, when it got that far. */
  readonly resource: string | null;
  /** The permissions that authorization asked for. */
  readonly permissions: readonly Permission[] | null;
  /** Each path of a request on several paths (move, batch read) [ours]; absent on all others. */
  readonly resources?: readonly AuditResource[];
  /** HTTP status. */
  readonly status: number;
  /** The wire error code, for a failed request. */
  readonly err: string | null;
  /**
   * `ok` 2xx, `denied` 401/403, `limited` 429, `aborted` 499 (the client hung
   * up mid-body), `invalid` other 4xx, `unavailable` 503, `error` other 5xx.
   */
  readonly outcome: AuditOutcome;
  /** Time spent, in milliseconds. */
  readonly durationMs: number;
}

/**
 * What a request about to change state says first (fail-closed or audit
 * table mode): who, which route, and what authorization was asked for.
 * Its `trail` is the one the request's own record will carry.
 */
export interface AuditIntent {
  /** When the change was about to start (RFC 3339). */
  readonly time: string;
  /** Always `"audit-intent"`. */
  readonly type: "audit-intent";
  /** The request's trail id. */
  readonly trail: string;
  /** The authenticated caller. */
  readonly spiffeId: string | null;
  /** URL path. */
  readonly route: string;
  /** The `?action=` value. */
  readonly action: string;
  /** The path authorized against, if known yet. */
  readonly resource: string | null;
  /** The permissions asked for, if known yet. */
  readonly permissions: readonly Permission[] | null;
  /** Each path of a request on several paths (move) [ours], as authorized; absent on all others. */
  readonly resources?: readonly AuditResource[];
}

/** The record `type` of the expiry sweep's records [ours]. */
export const SWEEP_RECORD = "audit-sweep";

/**
 * Written by the expiry sweep [ours] (Nexus's own change, not a request's)
 * before it changes anything in a batch: the paths it found with something
 * expired, about to be removed or to have versions destroyed. Fail-closed,
 * or with an audit table, the batch runs only once this record is stored.
 */
export interface SweepIntentRecord {
  /** When the batch was about to start (RFC 3339). */
  readonly time: string;
  /** Always `"audit-sweep"`. */
  readonly type: typeof SWEEP_RECORD;
  /** A random id shared by the batch's intent and its outcome records. */
  readonly trail: string;
  /** Always `"intent"`. */
  readonly phase: "intent";
  /** The paths the batch will sweep. Paths only: never a value. */
  readonly paths: readonly string[];
}

/** What the expiry sweep did to one batch [ours], written after it. Paths and version numbers only. */
export interface SweepDoneRecord {
  /** When the batch ended (RFC 3339). */
  readonly time: string;
  /** Always `"audit-sweep"`. */
  readonly type: typeof SWEEP_RECORD;
  /** The batch's trail id (its intent's). */
  readonly trail: string;
  /** Always `"done"`. */
  readonly phase: "done";
  /** Paths removed with every version (the whole secret expired). */
  readonly removed: readonly string[];
  /** Versions destroyed (their sealed values dropped) because they expired, per path. */
  readonly destroyed: ReadonlyArray<{ readonly path: string; readonly versions: readonly number[] }>;
  /** Paths left as they were for the next pass (a writer kept changing them, or the change failed). */
  readonly skipped: readonly string[];
}

/** A record of the expiry sweep. */
export type SweepRecord = SweepIntentRecord | SweepDoneRecord;

/** A written intent: the row to store with the change, and how the request ended for it. */
export interface AuditIntentTicket {
  /** The intent as an audit-table row, to insert in the change's own transaction (table mode only). */
  readonly row: AuditRow | undefined;
  /** After the request: stores the row on its own unless a committed change carried it. */
  settle(carried: boolean): void;
}

/** Where records go. */
export interface AuditSink {
  /**
   * Takes one record; must not throw. A fail-closed sink returns a promise
   * that resolves `false` when the record could not be written durably.
   */
  record(record: AuditRecord): void | Promise<boolean>;
  /**
   * Writes the intent of a request about to change state, when this sink
   * wants one (fail-closed or audit table mode). Rejects with a 503
   * `ApiError` when fail-closed and it cannot be written: then the change
   * must not happen.
   */
  intent?(intent: AuditIntent): Promise<AuditIntentTicket>;
  /**
   * Takes a record of the expiry sweep [ours]; must not throw. Resolves
   * whether it was stored as well as this sink stores anything that guards
   * a change: fail-closed, written and synced; with an audit table, its row
   * committed (durably) too. An intent that resolves `false` means the
   * batch must change nothing.
   */
  sweep(record: SweepRecord): Promise<boolean>;
}

/** What a request hands the store with its change (see `audited_store.ts`). */
export interface ChangeAudit {
  /** The row to insert in the change's transaction, when there is an audit table. */
  readonly row: AuditRow | undefined;
  /** The change committed, and the row with it. */
  carried(): void;
}

/** What a handler learns about its request while it runs, for the record. */
export interface AuditNote {
  /** The path authorization was asked about. */
  resource?: string;
  /** The permissions asked for. */
  permissions?: readonly Permission[];
  /** Each path of a request on several paths, and its outcome [ours]. */
  resources?: AuditResource[];
  /** The wire error code, set by the app's error handling when the request fails. */
  err?: string;
  /**
   * Present when changes must be announced (fail-closed or audit table
   * mode): call before changing any state; it writes the request's intent
   * record once (rejecting with a 503 when fail-closed and it cannot).
   */
  beforeChange?: () => Promise<ChangeAudit>;
}

/** The outcome class of an HTTP status. */
export function outcomeOf(status: number): AuditOutcome {
  if (status >= 200 && status < 300) return "ok";
  if (status === 401 || status === 403) return "denied";
  if (status === 429) return "limited";
  if (status === CLIENT_CLOSED_STATUS) return "aborted";
  if (status === 503) return "unavailable";
  if (status >= 400 && status < 500) return "invalid";
  return "error";
}

/** A sink writing one JSON line per record through `write`. */
export function jsonLineAuditSink(write: (line: string) => void): AuditSink {
  return {
    record(record) {
      write(JSON.stringify(record) + "\n");
    },
    sweep(record) {
      write(JSON.stringify(record) + "\n");
      return Promise.resolve(true);
    },
  };
}

/** A sink keeping records in memory (tests and tools). */
export function memoryAuditSink(): AuditSink & { readonly records: AuditRecord[]; readonly sweeps: SweepRecord[] } {
  const records: AuditRecord[] = [];
  const sweeps: SweepRecord[] = [];
  return {
    records,
    sweeps,
    record: (record) => void records.push(record),
    sweep(record) {
      sweeps.push(record);
      return Promise.resolve(true);
    },
  };
}
