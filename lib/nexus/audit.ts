/**
 * The audit trail: one JSON record per `/v1/` request, allowed or not,
 * saying who (the caller's SPIFFE ID), what (route, action, and the path and
 * permissions it was authorized against), and how it ended (status, error
 * code, outcome, duration). A record never holds a request or response body:
 * no secret value, plaintext, ciphertext, key or shard can reach it, because
 * none of those is ever a field of it.
 *
 * @module
 */
import { CLIENT_CLOSED_STATUS } from "../api/client_closed.ts";
import type { Permission } from "../api/validate.ts";

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

/** Where records go. */
export interface AuditSink {
  /** Takes one record; must not throw. */
  record(record: AuditRecord): void;
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
  };
}

/** A sink keeping records in memory (tests and tools). */
export function memoryAuditSink(): AuditSink & { readonly records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  return { records, record: (record) => void records.push(record) };
}
