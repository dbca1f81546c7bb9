/**
 * A separate process for the SQLite store tests (not a test itself).
 * `<kind>` is `sqlite` (the in-thread store) or `worker-sqlite` (the worker
 * store), optionally with a durability level: `sqlite:normal`.
 *
 * - `<kind> write <dataDir> <path> <text>`: writes one version holding
 *   `text`, prints `ack`, then idles (bounded) until it is killed.
 * - `<kind> stream <dataDir> <prefix> <writers>`: `writers` concurrent
 *   loops write new paths `<prefix>/<writer>/<n>` (holding that path as
 *   their value) and print `ack <path>` for each write once it resolved,
 *   until killed (bounded: 20,000 writes or 30 s).
 * - `<kind> append <dataDir> <path> <count> <tag>`: appends `count` versions
 *   by read-modify-write with retry, then prints `done`.
 *
 * @module
 */
import { createSqliteStore } from "../sqlite_store.ts";
import type { SqliteStore, SqliteSynchronous } from "../sqlite_types.ts";
import { createSqliteWorkerStore } from "../sqlite_worker_store.ts";
import { appendVersion, recordOf } from "../store_contract.ts";

const encoder = new TextEncoder();
const [kindArg, mode, dataDir, path, arg, tag] = Deno.args;
if (!kindArg || !dataDir || !path || !arg) {
  throw new Error(
    "usage: sqlite_child.ts sqlite|worker-sqlite[:level] write|stream|append <dataDir> <path> <arg> [tag]",
  );
}
const [kind, level] = kindArg.split(":") as [string, SqliteSynchronous | undefined];

function open(dir: string): SqliteStore {
  const options = { dataDir: dir, ...(level ? { synchronous: level } : {}) };
  if (kind === "sqlite") return createSqliteStore(options);
  if (kind === "worker-sqlite") return createSqliteWorkerStore(options);
  throw new Error(`unknown store kind ${kind}`);
}

function versionHolding(text: string) {
  return recordOf([
    { version: 1, createdTime: new Date(), deletedTime: null, sealed: encoder.encode(text), keyVersion: 1 },
  ]);
}

const store = open(dataDir);
if (mode === "write") {
  const ok = await store.writeSecret(path, 0, versionHolding(arg));
  if (!ok) throw new Error("write lost its compare-and-swap");
  // The write has committed (and, at full, been fsynced) before this line runs.
  await Deno.stdout.write(encoder.encode("ack\n"));
  // Wait to be killed; give up after a while so a broken test cannot leak a process forever.
  await new Promise((resolve) => setTimeout(resolve, 30_000));
  Deno.exit(3);
} else if (mode === "stream") {
  const deadline = Date.now() + 30_000;
  let budget = 20_000;
  const writer = async (w: number) => {
    for (let n = 0; budget-- > 0 && Date.now() < deadline; n++) {
      const written = `${path}/${w}/${n}`;
      if (!await store.writeSecret(written, 0, versionHolding(written))) throw new Error("lost a swap on a new path");
      // Only now is the write acknowledged: the parent holds us to every line it reads.
      Deno.stdout.writeSync(encoder.encode(`ack ${written}\n`));
    }
  };
  await Promise.all(Array.from({ length: Number(arg) }, (_, w) => writer(w)));
  Deno.exit(3);
} else if (mode === "append") {
  for (let i = 0; i < Number(arg); i++) await appendVersion(store, path, encoder.encode(`${tag}-${i}`));
  await store.close();
  await Deno.stdout.write(encoder.encode("done\n"));
} else {
  throw new Error(`unknown mode ${mode}`);
}
