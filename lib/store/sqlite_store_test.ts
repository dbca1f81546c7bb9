import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { DEFAULT_BUSY_TIMEOUT_MS, openDatabase } from "./sqlite_connection.ts";
import { runSqliteFileContract, withTempDir } from "./sqlite_file_contract.ts";
import { migrate, MIGRATIONS, SCHEMA_VERSION } from "./sqlite_schema.ts";
import { createSqliteStore, SQLITE_FILE_NAME } from "./sqlite_store.ts";
import { runStoreContract } from "./store_contract.ts";
import { insertPlainPoliciesSqlite } from "./testdata/plain_policies.ts";

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
