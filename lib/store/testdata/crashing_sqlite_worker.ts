/**
 * A SQLite worker for the worker store tests (not a test itself): the real
 * worker, except that a batch writing the path `crash/now` throws out of the
 * message handler, which ends the worker the way a bug would.
 *
 * @module
 */
import { serveSqliteWorker, type WorkerPort } from "../sqlite_worker.ts";

const port = globalThis as unknown as WorkerPort;
serveSqliteWorker(port);
const serve = port.onmessage!;
port.onmessage = (event) => {
  const request = event.data;
  if (request.type === "batch" && request.calls.some((c) => c.name === "writeSecret" && c.args[0] === "crash/now")) {
    throw new Error("simulated worker crash");
  }
  serve(event);
};
