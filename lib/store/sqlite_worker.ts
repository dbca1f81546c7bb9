/**
 * The SQLite worker: owns the write connection of a worker store
 * (`sqlite_worker_store.ts`) and answers its requests one by one, in the
 * order they arrive. A `batch` of writes is one transaction with one commit
 * (see `SqliteDatabase.writeBatch`); its reply, and so every write's
 * acknowledgement, is posted only after `COMMIT` returned.
 *
 * Started as a module worker; `serveSqliteWorker` is exported so a test can
 * wrap the worker's scope.
 *
 * @module
 */
import { openSqliteDatabase, type SqliteDatabase } from "./sqlite_database.ts";
import type { SqliteCall, SqliteOutcome } from "./sqlite_types.ts";
import {
  type SqliteSingleName,
  toWireError,
  type WireOutcome,
  type WorkerReply,
  type WorkerRequest,
} from "./sqlite_worker_protocol.ts";

/** The part of a worker's global scope the worker uses. */
export interface WorkerPort {
  /** Receives the store's requests. */
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  /** Sends a reply to the store. */
  postMessage(message: WorkerReply): void;
}

function toWire(outcome: SqliteOutcome): WireOutcome {
  return outcome.ok ? outcome : { ok: false, error: toWireError(outcome.error) };
}

function dispatch(db: SqliteDatabase, call: SqliteCall<SqliteSingleName>): unknown {
  // `SqliteCall` pairs each name with that method's own arguments.
  const method = db[call.name] as (...args: unknown[]) => unknown;
  return method(...call.args);
}

/**
 * Serves the worker store's requests on `port`. A request of an unknown type
 * is a bug in the store, not a data error: it throws, which ends the worker,
 * and the store then fails everything pending.
 */
export function serveSqliteWorker(port: WorkerPort): void {
  let db: SqliteDatabase | undefined;
  let unusable: unknown = new Error("store: sqlite worker was not opened");

  function connection(): SqliteDatabase {
    if (!db) throw unusable;
    return db;
  }

  function answer(id: number, work: () => unknown): void {
    let outcome: WireOutcome;
    try {
      outcome = { ok: true, value: work() };
    } catch (error) {
      outcome = { ok: false, error: toWireError(error) };
    }
    port.postMessage({ id, outcome });
  }

  port.onmessage = ({ data }) => {
    switch (data.type) {
      case "open":
        try {
          db = openSqliteDatabase(data.file, data.connection);
        } catch (error) {
          unusable = error;
        }
        return;
      case "call":
        return answer(data.id, () => dispatch(connection(), data.call));
      case "batch":
        return answer(data.id, () => connection().writeBatch(data.calls).map(toWire));
      case "close":
        return answer(data.id, () => {
          db?.close();
          db = undefined;
          unusable = new Error("store is closed");
        });
      default:
        throw new Error(`sqlite worker: unknown request type ${(data as { type?: unknown }).type}`);
    }
  };
}

if (import.meta.main) serveSqliteWorker(globalThis as unknown as WorkerPort);
