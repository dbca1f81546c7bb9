import assert from "node:assert/strict";
import { createMemoryStore } from "./memory_store.ts";
import { measureStore, STORE_OPERATIONS, type StoreOperation } from "./measured_store.ts";
import type { Store } from "./types.ts";

Deno.test("measured store: every call is passed through and reported, failures as failures", async () => {
  const seen: Array<[StoreOperation, boolean]> = [];
  const inner = createMemoryStore();
  const failing: Store = { ...inner, getPolicy: () => Promise.reject(new Error("down")) };
  const store = measureStore(failing, {
    storeOperation(operation, seconds, ok) {
      assert.ok(seconds >= 0);
      seen.push([operation, ok]);
    },
  });
  await store.putMeta("k", new Uint8Array([1]));
  assert.deepEqual(await store.getMeta("k"), new Uint8Array([1]));
  assert.deepEqual(await store.counts(), { secrets: 0, policies: 0 });
  await assert.rejects(store.getPolicy("p"), /down/);
  assert.deepEqual(seen, [["put_meta", true], ["get_meta", true], ["counts", true], ["get_policy", false]]);
  await store.close();
  await assert.rejects(inner.ping(), "close reaches the wrapped store");
});

Deno.test("measured store: every Store method but close is measured, with a snake_case label", () => {
  const methods = Object.keys(measureStore(createMemoryStore(), { storeOperation() {} })).sort();
  assert.deepEqual(methods, [...Object.keys(STORE_OPERATIONS), "close"].sort());
  for (const label of Object.values(STORE_OPERATIONS)) assert.match(label, /^[a-z]+(_[a-z]+)*$/);
});

Deno.test("measured store: a backend's extras (checkpoint, stats) pass through unmeasured", async () => {
  const seen: string[] = [];
  const inner = { ...createMemoryStore(), checkpoint: () => Promise.resolve(true), stats: () => ({ writes: 3 }) };
  const store = measureStore(inner, { storeOperation: (operation) => seen.push(operation) });
  assert.equal(await store.checkpoint(), true);
  assert.deepEqual(store.stats(), { writes: 3 });
  assert.deepEqual(seen, []);
});
