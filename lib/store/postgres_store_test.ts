import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase, testPostgresCaFile } from "../../tests/support/postgres_db.ts";
import { makeServerTls } from "../../tests/support/server_tls.ts";
import { freePort } from "../../tests/support/ports.ts";
import { startTcpRelay } from "../../tests/support/tcp_relay.ts";
import { migratePostgres, POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION } from "./postgres_schema.ts";
import { createPostgresStore } from "./postgres_store.ts";
import { runStoreContract } from "./store_contract.ts";
import { insertPlainPoliciesPostgres } from "./testdata/plain_policies.ts";

runStoreContract("postgres", async (options) => {
  const db = await createTestDatabase();
  if (options?.plainPolicies) {
    const migrator = createPostgresStore({ url: db.url });
    await migrator.ping();
    await migrator.close();
    await insertPlainPoliciesPostgres(db.url, options.plainPolicies);
  }
  return { store: createPostgresStore({ url: db.url }), cleanup: () => db.drop() };
});

Deno.test("postgres: a policy write through one store changes the generation another reads", async () => {
  const db = await createTestDatabase();
  const [a, b] = [createPostgresStore({ url: db.url }), createPostgresStore({ url: db.url })];
  try {
    const before = await b.policyGeneration();
    await a.upsertPolicy({ name: "p", keyVersion: 1, sealed: new Uint8Array([1]) });
    const afterCreate = await b.policyGeneration();
    assert.notEqual(afterCreate, before);
    await a.deletePolicy("p");
    assert.notEqual(await b.policyGeneration(), afterCreate);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await db.drop();
  }
});

Deno.test("postgres: a schema-2 database with plain policies upgrades; its rows read as plain until sealed", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const store = createPostgresStore({ url: db.url });
  try {
    await migratePostgres(sql, POSTGRES_MIGRATIONS.slice(0, 2));
    await insertPlainPoliciesPostgres(db.url, [{
      name: "old",
      spiffeIdPattern: "^x$",
      pathPattern: "^y$",
      permissions: ["read"],
      createdAt: new Date(1_000),
      updatedAt: new Date(2_000),
    }]);
    const [row] = await store.listPolicies();
    assert.deepEqual(row, {
      kind: "plain",
      name: "old",
      record: {
        name: "old",
        spiffeIdPattern: "^x$",
        pathPattern: "^y$",
        permissions: ["read"],
        createdAt: new Date(1_000),
        updatedAt: new Date(2_000),
      },
    });
    const before = await store.policyGeneration();
    const sealed = { name: "old", keyVersion: 1, sealed: new Uint8Array([9]) };
    assert.deepEqual(await store.replacePolicies([{ expected: row!, next: sealed }]), [true]);
    assert.notEqual(await store.policyGeneration(), before);
    const [raw] = await sql`SELECT * FROM policies`;
    assert.equal(raw!.spiffe_id_pattern, null);
    assert.equal(raw!.permissions, null);
    assert.deepEqual(await store.getPolicy("old"), { kind: "sealed", ...sealed });
  } finally {
    await sql.end();
    await store.close();
    await db.drop();
  }
});

Deno.test("postgres: a transaction stuck on a secret's row fails a write after the statement timeout", async () => {
  const db = await createTestDatabase();
  const store = createPostgresStore({ url: db.url, statementTimeoutMs: 300 });
  const blocker = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const now = new Date();
    const v1 = { version: 1, createdTime: now, deletedTime: null, sealed: new Uint8Array([1]), keyVersion: 1 };
    const record = {
      revision: 0,
      currentVersion: 1,
      oldestVersion: 1,
      createdTime: now,
      updatedTime: now,
      maxVersions: 10,
      versions: new Map([[1, v1]]),
    };
    assert.equal(await store.writeSecret("p", 0, record), true);
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => locked = resolve);
    const holding = blocker.begin(async (tx) => {
      await tx`SELECT 1 FROM secrets WHERE path = 'p' FOR UPDATE`;
      locked();
      await held;
    });
    await lockTaken;
    // Without the timeout this write would wait for the lock, i.e. forever: the lock is released only below.
    await assert.rejects(store.writeSecret("p", 1, record), /statement timeout/);
    release();
    await holding;
    assert.equal(await store.writeSecret("p", 1, record), true, "once the lock is gone, the write goes through");
  } finally {
    await store.close();
    await blocker.end();
    await db.drop();
  }
});

