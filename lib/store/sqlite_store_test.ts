import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { DEFAULT_BUSY_TIMEOUT_MS, openDatabase } from "./sqlite_connection.ts";
import { live, runSqliteFileContract, withTempDir } from "./sqlite_file_contract.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "./sqlite_schema.ts";
import { createSqliteStore, SQLITE_FILE_NAME } from "./sqlite_store.ts";
import { recordOf, runStoreContract } from "./store_contract.ts";
import { insertPlainPoliciesSqlite } from "./testdata/plain_policies.ts";
import { openWalSync, type WalSync } from "./wal_sync.ts";

runStoreContract("sqlite", async (options) => {
  const dir = await Deno.makeTempDir({ prefix: "spike_sqlite_" });
  const dataDir = join(dir, "data");
  if (options?.plainPolicies) {
    await createSqliteStore({ dataDir }).close();
    insertPlainPoliciesSqlite(join(dataDir, SQLITE_FILE_NAME), options.plainPolicies);
  }
  return {
    store: createSqliteStore({ dataDir }),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

runSqliteFileContract("sqlite", createSqliteStore);

Deno.test("sqlite: connection settings are applied", async () => {
  await withTempDir((dir) => {
    const db = openDatabase(join(dir, "x.db"));
    try {
      const pragma = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];
      assert.equal(pragma("journal_mode"), "wal");
      assert.equal(pragma("synchronous"), 2, "FULL");
      assert.equal(pragma("foreign_keys"), 1);
      assert.equal(pragma("secure_delete"), 1);
      assert.equal(pragma("busy_timeout"), DEFAULT_BUSY_TIMEOUT_MS);
    } finally {
      db.close();
    }
    for (const [synchronous, expected] of [["NORMAL", 1], ["OFF", 0], ["FULL", 2]] as const) {
      const other = openDatabase(join(dir, "x.db"), { synchronous, busyTimeoutMs: 250 });
      try {
        assert.equal(other.prepare("PRAGMA synchronous").get()?.synchronous, expected, synchronous);
        assert.equal(other.prepare("PRAGMA busy_timeout").get()?.timeout, 250);
      } finally {
        other.close();
      }
    }
    assert.throws(() => openDatabase(join(dir, "x.db"), { synchronous: "EXTRA" as "FULL" }), /unknown synchronous/);
  });
});

/** A promise with its resolve and reject exposed. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets the event loop run: timers, I/O, and every microtask before them. */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * The real WAL handle, except that each fsync off the thread waits for the
 * test to open its gate (`gates[i]`, in the order the store asked for them)
 * before it runs, and that fsyncs on the calling thread are counted
 * (`inline`) or, with `failInline`, fail.
 */
function gatedWal(failInline = false) {
  const gates: ReturnType<typeof deferred>[] = [];
  const counts = { inline: 0 };
  const open = (file: string): WalSync => {
    const real = openWalSync(file);
    return {
      sync() {
        const gate = deferred();
        gates.push(gate);
        return gate.promise.then(() => real.sync());
      },
      syncNow() {
        counts.inline++;
        if (failInline) throw new Error("No space left on device (os error 28)");
        real.syncNow();
      },
      close: () => real.close(),
    };
  };
  return { gates, counts, open };
}

/** A store whose every fsync runs off the thread, held at the gates of `wal`. */
const offThread = (dir: string, wal: ReturnType<typeof gatedWal>) =>
  createSqliteStore({ dataDir: dir, openWalSync: wal.open, inlineFsyncLimitMs: 0 });

/** Whether `promise` has settled by now (after one turn of the event loop). */
async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await turn();
  return settled;
}

Deno.test("sqlite, full: writes are acknowledged only after their group's WAL fsync, and reads of them wait for it", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal();
    const store = offThread(dir, wal);
    try {
      const first = [
        store.writeSecret("a", 0, recordOf([live(1, "first-a")])),
        store.writeSecret("b", 0, recordOf([live(1, "first-b")])),
      ];
      while (wal.gates.length === 0) await turn();
      // The group is committed (another connection sees it) but not yet durable.
      const other = new DatabaseSync(store.file, { readOnly: true });
      try {
        assert.deepEqual(other.prepare("SELECT path FROM secrets ORDER BY path").all().map((r) => r.path), ["a", "b"]);
      } finally {
        other.close();
      }
      assert.equal(await settledYet(Promise.all(first)), false, "acknowledged before the fsync");
      const readA = store.readSecret("a");
      const list = store.listSecretPaths();
      assert.equal(await settledYet(readA), false, "a read saw a write before its fsync");
      assert.equal(await settledYet(list), false, "a list saw a write before its fsync");
      // What the group did not write reads at once.
      assert.equal(await store.readSecret("elsewhere"), undefined);
      assert.equal(await store.getPolicy("none"), undefined);
      // A write issued meanwhile waits for the next group.
      const second = store.writeSecret("c", 0, recordOf([live(1, "second-c")]));
      assert.equal(wal.gates.length, 1);

      wal.gates[0]!.resolve();
      assert.deepEqual(await Promise.all(first), [true, true]);
      assert.equal(new TextDecoder().decode((await readA)!.versions.get(1)!.sealed), "first-a");
      assert.deepEqual(await list, ["a", "b"]);
      while (wal.gates.length === 1) await turn();
      assert.equal(await settledYet(second), false);
      wal.gates[1]!.resolve();
      assert.equal(await second, true);
      assert.deepEqual(store.stats(), { writes: 3, commits: 2 });
    } finally {
      for (const gate of wal.gates) gate.resolve();
      await store.close();
    }
  });
});

