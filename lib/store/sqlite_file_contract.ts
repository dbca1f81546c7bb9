/**
 * What both SQLite stores (in-thread and worker) must do with the file
 * itself, beyond the `Store` contract: file modes, reopen, a newer schema
 * refused, the compare-and-swap across instances and processes, pruned bytes
 * gone after a checkpoint, and an acknowledged write surviving `kill -9`.
 * Each store's test file calls `runSqliteFileContract`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SQLITE_FILE_NAME } from "./sqlite_files.ts";
import { SCHEMA_VERSION } from "./sqlite_schema.ts";
import type { SqliteStore, SqliteStoreOptions } from "./sqlite_types.ts";
import { appendVersion, recordOf } from "./store_contract.ts";
import type { SecretVersion } from "./types.ts";

/** Which store a child process opens (`testdata/sqlite_child.ts`). */
export type SqliteStoreKind = "sqlite" | "worker-sqlite";

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
 * Starts `testdata/sqlite_child.ts` with store `kind` and `args`. The
 * permission flags default to reading and writing anything.
 */
export function spawnSqliteChild(
  kind: SqliteStoreKind,
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

  Deno.test(`${kind}: an acknowledged write survives kill -9 of the writing process`, async () => {
    await withTempDir(async (dir) => {
      const child = spawnSqliteChild(kind, ["write", dir, "crash/path", "written-before-the-kill"]);
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
