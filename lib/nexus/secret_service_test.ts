import assert from "node:assert/strict";
import { systemRandom } from "../crypto/random.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { Store } from "../store/types.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import { RootKeyState } from "./root_key_state.ts";
import { SecretService } from "./secret_service.ts";
import { testRootKey } from "./testing.ts";

/** A store that counts compare-and-swaps, and how many of them lost. */
function countingStore(store: Store) {
  const counts = { swaps: 0, lost: 0 };
  const counted: Store = {
    ...store,
    async writeSecret(path, expected, next, audit) {
      counts.swaps++;
      const swapped = await store.writeSecret(path, expected, next, audit);
      if (!swapped) counts.lost++;
      return swapped;
    },
  };
  return { store: counted, counts };
}

async function keys(): Promise<RootKeyState> {
  const state = new RootKeyState();
  await state.install(testRootKey());
  return state;
}

function service(store: Store, state: RootKeyState, writes: KeyedQueue): SecretService {
  return new SecretService({
    store,
    keys: state,
    clock: () => new Date(),
    random: systemRandom,
    maxVersions: 50,
    writes,
  });
}

Deno.test("secret service: 16 concurrent puts of one path in one Nexus take turns: no lost swap, 16 versions", async () => {
  const { store, counts } = countingStore(createMemoryStore());
  const state = await keys();
  const writes = new KeyedQueue();
  // One service per request, as the routes make them; the queue is the Nexus's.
  await Promise.all(
    Array.from({ length: 16 }, (_, i) => service(store, state, writes).put("hot/path", { writer: String(i) })),
  );
  assert.deepEqual(counts, { swaps: 16, lost: 0 });
  const record = await store.readSecret("hot/path");
  assert.deepEqual([...record!.versions.keys()], Array.from({ length: 16 }, (_, i) => i + 1));
  const values = await Promise.all(
    Array.from({ length: 16 }, (_, v) => service(store, state, writes).get("hot/path", v + 1)),
  );
  assert.deepEqual(values.map((v) => Number(v.writer)).sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i));
  assert.equal(writes.size, 0);
});

Deno.test("secret service: writers with separate queues (as two Nexus processes) still lose no update", async () => {
  const { store, counts } = countingStore(createMemoryStore());
  const state = await keys();
  const queues = [new KeyedQueue(), new KeyedQueue()];
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => service(store, state, queues[i % 2]!).put("shared", { writer: String(i) })),
  );
  const record = await store.readSecret("shared");
  assert.equal(record?.versions.size, 20);
  assert.equal(counts.swaps - counts.lost, 20, "every put landed exactly once");
  assert.ok(counts.lost > 0, "the two queues did race: the compare-and-swap did the work");
});

Deno.test("secret service: a failed write does not hold up the next writer of its path", async () => {
  const failing = createMemoryStore();
  let fail = true;
  const store: Store = {
    ...failing,
    writeSecret(path, expected, next, audit) {
      if (fail) {
        fail = false;
        return Promise.reject(new Error("disk on fire"));
      }
      return failing.writeSecret(path, expected, next, audit);
    },
  };
  const state = await keys();
  const writes = new KeyedQueue();
  const [first, second] = await Promise.allSettled([
    service(store, state, writes).put("p", { n: "1" }),
    service(store, state, writes).put("p", { n: "2" }),
  ]);
  assert.equal(first.status, "rejected");
  assert.equal(second.status, "fulfilled");
  assert.deepEqual(await service(store, state, writes).get("p", 0), { n: "2" });
});