Deno.test("sqlite, full: path deletes and moves are acknowledged after their fsync; reads and path lists wait for it", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal();
    const store = offThread(dir, wal);
    try {
      const setup = Promise.all([
        store.writeSecret("d/gone", 0, recordOf([live(1)])),
        store.writeSecret("d/from", 0, recordOf([live(1, "moved")])),
        store.writeSecret("d/expiring", 0, { ...recordOf([live(1)]), expiresAt: new Date(5_000) }),
      ]);
      while (wal.gates.length === 0) await turn();
      wal.gates[0]!.resolve();
      await setup;

      const changes = Promise.all([
        store.deleteSecret("d/gone", 1),
        store.moveSecret("d/from", 1, "d/to", 0, recordOf([live(1, "moved")])),
      ]);
      while (wal.gates.length === 1) await turn();
      assert.equal(await settledYet(changes), false, "acknowledged before the fsync");
      const waiting = [
        store.readSecret("d/gone"),
        store.readSecret("d/from"),
        store.readSecret("d/to"),
        store.listSecretPaths(),
        store.listSecretPathsPage({ prefix: "d/", limit: 10 }),
        store.listExpired(new Date(10_000), 10),
      ];
      for (const read of waiting) assert.equal(await settledYet(read), false, "a read saw a change before its fsync");
      // A path the group did not touch, and policies, read at once.
      assert.equal((await store.readSecret("d/expiring"))?.revision, 1);
      assert.deepEqual(await store.listPolicies(), []);

      wal.gates[1]!.resolve();
      assert.deepEqual(await changes, [true, true]);
      const [gone, from, to, list, page, expired] = await Promise.all(waiting);
      assert.equal(gone, undefined);
      assert.equal(from, undefined);
      assert.equal(
        new TextDecoder().decode((to as Awaited<ReturnType<typeof store.readSecret>>)!.versions.get(1)!.sealed),
        "moved",
      );
      assert.deepEqual(list, ["d/expiring", "d/to"]);
      assert.deepEqual(page, ["d/expiring", "d/to"]);
      assert.deepEqual(expired, ["d/expiring"]);
    } finally {
      for (const gate of wal.gates) gate.resolve();
      await store.close();
    }
  });
});

Deno.test("sqlite, full: rotation's writes (key state, batched re-seals) go in groups; their reads wait for the fsync", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal();
    const store = offThread(dir, wal);
    try {
      const sealing = {
        currentVersion: 1,
        phase: "sealing" as const,
        targetVersion: 2,
        targetCheck: new Uint8Array([2]),
        minWriteVersion: 2,
        leaseOwner: "nexus-a",
        leaseUntil: new Date(30_000),
        startedAt: new Date(0),
        toReseal: 1,
      };
      const v2 = { ...live(1, "resealed"), keyVersion: 2 };
      // One group: the key state change first, then a write sealed under the new version and a stale one.
      const changes = Promise.allSettled([
        store.changeKeyState(1, sealing),
        store.writeSecrets([{ path: "r/a", expectedRevision: 0, next: recordOf([v2]), sealedUnder: 2 }]),
        store.writeSecret("r/stale", 0, recordOf([live(1)]), { sealedUnder: 1 }),
      ]);
      while (wal.gates.length === 0) await turn();
      assert.equal(await settledYet(changes), false, "acknowledged before the fsync");
      const state = store.keyState();
      const read = store.readSecret("r/a");
      assert.equal(await settledYet(state), false, "the key state was read before its fsync");
      assert.equal(await settledYet(read), false, "a re-sealed record was read before its fsync");
      wal.gates[0]!.resolve();
      const [changed, resealed, stale] = await changes;
      assert.deepEqual(changed, { status: "fulfilled", value: true });
      assert.deepEqual(resealed, { status: "fulfilled", value: [true] });
      assert.equal(stale?.status, "rejected", "the gate saw the new minimum within the group");
      assert.equal((stale as PromiseRejectedResult).reason.name, "StaleKeyVersionError");
      assert.deepEqual(store.stats(), { writes: 3, commits: 1 });
      assert.equal((await state).minWriteVersion, 2);
      assert.equal((await read)?.versions.get(1)?.keyVersion, 2);
    } finally {
      for (const gate of wal.gates) gate.resolve();
      await store.close();
    }
  });
});

