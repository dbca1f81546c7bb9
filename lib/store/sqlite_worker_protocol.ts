/**
 * The messages between the worker store (main thread) and its SQLite worker.
 * Structured clone carries records as they are (`Map`, `Date`, `Uint8Array`);
 * errors travel as name and message (and a key version refusal with its
 * versions) and are rebuilt on the other side, so a caller sees the same
 * error class and message the in-thread store throws.
 *
 * @module
 */
import { StaleKeyVersionError } from "./errors.ts";
import type { ConnectionOptions } from "./sqlite_connection.ts";
import type { SqliteCall, SqliteCallName, SqliteWriteName } from "./sqlite_types.ts";

/** Calls the worker answers one at a time (writes go in batches). */
export type SqliteSingleName = Exclude<SqliteCallName, SqliteWriteName>;

/** Main thread to worker. The first message is `open`; every other one gets exactly one reply with its `id`. */
export type WorkerRequest =
  | { readonly type: "open"; readonly file: string; readonly connection?: ConnectionOptions }
  | { readonly type: "call"; readonly id: number; readonly call: SqliteCall<SqliteSingleName> }
  | { readonly type: "batch"; readonly id: number; readonly calls: readonly SqliteCall<SqliteWriteName>[] }
  | { readonly type: "close"; readonly id: number };

/** An error as it crosses the thread boundary. */
export interface WireError {
  /** `Error.name`, e.g. `TypeError`. */
  readonly name: string;
  /** `Error.message` (store messages never hold secret values). */
  readonly message: string;
  /** `code` of `node:sqlite` errors, e.g. `ERR_SQLITE_ERROR`. */
  readonly code?: string;
  /** A `StaleKeyVersionError`'s `sealedUnder` and `minWriteVersion`, so the caller gets the same error back. */
  readonly staleKey?: readonly [sealedUnder: number, minWriteVersion: number];
}

/** A result or an error. A `batch` succeeds with one `WireOutcome` per call as its value. */
export type WireOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WireError };

/** Worker to main thread: the answer to request `id`. */
export interface WorkerReply {
  /** The request answered. */
  readonly id: number;
  /** What it came to. */
  readonly outcome: WireOutcome;
}

/** Flattens anything thrown into a `WireError`. */
export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  if (error instanceof StaleKeyVersionError) {
    return { name: error.name, message: error.message, staleKey: [error.sealedUnder, error.minWriteVersion] };
  }
  const code = (error as { code?: unknown }).code;
  return { name: error.name, message: error.message, ...(typeof code === "string" ? { code } : {}) };
}

/** Rebuilds an error from its wire form, keeping `TypeError` a `TypeError` and a stale key version refusal one. */
export function fromWireError(wire: WireError): Error {
  if (wire.staleKey) return new StaleKeyVersionError(...wire.staleKey);
  const error = wire.name === "TypeError" ? new TypeError(wire.message) : new Error(wire.message);
  if (error.name !== wire.name) error.name = wire.name;
  if (wire.code !== undefined) Object.assign(error, { code: wire.code });
  return error;
}
