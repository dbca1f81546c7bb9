import assert from "node:assert/strict";
import { join } from "node:path";
import { createMemoryStore } from "../store/memory_store.ts";
import { createSqliteStore } from "../store/sqlite_store.ts";
import type { PolicyRecord, Store } from "../store/types.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";

function policy(name: string): PolicyRecord {
  const at = new Date(1_000);
  return { name, spiffeIdPattern: "^x$", pathPattern: "^y$", permissions: ["read"], createdAt: at, updatedAt: at };
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
  const snapshot = new PolicySnapshot();
  assert.deepEqual(await snapshot.current(store), []);
  assert.deepEqual(await snapshot.current(store), []);
  assert.equal(lists(), 1, "unchanged generation: no second read");
  await store.upsertPolicy(policy("a"));
  assert.deepEqual((await snapshot.current(store)).map((p) => p.name), ["a"]);
  await store.upsertPolicy({ ...policy("a"), pathPattern: "^z$" });
  assert.equal((await snapshot.current(store))[0]!.pathPattern, "^z$");
  await store.deletePolicy("a");
  assert.deepEqual(await snapshot.current(store), []);
  assert.equal(lists(), 4);
  assert.ok(Object.isFrozen(await snapshot.current(store)), "handlers cannot change the shared copy");
});

Deno.test("policy snapshot: a write through another store instance on the same database is seen at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_snapshot_" });
  const writer = createSqliteStore({ dataDir: join(dir, "data") });
  const reader = createSqliteStore({ dataDir: join(dir, "data") });
  try {
    const snapshot = new PolicySnapshot();
    assert.deepEqual(await snapshot.current(reader), []);
    await writer.upsertPolicy(policy("granted"));
    assert.deepEqual((await snapshot.current(reader)).map((p) => p.name), ["granted"]);
    await writer.deletePolicy("granted");
    assert.deepEqual(await snapshot.current(reader), []);
  } finally {
    await writer.close();
    await reader.close();
    await Deno.remove(dir, { recursive: true });
  }
});