Deno.test("sqlite, full: a meta write is acknowledged only after its own WAL fsync", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal();
    const store = offThread(dir, wal);
    try {
      const put = store.putMeta("k", new Uint8Array([1, 2]));
      while (wal.gates.length === 0) await turn();
      assert.equal(await settledYet(put), false);
      const get = store.getMeta("k");
      assert.equal(await settledYet(get), false, "a read saw the meta value before its fsync");
      wal.gates[0]!.resolve();
      await put;
      assert.deepEqual(await get, new Uint8Array([1, 2]));
      // A call that writes nothing needs no fsync.
      assert.equal(await store.hasData(), true);
      assert.equal(wal.gates.length, 1);
    } finally {
      for (const gate of wal.gates) gate.resolve();
      await store.close();
    }
  });
});

Deno.test("sqlite, full: a failed WAL fsync fails its writes and every later call", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal();
    const store = offThread(dir, wal);
    try {
      const write = store.writeSecret("p", 0, recordOf([live(1)]));
      while (wal.gates.length === 0) await turn();
      const queued = store.writeSecret("q", 0, recordOf([live(1)]));
      wal.gates[0]!.reject(new Error("Input/output error (os error 5)"));
      await assert.rejects(
        write,
        /fsync of the SQLite WAL failed \(Input\/output error \(os error 5\)\).*restart Nexus/,
      );
      await assert.rejects(queued, /fsync of the SQLite WAL failed/);
      await assert.rejects(store.ping(), /fsync of the SQLite WAL failed/, "/ready must fail");
      await assert.rejects(store.readSecret("p"), /fsync of the SQLite WAL failed/);
      await assert.rejects(store.writeSecret("r", 0, recordOf([live(1)])), /fsync of the SQLite WAL failed/);
    } finally {
      await store.close();
    }
  });
});

Deno.test("sqlite, full: a lone write is fsynced on the calling thread; a group, or a write with others queued, off it", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal();
    const store = createSqliteStore({ dataDir: dir, openWalSync: wal.open });
    try {
      assert.equal(await store.writeSecret("lone", 0, recordOf([live(1)])), true);
      assert.deepEqual({ inline: wal.counts.inline, off: wal.gates.length }, { inline: 1, off: 0 });
      const pair = [
        store.writeSecret("pair/1", 0, recordOf([live(1)])),
        store.writeSecret("pair/2", 0, recordOf([live(1)])),
      ];
      while (wal.gates.length === 0) await turn();
      assert.equal(wal.counts.inline, 1, "a group of two went off the thread");
      // Two lone writes issued while that fsync runs: one group of two, off the thread again.
      const next = [
        store.writeSecret("next/1", 0, recordOf([live(1)])),
        store.writeSecret("next/2", 0, recordOf([live(1)])),
      ];
      wal.gates[0]!.resolve();
      assert.deepEqual(await Promise.all(pair), [true, true]);
      while (wal.gates.length === 1) await turn();
      wal.gates[1]!.resolve();
      assert.deepEqual(await Promise.all(next), [true, true]);
      assert.deepEqual({ inline: wal.counts.inline, off: wal.gates.length }, { inline: 1, off: 2 });
    } finally {
      for (const gate of wal.gates) gate.resolve();
      await store.close();
    }
  });
});

Deno.test("sqlite, full: a failed fsync on the calling thread fails the write and every later call", async () => {
  await withTempDir(async (dir) => {
    const wal = gatedWal(true);
    const store = createSqliteStore({ dataDir: dir, openWalSync: wal.open });
    try {
      await assert.rejects(
        store.writeSecret("p", 0, recordOf([live(1)])),
        /fsync of the SQLite WAL failed \(No space left on device \(os error 28\)\)/,
      );
      await assert.rejects(store.ping(), /fsync of the SQLite WAL failed/);
    } finally {
      await store.close();
    }
  });
});

