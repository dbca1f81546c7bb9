/**
 * What both SQLite stores (in-thread and worker) must do with the file
 * itself, beyond the `Store` contract: file modes, reopen, a newer schema
 * refused, the compare-and-swap across instances and processes, pruned bytes
 * gone after a checkpoint, every acknowledged write surviving `kill -9` at
 * each durability level that promises it, the durability level reaching
 * the connection, and group commit (writes issued together commit once,
 * each with its own outcome). Each store's test file calls
 * `runSqliteFileContract`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SQLITE_FILE_NAME } from "./sqlite_files.ts";
import { SCHEMA_VERSION } from "./sqlite_schema.ts";
import type { SqliteStore, SqliteStoreOptions, SqliteSynchronous } from "./sqlite_types.ts";
import { appendVersion, recordOf } from "./store_contract.ts";
import type { SealedPolicy, SecretVersion } from "./types.ts";

/** Which store a child process opens (`testdata/sqlite_child.ts`). */
export type SqliteStoreKind = "sqlite" | "worker-sqlite";

/** `PRAGMA synchronous` each store's write connection must report per level (0 OFF, 1 NORMAL, 2 FULL). */
const PRAGMA_EXPECTED: Record<SqliteStoreKind, Record<SqliteSynchronous, number>> = {
  // At full the in-thread store fsyncs the WAL itself, off the event loop.
  sqlite: { full: 1, normal: 1, off: 0 },
  "worker-sqlite": { full: 2, normal: 1, off: 0 },
};

const posix = Deno.build.os !== "windows";
const encoder = new TextEncoder();
const CHILD = new URL("./testdata/sqlite_child.ts", import.meta.url).pathname;

/** Runs `body` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(body: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spike_sqlite_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A live version `n` whose sealed bytes are `text`. */
export function live(n: number, text = `sealed-${n}`): SecretVersion {
  return {
    version: n,
    createdTime: new Date(1_700_000_000_000 + n),
    deletedTime: null,
    sealed: encoder.encode(text),
    keyVersion: 1,
  };
}

function fileContains(file: string, needle: string): boolean {
  let data: Uint8Array;
  try {
    data = Deno.readFileSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  // latin1 maps every byte to one char, so an ASCII needle is found exactly where its bytes are.
  return new TextDecoder("latin1").decode(data).includes(needle);
}

/** Reads the child's stdout until `token` shows up; bounded by `timeoutMs`. */
async function waitForToken(child: Deno.ChildProcess, token: string, timeoutMs = 30_000): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`child did not print "${token}" within ${timeoutMs} ms`)), timeoutMs);
  });
  let seen = "";
  try {
    while (!seen.includes(token)) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`child ended before printing "${token}"`);
      seen += value;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
}

/**
 * Reads the child's `ack <path>` lines until `count` arrived (bounded by
 * `timeoutMs`), kills it with SIGKILL, and returns every path it
 * acknowledged, the lines it wrote before dying included.
 */
async function killAfterAcks(child: Deno.ChildProcess, count: number, timeoutMs = 30_000): Promise<string[]> {
  const acked: string[] = [];
  let partial = "";
  let killed = false;
  const kill = () => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone (it stops by itself after its bounded run).
    }
  };
  const timer = setTimeout(kill, timeoutMs);
  try {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line.startsWith("ack ")) acked.push(line.slice(4));
      if (!killed && acked.length >= count) kill();
    }
  } finally {
    clearTimeout(timer);
    if (!killed) kill();
  }
  return acked;
}

/**
 * Starts `testdata/sqlite_child.ts` with store `kind` (`<kind>:<level>` for
 * a durability level) and `args`. The permission flags default to reading
 * and writing anything.
 */
