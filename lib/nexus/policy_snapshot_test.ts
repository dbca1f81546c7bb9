import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../log/logger.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import { createSqliteStore } from "../store/sqlite_store.ts";
import type { PolicyRecord, Store } from "../store/types.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";

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
  const snapshot = new PolicySnapshot(silentLogger);
  assert.deepEqual(await names(snapshot, store), []);
  assert.deepEqual(await names(snapshot, store), []);
  assert.equal(lists(), 1, "unchanged generation: no second read");
  await store.upsertPolicy(policy("a"));
  assert.deepEqual(await names(snapshot, store), ["a"]);
  await store.upsertPolicy({ ...policy("a"), pathPattern: "^z$" });
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
    const snapshot = new PolicySnapshot(silentLogger);
    assert.deepEqual(await names(snapshot, reader), []);
    await writer.upsertPolicy(policy("granted"));
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
  for (let i = 0; i < 50; i++) await memory.upsertPolicy(policy(`p${i}`));
  const snapshot = new PolicySnapshot(silentLogger);
  const sets = await Promise.all(Array.from({ length: 20 }, () => snapshot.current(store)));
  assert.equal(lists(), 1, "one list read and one compilation for 20 concurrent requests");
  assert.ok(sets.every((set) => set === sets[0]), "all of them got the same set");
  assert.equal(sets[0]!.size, 50);

  await memory.upsertPolicy(policy("p50"));
  const next = await Promise.all(Array.from({ length: 20 }, () => snapshot.current(store)));
  assert.equal(lists(), 2);
  assert.ok(next.every((set) => set === next[0] && set !== sets[0]));
  assert.equal(next[0]!.size, 51);
});

Deno.test("policy snapshot: a failed list read fails the requests waiting on it, and the next request reads again", async () => {
  const memory = createMemoryStore();
  await memory.upsertPolicy(policy("a"));
  let failures = 1;
  const store: Store = {
    ...memory,
    listPolicies() {
      if (failures-- > 0) return Promise.reject(new Error("database went away"));
      return memory.listPolicies();
    },
  };
  const snapshot = new PolicySnapshot(silentLogger);
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => snapshot.current(store)));
  assert.ok(results.every((r) => r.status === "rejected"), "no request is answered from an empty set");
  assert.deepEqual(await names(snapshot, store), ["a"]);
});

Deno.test("policy snapshot: a stored policy whose SPIFFE ID pattern does not describe SPIFFE IDs is not obeyed, and logged", async () => {
  const store = createMemoryStore();
  const errors: string[] = [];
  const log = {
    ...silentLogger,
    error: (message: string, fields?: Record<string, unknown>) => {
      errors.push(`${message} ${JSON.stringify(fields)}`);
    },
  };
  const snapshot = new PolicySnapshot(log);
  // Written into the store directly, as a row from before the rule (or a hand edit) would be.
  await store.upsertPolicy({ ...policy("everyone"), spiffeIdPattern: ".*", pathPattern: ".*" });
  await store.upsertPolicy({ ...policy("fragment"), spiffeIdPattern: "web$", pathPattern: ".*" });
  await store.upsertPolicy({ ...policy("web"), spiffeIdPattern: "^spiffe://acme\\.org/web$", pathPattern: ".*" });
  const set = await snapshot.current(store);
  assert.deepEqual(set.records.map((p) => p.name), ["web"]);
  assert.equal(set.grants("spiffe://acme.org/other", "app/db", ["read"], { strict: false }), false);
  assert.equal(set.grants("spiffe://acme.org/web", "app/db", ["read"], { strict: false }), true);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /everyone, fragment/);
  assert.match(errors[0]!, /"count":2/);
});
