import assert from "node:assert/strict";
import { join } from "node:path";
import { systemRandom } from "../crypto/random.ts";
import { silentLogger } from "../log/logger.ts";
import { recordingLog } from "../keeper/testing.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import { createSqliteStore } from "../store/sqlite_store.ts";
import type { PolicyRecord, SealedPolicy, Store } from "../store/types.ts";
import { policySealer } from "./policy_seal.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";
import { RootKeyState } from "./root_key_state.ts";
import { testRootKey } from "./testing.ts";

function policy(name: string): PolicyRecord {
  const at = new Date(1_000);
  return {
    name,
    spiffeIdPattern: "^spiffe://x$",
    pathPattern: "^y$",
    permissions: ["read"],
    createdAt: at,
    updatedAt: at,
  };
}

const seal = await policySealer(testRootKey(), 1, systemRandom);

/** A snapshot whose keys hold the test root key as version 1. */
async function snapshotFor(
  log = silentLogger,
  versionInUse?: (version: number) => Promise<boolean>,
): Promise<PolicySnapshot> {
  const keys = new RootKeyState();
  await keys.install(testRootKey());
  return new PolicySnapshot({ log, keys, ...(versionInUse ? { versionInUse } : {}) });
}

/** Names of the policies in the snapshot's current set. */
async function names(snapshot: PolicySnapshot, store: Store): Promise<string[]> {
  return (await snapshot.current(store)).records.map((p) => p.name);
}

/** `store` with a count of `listPolicies` calls. */
function counting(store: Store): { store: Store; lists(): number } {
  let lists = 0;
  return {
    store: {
      ...store,
      listPolicies() {
        lists++;
        return store.listPolicies();
      },
    },
    lists: () => lists,
  };
}

Deno.test("policy snapshot: the list is read once per generation, and again after any policy write", async () => {
  const { store, lists } = counting(createMemoryStore());
  const snapshot = await snapshotFor();
  assert.deepEqual(await names(snapshot, store), []);
  assert.deepEqual(await names(snapshot, store), []);
  assert.equal(lists(), 1, "unchanged generation: no second read");
  await store.upsertPolicy(await seal(policy("a")));
  assert.deepEqual(await names(snapshot, store), ["a"]);
  await store.upsertPolicy(await seal({ ...policy("a"), pathPattern: "^z$" }));
  assert.equal((await snapshot.current(store)).records[0]!.pathPattern, "^z$");
  await store.deletePolicy("a");
  assert.deepEqual(await names(snapshot, store), []);
  assert.equal(lists(), 4);
  assert.ok(Object.isFrozen((await snapshot.current(store)).records), "handlers cannot change the shared copy");
});

Deno.test("policy snapshot: a write through another store instance on the same database is seen at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_snapshot_" });
  const writer = createSqliteStore({ dataDir: join(dir, "data") });
  const reader = createSqliteStore({ dataDir: join(dir, "data") });
  try {
    const snapshot = await snapshotFor();
    assert.deepEqual(await names(snapshot, reader), []);
    await writer.upsertPolicy(await seal(policy("granted")));
    assert.deepEqual(await names(snapshot, reader), ["granted"]);
    await writer.deletePolicy("granted");
    assert.deepEqual(await names(snapshot, reader), []);
  } finally {
    await writer.close();
    await reader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policy snapshot: requests arriving while a generation is built share that one build", async () => {
  const memory = createMemoryStore();
  const { store, lists } = counting(memory);
  for (let i = 0; i < 50; i++) await memory.upsertPolicy(await seal(policy(`p${i}`)));
  const snapshot = await snapshotFor();
  const sets = await Promise.all(Array.from({ length: 20 }, () => snapshot.current(store)));
  assert.equal(lists(), 1, "one list read and one compilation for 20 concurrent requests");
  assert.ok(sets.every((set) => set === sets[0]), "all of them got the same set");
  assert.equal(sets[0]!.size, 50);

  await memory.upsertPolicy(await seal(policy("p50")));
  const next = await Promise.all(Array.from({ length: 20 }, () => snapshot.current(store)));
  assert.equal(lists(), 2);
  assert.ok(next.every((set) => set === next[0] && set !== sets[0]));
  assert.equal(next[0]!.size, 51);
});

Deno.test("policy snapshot: a failed list read fails the requests waiting on it, and the next request reads again", async () => {
  const memory = createMemoryStore();
  await memory.upsertPolicy(await seal(policy("a")));
  let failures = 1;
  const store: Store = {
    ...memory,
    listPolicies() {
      if (failures-- > 0) return Promise.reject(new Error("database went away"));
      return memory.listPolicies();
    },
  };
  const snapshot = await snapshotFor();
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => snapshot.current(store)));
  assert.ok(results.every((r) => r.status === "rejected"), "no request is answered from an empty set");
  assert.deepEqual(await names(snapshot, store), ["a"]);
});

