/**
 * A separate process for the SQLite store tests (not a test itself).
 * `<kind>` is `sqlite` (the in-thread store) or `worker-sqlite` (the worker
 * store).
 *
 * - `<kind> write <dataDir> <path> <text>`: writes one version holding
 *   `text`, prints `ack`, then idles (bounded) until it is killed.
 * - `<kind> append <dataDir> <path> <count> <tag>`: appends `count` versions
 *   by read-modify-write with retry, then prints `done`.
 *
 * @module
 */
import { createSqliteStore } from "../sqlite_store.ts";
import type { SqliteStore } from "../sqlite_types.ts";
import { createSqliteWorkerStore } from "../sqlite_worker_store.ts";
import { appendVersion, recordOf } from "../store_contract.ts";

const encoder = new TextEncoder();
const [kind, mode, dataDir, path, arg, tag] = Deno.args;
if (!dataDir || !path || !arg) {
  throw new Error("usage: sqlite_child.ts sqlite|worker-sqlite write|append <dataDir> <path> <arg> [tag]");
}

function open(dir: string): SqliteStore {
  if (kind === "sqlite") return createSqliteStore({ dataDir: dir });
  if (kind === "worker-sqlite") return createSqliteWorkerStore({ dataDir: dir });
  throw new Error(`unknown store kind ${kind}`);
}

const store = open(dataDir);
if (mode === "write") {
  const sealed = encoder.encode(arg);
  const ok = await store.writeSecret(
    path,
    0,
    recordOf([{ version: 1, createdTime: new Date(), deletedTime: null, sealed, keyVersion: 1 }]),
  );
  if (!ok) throw new Error("write lost its compare-and-swap");
  // The write has committed (and been fsynced) before this line runs.
  await Deno.stdout.write(encoder.encode("ack\n"));
  // Wait to be killed; give up after a while so a broken test cannot leak a process forever.
  await new Promise((resolve) => setTimeout(resolve, 30_000));
  Deno.exit(3);
} else if (mode === "append") {
  for (let i = 0; i < Number(arg); i++) await appendVersion(store, path, encoder.encode(`${tag}-${i}`));
  await store.close();
  await Deno.stdout.write(encoder.encode("done\n"));
} else {
  throw new Error(`unknown mode ${mode}`);
}
