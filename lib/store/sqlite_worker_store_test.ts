import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { live, runSqliteFileContract, spawnSqliteChild, withTempDir } from "./sqlite_file_contract.ts";
import { createSqliteStore } from "./sqlite_store.ts";
import { createSqliteWorkerStore, type SqliteWorkerStore } from "./sqlite_worker_store.ts";
import { appendVersion, recordOf, runStoreContract } from "./store_contract.ts";
import { insertPlainPoliciesSqlite } from "./testdata/plain_policies.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRASHING_WORKER = new URL("./testdata/crashing_sqlite_worker.ts", import.meta.url);

runStoreContract("worker-sqlite", async (options) => {
  const dir = await Deno.makeTempDir({ prefix: "spike_sqlite_" });
  const dataDir = join(dir, "data");
  if (options?.plainPolicies) {
    const seeder = createSqliteStore({ dataDir });
    await seeder.close();
    insertPlainPoliciesSqlite(seeder.file, options.plainPolicies);
  }
  return {
    store: createSqliteWorkerStore({ dataDir }),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

runSqliteFileContract("worker-sqlite", createSqliteWorkerStore);

/** Runs `body` on a fresh worker store, closed afterwards. */
function withWorkerStore(
  body: (store: SqliteWorkerStore, dir: string) => Promise<void>,
  options: { maxBatch?: number; workerUrl?: URL } = {},
): Promise<void> {
  return withTempDir(async (dir) => {
    const store = createSqliteWorkerStore({ dataDir: dir, ...options });
    try {
      await body(store, dir);
    } finally {
      await store.close();
    }
  });
}

Deno.test("worker-sqlite: 50 concurrent writers to 5 paths lose nothing", async () => {
  await withWorkerStore(async (store) => {
    const writers = Array.from(
      { length: 50 },
      (_, i) => appendVersion(store, `hot/${i % 5}`, encoder.encode(`writer-${i}`)),
    );
    await Promise.all(writers);
    for (let p = 0; p < 5; p++) {
      const read = await store.readSecret(`hot/${p}`);
      assert.equal(read?.revision, 10);
      assert.deepEqual([...read!.versions.keys()], Array.from({ length: 10 }, (_, i) => i + 1));
      const owners = new Set([...read!.versions.values()].map((v) => decoder.decode(v.sealed)));
      assert.deepEqual(owners, new Set(Array.from({ length: 10 }, (_, i) => `writer-${p + 5 * i}`)));
    }
    assert.ok(store.stats().writes >= 50);
  });
});

Deno.test("worker-sqlite: errors carry the in-thread store's class and message", async () => {
  await withTempDir(async (dir) => {
    const inThread = createSqliteStore({ dataDir: join(dir, "a") });
    const worker = createSqliteWorkerStore({ dataDir: join(dir, "b") });
    try {
      const bad = { ...recordOf([live(1)]), updatedTime: new Date(NaN) };
      const expected = await inThread.writeSecret("p", 0, bad).then(() => undefined, (error: Error) => error);
      const actual = await worker.writeSecret("p", 0, bad).then(() => undefined, (error: Error) => error);
      assert.ok(expected instanceof TypeError && actual instanceof TypeError);
      assert.equal(actual.message, expected.message);
    } finally {
      await inThread.close();
      await worker.close();
    }
  });
});

Deno.test("worker-sqlite: a worker crash fails every pending call and every later one", async () => {
  await withWorkerStore(async (store, dir) => {
    assert.equal(await store.writeSecret("ok/1", 0, recordOf([live(1)])), true);
    const grouped = [
      store.writeSecret("x/1", 0, recordOf([live(1)])),
      store.writeSecret("crash/now", 0, recordOf([live(1)])),
    ];
    await Promise.resolve(); // the group has been posted to the worker
    const queued = store.writeSecret("x/3", 0, recordOf([live(1)]));
    const posted = store.checkpoint();
    for (const pending of [...grouped, queued, posted]) await assert.rejects(pending, /sqlite worker crashed/);
    await assert.rejects(store.ping(), /sqlite worker crashed/);
    await assert.rejects(store.readSecret("ok/1"), /sqlite worker crashed/);
    await assert.rejects(store.writeSecret("x/4", 0, recordOf([live(1)])), /sqlite worker crashed/);
    let ran = false;
    await assert.rejects(
      store.tryExclusive(() => Promise.resolve(ran = true)),
      /sqlite worker crashed/,
      "exclusive work (rotation, the expiry sweep) is refused too",
    );
    assert.equal(ran, false);

    const reopened = createSqliteStore({ dataDir: dir });
    try {
      assert.deepEqual(await reopened.listSecretPaths(), ["ok/1"], "nothing of the crashed group was written");
    } finally {
      await reopened.close();
    }
  }, { workerUrl: CRASHING_WORKER });
});

Deno.test("worker-sqlite: runs with read/write on the data dir plus read on its own code, and needs that read", async () => {
  await withTempDir(async (dir) => {
    const code = dirname(fileURLToPath(new URL("./sqlite_worker.ts", import.meta.url)));
    const allowed = spawnSqliteChild(
      "worker-sqlite",
      ["append", dir, "perm", "3", "t"],
      [`--allow-read=${dir},${code}`, `--allow-write=${dir}`],
    );
    const ok = await allowed.output();
    assert.equal(ok.success, true, decoder.decode(ok.stderr));
    assert.match(decoder.decode(ok.stdout), /done/);

    const denied = spawnSqliteChild(
      "worker-sqlite",
      ["append", dir, "perm", "1", "u"],
      [`--allow-read=${dir}`, `--allow-write=${dir}`],
    );
    const refused = await denied.output();
    assert.equal(refused.success, false);
    assert.match(decoder.decode(refused.stderr), /SQLite worker needs read access to its code/);

    const store = createSqliteStore({ dataDir: dir });
    try {
      assert.equal((await store.readSecret("perm"))?.revision, 3);
    } finally {
      await store.close();
    }
  });
});
