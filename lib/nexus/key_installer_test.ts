/**
 * The root key installer and the one-time sealing of plain-text policies
 * left by a build from before policies were sealed: on every backend, once,
 * safe with two Nexus racing, and never for a store that does not prove
 * (with its check value) it was written before sealing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { systemRandom } from "../crypto/random.ts";
import { recordingLog } from "../keeper/testing.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import { createPostgresStore } from "../store/postgres_store.ts";
import { migrate, MIGRATIONS } from "../store/sqlite_schema.ts";
import { createSqliteStore, SQLITE_FILE_NAME } from "../store/sqlite_store.ts";
import { insertPlainPoliciesPostgres, insertPlainPoliciesSqlite } from "../store/testdata/plain_policies.ts";
import type { PolicyRecord, Store } from "../store/types.ts";
import { createTestDatabase } from "../../tests/support/postgres_db.ts";
import type { NexusDeps } from "./deps.ts";
import { checkRootKey, KEY_CHECK_META, sealLegacyKeyCheck } from "./key_check.ts";
import { installRootKey } from "./key_installer.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";
import { RootKeyState } from "./root_key_state.ts";
import { testRootKey } from "./testing.ts";

const WEB = "spiffe://spike.ist/app/web";

function plain(name: string, permissions: PolicyRecord["permissions"] = ["read"]): PolicyRecord {
  return {
    name,
    spiffeIdPattern: `^spiffe://spike\\.ist/app/${name}$`,
    pathPattern: `^${name}/`,
    permissions,
    createdAt: new Date(1_000),
    updatedAt: new Date(2_000),
  };
}

type InstallDeps = Pick<NexusDeps, "store" | "keys" | "random" | "log">;

function depsFor(store: Store): InstallDeps & { log: ReturnType<typeof recordingLog> } {
  return { store, keys: new RootKeyState(), random: systemRandom, log: recordingLog() };
}

/** What the policy snapshot of `deps` makes of the store. */
async function policies(deps: InstallDeps) {
  return await new PolicySnapshot({ log: recordingLog(), keys: deps.keys }).generation(deps.store!);
}

Deno.test("installer: a store from before sealing has its plain policies sealed, once, before the key serves", async () => {
  const store = createMemoryStore({ plainPolicies: [plain("web"), plain("db", ["read", "write"])] });
  await store.putMeta(KEY_CHECK_META, await sealLegacyKeyCheck(testRootKey(), systemRandom));
  assert.equal((await checkRootKey(store, testRootKey())).policiesSealed, false);

  const deps = depsFor(store);
  assert.equal(await installRootKey(deps, testRootKey()), "installed");
  const rows = await store.listPolicies();
  assert.ok(rows.every((row) => row.kind === "sealed" && row.keyVersion === 1), "every row sealed under version 1");
  assert.deepEqual(await checkRootKey(store, testRootKey()), { result: "match", policiesSealed: true });
  assert.equal(deps.log.count("sealed the plain-text policies"), 1);

  const generation = await policies(deps);
  assert.deepEqual(generation.tampered, []);
  assert.deepEqual(generation.byName.get("db"), plain("db", ["read", "write"]), "content and times kept");
  assert.equal(generation.set.grants(WEB, "web/x", ["read"], { strict: false }), true);

  // Another start (or a second Nexus): nothing left to seal, the sealed rows are not touched.
  const again = depsFor(store);
  assert.equal(await installRootKey(again, testRootKey()), "installed");
  assert.equal(again.log.count("sealed the plain-text policies"), 0);
  assert.deepEqual(await store.listPolicies(), rows);
});