Deno.test("policy snapshot: a stored policy whose SPIFFE ID pattern does not describe SPIFFE IDs is not obeyed, and logged", async () => {
  const store = createMemoryStore();
  const log = recordingLog();
  const snapshot = await snapshotFor(log);
  // Written into the store directly, as a row from before the rule would be.
  await store.upsertPolicy(await seal({ ...policy("everyone"), spiffeIdPattern: ".*", pathPattern: ".*" }));
  await store.upsertPolicy(await seal({ ...policy("fragment"), spiffeIdPattern: "web$", pathPattern: ".*" }));
  await store.upsertPolicy(
    await seal({ ...policy("web"), spiffeIdPattern: "^spiffe://acme\\.org/web$", pathPattern: ".*" }),
  );
  const generation = await snapshot.generation(store);
  assert.deepEqual(generation.set.records.map((p) => p.name), ["web"]);
  assert.deepEqual(generation.authentic.map((p) => p.name), ["everyone", "fragment", "web"], "listed, not obeyed");
  assert.equal(generation.set.grants("spiffe://acme.org/other", "app/db", ["read"], { strict: false }), false);
  assert.equal(generation.set.grants("spiffe://acme.org/web", "app/db", ["read"], { strict: false }), true);
  const errors = log.lines.filter((line) => line.includes('"level":"error"'));
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /everyone, fragment/);
  assert.match(errors[0]!, /"count":2/);
});

Deno.test("policy snapshot: inserted, edited, swapped and plain rows are absent, logged and counted once", async () => {
  const store = createMemoryStore({ plainPolicies: [{ ...policy("plain"), spiffeIdPattern: "^spiffe://x/evil$" }] });
  const log = recordingLog();
  const snapshot = await snapshotFor(log);
  const good = await seal(policy("good"));
  const other = await seal({ ...policy("other"), permissions: ["super"] });
  await store.upsertPolicy(good);
  // Someone with write access to the database:
  const edited = good.sealed.slice();
  edited[edited.length - 20]! ^= 1;
  await store.upsertPolicy({ name: "edited", keyVersion: 1, sealed: edited });
  await store.upsertPolicy({ ...other, name: "swapped" } satisfies SealedPolicy);
  await store.upsertPolicy({ name: "invented", keyVersion: 1, sealed: new Uint8Array(64) });
  await store.upsertPolicy({ ...good, name: "relabelled", keyVersion: 1 });
  const first = await snapshot.generation(store);
  assert.deepEqual(first.authentic.map((p) => p.name), ["good"]);
  assert.deepEqual(first.tampered, ["edited", "invented", "plain", "relabelled", "swapped"]);
  assert.equal(first.byName.get("swapped"), undefined);
  assert.equal(first.set.grants("spiffe://x/evil", "y", ["read"], { strict: false }), false);
  assert.equal(snapshot.tamperedTotal, 5);
  assert.equal(log.count("treated as absent"), 1);
  assert.match(log.lines.find((l) => l.includes("treated as absent"))!, /"level":"error"/);

  // A later generation with the same rows does not count them again; a new one does.
  await store.upsertPolicy(await seal(policy("another")));
  await snapshot.generation(store);
  assert.equal(snapshot.tamperedTotal, 5);
  await store.upsertPolicy({ name: "invented", keyVersion: 1, sealed: new Uint8Array(65) });
  assert.equal((await snapshot.generation(store)).tampered.length, 5);
  assert.equal(snapshot.tamperedTotal, 6);
  for (const name of ["edited", "invented", "plain", "relabelled", "swapped"]) await store.deletePolicy(name);
  assert.deepEqual((await snapshot.generation(store)).tampered, []);
});

Deno.test("policy snapshot: unchanged rows are not opened again; a row under a version in use but not held is left out", async () => {
  const memory = createMemoryStore();
  for (let i = 0; i < 20; i++) await memory.upsertPolicy(await seal(policy(`p${i}`)));
  const snapshot = await snapshotFor(silentLogger, (version) => Promise.resolve(version === 2));
  const first = await snapshot.generation(memory);
  await memory.upsertPolicy(await seal(policy("p3")));
  await memory.upsertPolicy({ ...(await seal(policy("future"))), keyVersion: 2 });
  const generation = await snapshot.generation(memory);
  // A row opened again yields a new record object; one kept from the last build is the same object.
  // (Counted by identity: small rows are opened by node:crypto, large ones by WebCrypto.)
  const reopened = generation.authentic.filter((record) => first.byName.get(record.name) !== record);
  assert.deepEqual(reopened.map((record) => record.name), ["p3"], "only the rewritten row is opened");
  assert.equal(generation.authentic.length, 20);
  assert.deepEqual(generation.missingKeyVersions, [2]);
  assert.deepEqual(generation.tampered, [], "a version in use but not held is not tampering");
  await memory.upsertPolicy({ ...(await seal(policy("bogus"))), keyVersion: 7 });
  assert.deepEqual((await snapshot.generation(memory)).tampered, ["bogus"], "a version not in use is");
});