export function spawnSqliteChild(
  kind: SqliteStoreKind | `${SqliteStoreKind}:${SqliteSynchronous}`,
  args: readonly string[],
  permissions: readonly string[] = ["--allow-read", "--allow-write"],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", ...permissions, CHILD, kind, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Registers the file-level cases for the store `kind`, opened by `open`. */
export function runSqliteFileContract(
  kind: SqliteStoreKind,
  open: (options: SqliteStoreOptions) => SqliteStore,
): void {
  Deno.test({
    name: `${kind}: creates the data dir 0700 and spike.db 0600; the WAL gets the same mode`,
    ignore: !posix,
    fn: () =>
      withTempDir(async (dir) => {
        const dataDir = join(dir, "nested", "data");
        const store = open({ dataDir });
        try {
          await store.writeSecret("p", 0, recordOf([live(1)]));
          assert.equal(store.file, join(dataDir, SQLITE_FILE_NAME));
          assert.equal(Deno.statSync(dataDir).mode! & 0o777, 0o700);
          assert.equal(Deno.statSync(store.file).mode! & 0o777, 0o600);
          assert.equal(Deno.statSync(`${store.file}-wal`).mode! & 0o777, 0o600);
        } finally {
          await store.close();
        }
      }),
  });

  Deno.test({
    name: `${kind}: a database file readable by others is tightened to 0600`,
    ignore: !posix,
    fn: () =>
      withTempDir(async (dir) => {
        const file = join(dir, SQLITE_FILE_NAME);
        Deno.writeFileSync(file, new Uint8Array(0), { mode: 0o644 });
        Deno.chmodSync(file, 0o644);
        const store = open({ dataDir: dir });
        await store.close();
        assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
      }),
  });

  Deno.test(`${kind}: data survives close and reopen`, async () => {
    await withTempDir(async (dir) => {
      const record = recordOf([live(1), { ...live(2), deletedTime: new Date(1_700_000_000_500) }]);
      const first = open({ dataDir: dir });
      await first.writeSecret("a/b", 0, record);
      const policy = { name: "p", keyVersion: 2, sealed: new Uint8Array([1, 2, 3]) };
      await first.upsertPolicy(policy);
      await first.putMeta("k", new Uint8Array([7, 8]));
      await first.close();

      const second = open({ dataDir: dir });
      try {
        const read = await second.readSecret("a/b");
        assert.equal(read?.revision, 1);
        assert.deepEqual({ ...read, revision: 0 }, record);
        assert.deepEqual(await second.getPolicy("p"), { kind: "sealed", ...policy });
        assert.deepEqual(await second.getMeta("k"), new Uint8Array([7, 8]));
        assert.equal(await second.hasData(), true);
      } finally {
        await second.close();
      }
    });
  });

  Deno.test(`${kind}: a database from a newer build is refused when opened`, async () => {
    await withTempDir(async (dir) => {
      await open({ dataDir: dir }).close();
      const db = new DatabaseSync(join(dir, SQLITE_FILE_NAME));
      try {
        db.prepare("UPDATE schema_version SET version = ?").run(SCHEMA_VERSION + 1);
      } finally {
        db.close();
      }
      assert.throws(() => open({ dataDir: dir }), /newer than this build supports/);
    });
  });

  Deno.test(`${kind}: two store instances on one file keep the compare-and-swap`, async () => {
    await withTempDir(async (dir) => {
      const a = open({ dataDir: dir });
      const b = open({ dataDir: dir });
      try {
        await a.writeSecret("p", 0, recordOf([live(1)]));
        const seenByA = await a.readSecret("p");
        const seenByB = await b.readSecret("p");
        assert.equal(seenByB?.revision, 1);
        assert.equal(await a.writeSecret("p", seenByA!.revision, recordOf([live(1), live(2, "from-a")])), true);
        assert.equal(await b.writeSecret("p", seenByB!.revision, recordOf([live(1), live(2, "from-b")])), false);
        const fresh = await b.readSecret("p");
        assert.equal(fresh?.revision, 2);
        assert.equal(new TextDecoder().decode(fresh!.versions.get(2)!.sealed), "from-a");
        assert.equal(await b.writeSecret("p", 2, recordOf([live(1), live(2, "from-a"), live(3, "from-b")])), true);
        assert.equal(await a.writeSecret("p", 2, recordOf([live(1)])), false, "a's view is stale now");

        const writers = [a, b].flatMap((store, s) =>
          Array.from({ length: 10 }, (_, i) => appendVersion(store, "hot", encoder.encode(`${s}-${i}`)))
        );
        await Promise.all(writers);
        const hot = await a.readSecret("hot");
        assert.equal(hot?.revision, 20);
        assert.equal(new Set([...hot!.versions.values()].map((v) => new TextDecoder().decode(v.sealed))).size, 20);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  Deno.test(`${kind}: a policy write through one instance changes the generation another reads`, async () => {
    await withTempDir(async (dir) => {
      const a = open({ dataDir: dir });
      const b = open({ dataDir: dir });
      try {
        const before = await b.policyGeneration();
        await a.upsertPolicy({ name: "p", keyVersion: 1, sealed: new Uint8Array([1]) });
        const afterCreate = await b.policyGeneration();
        assert.notEqual(afterCreate, before);
        await a.deletePolicy("p");
        assert.notEqual(await b.policyGeneration(), afterCreate);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  Deno.test(`${kind}: pruned version bytes are gone from the database files`, async () => {
    await withTempDir(async (dir) => {
      const small = `PRUNE-SMALL-${crypto.randomUUID()}`;
      const large = `PRUNE-LARGE-${crypto.randomUUID()}`;
      const store = open({ dataDir: dir });
      const files = [store.file, `${store.file}-wal`, `${store.file}-shm`];
      const anywhere = (needle: string) => files.some((f) => fileContains(f, needle));
      try {
        // The large value spills into overflow pages, with the marker at its end.
        await store.writeSecret("p", 0, recordOf([live(1, small), live(2, "x".repeat(9000) + large), live(3)]));
        assert.equal(await store.checkpoint(), true);
        assert.ok(fileContains(store.file, small) && fileContains(store.file, large), "the check can see the markers");

        assert.equal(await store.writeSecret("p", 1, recordOf([live(3), live(4)])), true);
        assert.equal(await store.checkpoint(), true);
        assert.equal(anywhere(small), false);
        assert.equal(anywhere(large), false);
      } finally {
        await store.close();
      }
      assert.equal(anywhere(small) || anywhere(large), false);
    });
  });

  // A kill -9 is survived at `normal` too: the commit is in the OS before the
  // ack. Only `full` survives power loss, which no test here can cause.
  for (const level of ["full", "normal"] as const) {
    Deno.test(`${kind}, ${level}: an acknowledged write survives kill -9 of the writing process`, async () => {
      await withTempDir(async (dir) => {
        const child = spawnSqliteChild(`${kind}:${level}`, ["write", dir, "crash/path", "written-before-the-kill"]);
        const stderr = new Response(child.stderr).text();
        try {
          await waitForToken(child, "ack");
        } finally {
          child.kill("SIGKILL");
        }
        const status = await child.status;
        assert.equal(status.success, false, await stderr);
        assert.equal(status.signal, "SIGKILL");

        const store = open({ dataDir: dir });
        try {
          const read = await store.readSecret("crash/path");
          assert.equal(read?.revision, 1);
          assert.equal(new TextDecoder().decode(read!.versions.get(1)!.sealed), "written-before-the-kill");
        } finally {
          await store.close();
        }
      });
    });

    Deno.test(`${kind}, ${level}: every write acknowledged to 16 concurrent writers survives kill -9 mid-stream`, async () => {
      await withTempDir(async (dir) => {
        const child = spawnSqliteChild(`${kind}:${level}`, ["stream", dir, "crash", "16"]);
        const stderr = new Response(child.stderr).text();
        const acked = await killAfterAcks(child, 300);
        const status = await child.status;
        assert.equal(status.signal, "SIGKILL", await stderr);
        assert.ok(acked.length >= 300, `only ${acked.length} acknowledgements before the kill`);

        const store = open({ dataDir: dir });
        try {
          const stored = new Set(await store.listSecretPaths());
          const lost = acked.filter((path) => !stored.has(path));
          assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged writes are gone`);
          for (const path of acked.filter((_, i) => i % 25 === 0)) {
            const read = await store.readSecret(path);
            assert.equal(new TextDecoder().decode(read!.versions.get(1)!.sealed), path);
          }
        } finally {
          await store.close();
        }
      });
    });
  }

  Deno.test(`${kind}: the durability level reaches the write connection`, async () => {
    await withTempDir(async (dir) => {
      for (const level of ["full", "normal", "off"] as const) {
        const store = open({ dataDir: dir, synchronous: level });
        try {
          assert.equal(store.synchronous, level);
          assert.equal(await store.synchronousPragma(), PRAGMA_EXPECTED[kind][level], level);
          assert.equal(await store.writeSecret(`level/${level}`, 0, recordOf([live(1)])), true);
        } finally {
          await store.close();
        }
      }
      const defaults = open({ dataDir: dir });
      try {
        assert.equal(defaults.synchronous, "full");
        assert.equal(await defaults.synchronousPragma(), PRAGMA_EXPECTED[kind].full);
      } finally {
        await defaults.close();
      }
      assert.throws(
        () => open({ dataDir: dir, synchronous: "extra" as SqliteSynchronous }),
        /unknown synchronous level extra/,
      );
    });
  });

  Deno.test(`${kind}: writes issued together commit once; a failing write leaves the others committed`, async () => {
    await withTempDir(async (dir) => {
      const store = open({ dataDir: dir });
      try {
        await store.writeSecret("x/stale", 0, recordOf([live(1)]));
        // A write that fails inside SQLite after its secret row went in: only its
        // savepoint may roll back.
        const db = new DatabaseSync(store.file);
        try {
          db.exec(`CREATE TRIGGER refuse_marked BEFORE INSERT ON secret_versions
                   WHEN NEW.sealed = CAST('refused' AS BLOB) BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`);
        } finally {
          db.close();
        }
        const policy: SealedPolicy = { name: "batch-policy", keyVersion: 1, sealed: encoder.encode("sealed-policy") };
        const before = store.stats();
        // No await in between: all of these form one group.
        const results = await Promise.allSettled([
          store.writeSecret("x/a", 0, recordOf([live(1, "a")])),
          store.writeSecret("", 0, recordOf([live(1)])),
          store.writeSecret("x/refused", 0, recordOf([live(1, "refused")])),
          store.writeSecret("x/stale", 0, recordOf([live(1), live(2)])),
          store.upsertPolicy(policy),
          store.writeSecret("x/c", 0, recordOf([live(1, "c")])),
        ]);
        assert.deepEqual(store.stats(), { writes: before.writes + 6, commits: before.commits + 1 });

        const [a, invalid, refused, stale, upserted, c] = results;
        assert.deepEqual(a, { status: "fulfilled", value: true });
        assert.equal(invalid?.status, "rejected");
        assert.ok(invalid.reason instanceof TypeError);
        assert.equal(invalid.reason.message, "store: invalid secret path");
        assert.equal(refused?.status, "rejected");
        assert.match(refused.reason.message, /refused by test trigger/);
        assert.deepEqual(stale, { status: "fulfilled", value: false });
        assert.deepEqual(upserted, { status: "fulfilled", value: undefined });
        assert.deepEqual(c, { status: "fulfilled", value: true });

        const text = async (path: string) =>
          new TextDecoder().decode((await store.readSecret(path))!.versions.get(1)!.sealed);
        assert.equal(await text("x/a"), "a");
        assert.equal(await text("x/c"), "c");
        assert.equal(await store.readSecret("x/refused"), undefined, "the secret row of the failed write is gone too");
        assert.equal((await store.readSecret("x/stale"))?.revision, 1);
        assert.deepEqual(await store.getPolicy(policy.name), { kind: "sealed", ...policy });
      } finally {
        await store.close();
      }
    });
  });

  Deno.test(`${kind}: path deletes and moves share a group with puts, each with its own compare-and-swap`, async () => {
    await withTempDir(async (dir) => {
      const store = open({ dataDir: dir });
      try {
        await Promise.all([
          store.writeSecret("m/gone", 0, recordOf([live(1, "gone")])),
          store.writeSecret("m/from", 0, recordOf([live(1, "moved")])),
          store.writeSecret("m/kept", 0, recordOf([live(1, "kept")])),
        ]);
        const before = store.stats();
        // No await in between: one group.
        const results = await Promise.all([
          store.deleteSecret("m/gone", 1),
          store.deleteSecret("m/kept", 7),
          store.moveSecret("m/from", 1, "m/to", 0, recordOf([live(1, "moved")])),
          store.moveSecret("m/kept", 1, "m/to", 0, recordOf([live(1, "kept")])),
          store.writeSecret("m/new", 0, recordOf([live(1, "new")])),
        ]);
        assert.deepEqual(results, [true, false, true, false, true], "the second move found m/to taken");
        assert.deepEqual(store.stats(), { writes: before.writes + 5, commits: before.commits + 1 });
        assert.deepEqual(await store.listSecretPaths(), ["m/kept", "m/new", "m/to"]);
        assert.equal(new TextDecoder().decode((await store.readSecret("m/to"))!.versions.get(1)!.sealed), "moved");
      } finally {
        await store.close();
      }
    });
  });

  Deno.test(`${kind}: a group holds at most maxBatch writes`, async () => {
    await withTempDir(async (dir) => {
      const store = open({ dataDir: dir, maxBatch: 2 });
      try {
        const before = store.stats();
        const writes = Array.from({ length: 5 }, (_, i) => store.writeSecret(`b/${i}`, 0, recordOf([live(1)])));
        assert.deepEqual(await Promise.all(writes), [true, true, true, true, true]);
        assert.deepEqual(store.stats(), { writes: before.writes + 5, commits: before.commits + 3 });
      } finally {
        await store.close();
      }
    });
  });

  Deno.test(`${kind}: close waits for writes in flight`, async () => {
    await withTempDir(async (dir) => {
      const store = open({ dataDir: dir });
      const writes = Array.from({ length: 5 }, (_, i) => store.writeSecret(`c/${i}`, 0, recordOf([live(1)])));
      await store.close();
      assert.deepEqual(await Promise.all(writes), [true, true, true, true, true]);
      await assert.rejects(store.writeSecret("c/late", 0, recordOf([live(1)])), /store is closed/);
      await assert.rejects(store.readSecret("c/0"), /store is closed/);

      const reopened = open({ dataDir: dir });
      try {
        assert.deepEqual(await reopened.listSecretPaths(), ["c/0", "c/1", "c/2", "c/3", "c/4"]);
      } finally {
        await reopened.close();
      }
    });
  });

  Deno.test(`${kind}: two processes appending to one path lose nothing`, async () => {
    await withTempDir(async (dir) => {
      await open({ dataDir: dir }).close(); // create the schema once, up front
      const children = ["a", "b"].map((tag) => spawnSqliteChild(kind, ["append", dir, "shared", "10", tag]));
      const outputs = await Promise.all(children.map((c) => c.output()));
      for (const out of outputs) assert.equal(out.success, true, new TextDecoder().decode(out.stderr));

      const store = open({ dataDir: dir });
      try {
        const read = await store.readSecret("shared");
        assert.equal(read?.revision, 20);
        assert.deepEqual(
          [...read!.versions.keys()].sort((x, y) => x - y),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        const values = new Set([...read!.versions.values()].map((v) => new TextDecoder().decode(v.sealed)));
        assert.equal(values.size, 20);
        for (const tag of ["a", "b"]) for (let i = 0; i < 10; i++) assert.ok(values.has(`${tag}-${i}`));
      } finally {
        await store.close();
      }
    });
  });
}