Deno.test("postgres: schema version is recorded, steps run once, a newer schema is refused", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    // Five instances starting together on an empty database migrate it once.
    const stores = Array.from({ length: 5 }, () => createPostgresStore({ url: db.url }));
    await Promise.all(stores.map((s) => s.ping()));
    await Promise.all(stores.map((s) => s.close()));
    const version = async () => Number((await sql`SELECT version FROM schema_version`)[0]!.version);
    assert.equal(await version(), POSTGRES_SCHEMA_VERSION);

    const next = [...POSTGRES_MIGRATIONS, { version: POSTGRES_SCHEMA_VERSION + 1, sql: "CREATE TABLE extra (x int)" }];
    await migratePostgres(sql, next);
    await migratePostgres(sql, next);
    assert.equal(await version(), POSTGRES_SCHEMA_VERSION + 1);
    // A failing step leaves the version (and the schema) where it was.
    const broken = [...next, {
      version: POSTGRES_SCHEMA_VERSION + 2,
      sql: "CREATE TABLE y (a int); CREATE TABLE extra (y int)",
    }];
    await assert.rejects(migratePostgres(sql, broken));
    assert.equal(await version(), POSTGRES_SCHEMA_VERSION + 1);
    assert.equal((await sql`SELECT to_regclass('y') AS t`)[0]!.t, null);

    const newer = createPostgresStore({ url: db.url });
    await assert.rejects(newer.ping(), /newer than this build supports/);
    await newer.close();
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test("postgres: a database at schema 3 (audit_logs, before the key-value steps) migrates forward, racing instances included", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    // The schema an earlier build left: steps 1-3, with a secret, a policy and an audit row in it.
    assert.equal(POSTGRES_MIGRATIONS[2]!.version, 3);
    await migratePostgres(sql, POSTGRES_MIGRATIONS.slice(0, 3));
    const t = new Date("2026-01-02T03:04:05.678Z");
    await sql`INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_at, updated_at)
              VALUES ('old/db', 1, 1, 1, 10, ${t}, ${t})`;
    await sql`INSERT INTO secret_versions (path, version, created_at, deleted_at, sealed)
              VALUES ('old/db', 1, ${t}, NULL, ${new Uint8Array([7, 7])})`;
    await sql`INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_at, updated_at)
              VALUES ('old', '^x$', '^y$', '["read"]', ${t}, ${t})`;
    await sql`INSERT INTO audit_logs (instance, seq, segment, recorded_at, type, mac, line)
              VALUES ('0b3a6a52-8f0e-4d7c-9c39-4f3f1b7e2a11', 1, 0, ${t}, 'audit', ${"c".repeat(64)}, '{}')`;

    // Three instances of this build start on it together: the advisory lock lets one migrate.
    const stores = Array.from({ length: 3 }, () => createPostgresStore({ url: db.url }));
    await Promise.all(stores.map((s) => s.ping()));
    assert.equal(Number((await sql`SELECT version FROM schema_version`)[0]!.version), POSTGRES_SCHEMA_VERSION);
    assert.equal(POSTGRES_SCHEMA_VERSION, 7);
    const [store] = stores;
    const old = (await store!.readSecret("old/db"))!;
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
      "the old secret reads back as it was, with no custom metadata and no expiry, under key version 1",
    );
    assert.deepEqual(
      (await store!.listPolicies()).map((p) => [p.name, p.kind]),
      [["old", "plain"]],
      "a plain row until Nexus seals it",
    );
    assert.equal(Number((await sql`SELECT count(*) AS n FROM audit_logs`)[0]!.n), 1, "audit rows kept");
    // The new columns work on the old rows.
    const expiresAt = new Date(t.getTime() + 1000);
    assert.equal(
      await store!.writeSecret("old/db", 1, {
        ...old,
        customMetadata: { sealed: new Uint8Array([9]), keyVersion: 1 },
        expiresAt,
      }),
      true,
    );
    assert.deepEqual(await store!.listExpired(new Date(t.getTime() + 2000), 10), ["old/db"]);
    assert.deepEqual((await store!.readSecret("old/db"))?.customMetadata, {
      sealed: new Uint8Array([9]),
      keyVersion: 1,
    });
    await Promise.all(stores.map((s) => s.close()));

    // The later steps find their changes already made and complete (IF NOT EXISTS and the like).
    for (const step of POSTGRES_MIGRATIONS.slice(3)) await sql.unsafe(step.sql);
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test("postgres: calls fail while the server is unreachable; the same store works once it answers", async () => {
  const db = await createTestDatabase();
  const url = new URL(db.url);
  const target = Number(url.port);
  url.port = String(freePort());
  const store = createPostgresStore({ url: url.href, connectTimeoutSeconds: 2 });
  const relay = startTcpRelay(Number(url.port), target, { startCut: true });
  try {
    // Nothing listens on the store's port yet: schema set-up and reads fail.
    await assert.rejects(store.ping());
    await assert.rejects(store.readSecret("a"));
    // Now the port leads to the server: the schema is created on this call.
    relay.restore();
    await store.ping();
    assert.equal(await store.hasData(), false);
  } finally {
    await store.close();
    await relay.close();
    await db.drop();
  }
});

Deno.test("postgres: with a CA, connections use TLS and verify the server's name and issuer", async () => {
  const db = await createTestDatabase();
  const caPem = await Deno.readTextFile(testPostgresCaFile());
  const at = (host: string) => {
    const url = new URL(db.url);
    url.hostname = host;
    return url.href;
  };
  const verified = createPostgresStore({ url: at("localhost"), caPem });
  const wrongName = createPostgresStore({ url: at("127.0.0.1"), caPem, connectTimeoutSeconds: 5 });
  const otherCa = createPostgresStore({
    url: at("localhost"),
    caPem: (await makeServerTls(["localhost"])).caPem,
    connectTimeoutSeconds: 5,
  });
  const sql = postgres(at("localhost"), { max: 1, onnotice: () => {}, ssl: { ca: caPem, host: "localhost" } });
  try {
    await verified.ping();
    // The same kind of connection, asked for its own TLS status.
    const [row] = await sql`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
    assert.equal(row!.ssl, true);
    // The server certificate names localhost only.
    await assert.rejects(wrongName.ping(), /altnames|hostname|IP|certificate/i);
    await assert.rejects(otherCa.ping(), /certificate|issuer|verify/i);
    // verify-full without a CA file: Deno's root store does not know the test CA.
    const systemRoots = createPostgresStore({
      url: `${at("localhost")}?sslmode=verify-full`,
      connectTimeoutSeconds: 5,
    });
    await assert.rejects(systemRoots.ping(), /certificate|issuer|verify/i);
    await systemRoots.close();
  } finally {
    await Promise.all([verified.close(), wrongName.close(), otherCa.close(), sql.end()]);
    await db.drop();
  }
});

Deno.test("postgres: tryExclusive is one holder at a time across stores sharing the database", async () => {
  const db = await createTestDatabase();
  const [a, b] = [createPostgresStore({ url: db.url }), createPostgresStore({ url: db.url })];
  try {
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    let started!: () => void;
    const running = new Promise<void>((resolve) => started = resolve);
    const first = a.tryExclusive(async () => {
      started();
      await held;
      return "a";
    });
    await running;
    assert.deepEqual(await b.tryExclusive(() => Promise.resolve("b")), { ran: false }, "b is refused while a holds it");
    release();
    assert.deepEqual(await first, { ran: true, value: "a" });
    assert.deepEqual(await b.tryExclusive(() => Promise.resolve("b")), { ran: true, value: "b" }, "free after a ends");
  } finally {
    await Promise.all([a.close(), b.close()]);
    await db.drop();
  }
});