Deno.test("installer: a plain row in a store whose check is current is never sealed: it is tampering", async () => {
  const store = createMemoryStore({ plainPolicies: [plain("evil", ["super"])] });
  const deps = depsFor(store);
  // No check value at all (a new store, or one whose check someone deleted): nothing is sealed.
  assert.equal(await installRootKey(deps, testRootKey()), "installed");
  assert.equal((await store.getPolicy("evil"))?.kind, "plain");
  const generation = await policies(deps);
  assert.deepEqual(generation.tampered, ["evil"]);
  assert.equal(generation.set.grants("spiffe://spike.ist/app/evil", "evil/x", ["read"], { strict: false }), false);
  // And with a current check value, neither.
  assert.equal(await installRootKey(depsFor(store), testRootKey()), "installed");
  assert.equal((await store.getPolicy("evil"))?.kind, "plain");
});

Deno.test("installer: a wrong key seals nothing", async () => {
  const store = createMemoryStore({ plainPolicies: [plain("web")] });
  await store.putMeta(KEY_CHECK_META, await sealLegacyKeyCheck(testRootKey(), systemRandom));
  const other = testRootKey().map((b, i) => i === 31 ? b ^ 1 : b);
  assert.equal(await installRootKey(depsFor(store), other), "mismatch");
  assert.equal((await store.getPolicy("web"))?.kind, "plain");
  assert.equal((await checkRootKey(store, testRootKey())).policiesSealed, false);
});

Deno.test("installer: a schema-2 SQLite file with plain policies upgrades and is sealed in place", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_legacy_" });
  try {
    const file = join(dir, SQLITE_FILE_NAME);
    const v2 = new DatabaseSync(file);
    migrate(v2, MIGRATIONS.slice(0, 2));
    v2.close();
    insertPlainPoliciesSqlite(file, [plain("web"), plain("db")]);
    const legacyCheck = await sealLegacyKeyCheck(testRootKey(), systemRandom);
    const db = new DatabaseSync(file);
    db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run(KEY_CHECK_META, legacyCheck);
    db.close();

    const store = createSqliteStore({ dataDir: dir });
    try {
      const deps = depsFor(store);
      assert.equal(await installRootKey(deps, testRootKey()), "installed");
      const generation = await policies(deps);
      assert.deepEqual(generation.authentic.map((p) => p.name), ["db", "web"]);
      assert.deepEqual(generation.tampered, []);
    } finally {
      await store.close();
    }
    const raw = new DatabaseSync(file);
    try {
      const rows = raw.prepare("SELECT spiffe_id_pattern, path_pattern, permissions, key_version FROM policies").all();
      assert.ok(rows.every((r) => r.spiffe_id_pattern === null && r.path_pattern === null && r.permissions === null));
      assert.ok(rows.every((r) => r.key_version === 1));
    } finally {
      raw.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("installer: two Nexus racing on one Postgres seal each plain row exactly once", async () => {
  const db = await createTestDatabase();
  const [a, b] = [createPostgresStore({ url: db.url }), createPostgresStore({ url: db.url })];
  try {
    await a.ping(); // migrates
    const names = Array.from({ length: 300 }, (_, i) => `p${String(i).padStart(3, "0")}`);
    await insertPlainPoliciesPostgres(db.url, names.map((name) => plain(name)));
    await a.putMeta(KEY_CHECK_META, await sealLegacyKeyCheck(testRootKey(), systemRandom));
    const [depsA, depsB] = [depsFor(a), depsFor(b)];
    assert.deepEqual(
      await Promise.all([installRootKey(depsA, testRootKey()), installRootKey(depsB, testRootKey())]),
      ["installed", "installed"],
    );
    const sealedBy = (deps: typeof depsA) =>
      Number(/"sealed":(\d+)/.exec(deps.log.lines.find((l) => l.includes("sealed the plain-text")) ?? "")?.[1] ?? 0);
    assert.equal(sealedBy(depsA) + sealedBy(depsB), names.length, "every row sealed by exactly one of them");
    for (const deps of [depsA, depsB]) {
      const generation = await policies(deps);
      assert.equal(generation.authentic.length, names.length);
      assert.deepEqual(generation.tampered, []);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
    await db.drop();
  }
});