Deno.test("sqlite: normal and off leave the WAL's fsync to SQLite (never their own)", async () => {
  await withTempDir(async (dir) => {
    for (const synchronous of ["normal", "off"] as const) {
      const store = createSqliteStore({
        dataDir: dir,
        synchronous,
        openWalSync: () => {
          throw new Error(`${synchronous} opened the WAL for its own fsync`);
        },
      });
      try {
        assert.equal(await store.writeSecret(`p/${synchronous}`, 0, recordOf([live(1)])), true);
        await store.putMeta("k", new Uint8Array([1]));
      } finally {
        await store.close();
      }
    }
  });
});

Deno.test("sqlite: a version-1 database with policies upgrades, and its generation then follows policy writes", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, SQLITE_FILE_NAME);
    const v1 = new DatabaseSync(file);
    migrate(v1, MIGRATIONS.slice(0, 1));
    v1.prepare(
      "INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms) " +
        "VALUES ('old', '^x$', '^y$', '[\"read\"]', 1, 1)",
    ).run();
    v1.close();
    const store = createSqliteStore({ dataDir: dir });
    try {
      assert.deepEqual((await store.listPolicies()).map((p) => p.name), ["old"]);
      const before = await store.policyGeneration();
      await store.deletePolicy("old");
      assert.notEqual(await store.policyGeneration(), before);
    } finally {
      await store.close();
    }
  });
});

Deno.test("sqlite: a version-2 database (before the key-value steps) migrates forward; its secrets keep working", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, SQLITE_FILE_NAME);
    const v2 = new DatabaseSync(file);
    assert.equal(MIGRATIONS[1]!.version, 2);
    migrate(v2, MIGRATIONS.slice(0, 2));
    v2.exec(
      "INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_ms, updated_ms) " +
        "VALUES ('old/db', 1, 1, 1, 10, 1000, 1000);" +
        "INSERT INTO secret_versions (path, version, created_ms, deleted_ms, sealed) VALUES ('old/db', 1, 1000, NULL, x'0707')",
    );
    v2.close();
    const store = createSqliteStore({ dataDir: dir });
    try {
      assert.equal(SCHEMA_VERSION, 6);
      const old = (await store.readSecret("old/db"))!;
      assert.deepEqual(
        [
          old.revision,
          old.customMetadata,
          old.expiresAt,
          old.versions.get(1)?.sealed,
          old.versions.get(1)?.expiresAt,
          old.versions.get(1)?.keyVersion,
        ],
        [1, undefined, undefined, new Uint8Array([7, 7]), undefined, 1],
      );
      const expiresAt = new Date(2000);
      assert.equal(
        await store.writeSecret("old/db", 1, {
          ...old,
          customMetadata: { sealed: new Uint8Array([9]), keyVersion: 1 },
          expiresAt,
        }),
        true,
      );
      assert.deepEqual(await store.listExpired(new Date(3000), 10), ["old/db"]);
      assert.deepEqual((await store.readSecret("old/db"))?.customMetadata, {
        sealed: new Uint8Array([9]),
        keyVersion: 1,
      });
    } finally {
      await store.close();
    }
    const db = new DatabaseSync(file);
    try {
      assert.equal(db.prepare("SELECT version FROM schema_version").get()?.version, SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });
});

Deno.test("sqlite: schema version is recorded, steps run once, a newer schema is refused", async () => {
  await withTempDir(async (dir) => {
    await createSqliteStore({ dataDir: dir }).close();
    await createSqliteStore({ dataDir: dir }).close(); // reopening does not re-run step 1
    const file = join(dir, SQLITE_FILE_NAME);
    const db = new DatabaseSync(file);
    try {
      assert.equal(db.prepare("SELECT version FROM schema_version").get()?.version, SCHEMA_VERSION);
      // A later step applies on top of the existing schema, and only once.
      const next = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, sql: "CREATE TABLE extra (x INTEGER) STRICT" }];
      migrate(db, next);
      migrate(db, next);
      assert.equal(db.prepare("SELECT version FROM schema_version").get()?.version, SCHEMA_VERSION + 1);
      // A failing step leaves the version where it was.
      const broken = [...next, { version: SCHEMA_VERSION + 2, sql: "CREATE TABLE extra (y INTEGER)" }];
      assert.throws(() => migrate(db, broken));
      assert.equal(db.prepare("SELECT version FROM schema_version").get()?.version, SCHEMA_VERSION + 1);
    } finally {
      db.close();
    }
    assert.throws(() => createSqliteStore({ dataDir: dir }), /newer than this build supports/);
  });
});
