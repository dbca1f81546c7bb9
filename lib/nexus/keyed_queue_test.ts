import assert from "node:assert/strict";
import { KeyedQueue } from "./keyed_queue.ts";

/** A promise with its resolve and reject exposed. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

Deno.test("KeyedQueue: tasks of one key run one at a time, in order; other keys run alongside", async () => {
  const queue = new KeyedQueue();
  const log: string[] = [];
  const gates = [deferred(), deferred(), deferred()];
  const task = (name: string, gate: Promise<void>) => async () => {
    log.push(`start ${name}`);
    await gate;
    log.push(`end ${name}`);
    return name;
  };
  const a1 = queue.run("a", task("a1", gates[0]!.promise));
  const a2 = queue.run("a", task("a2", gates[1]!.promise));
  const b1 = queue.run("b", task("b1", gates[2]!.promise));
  assert.deepEqual(log, ["start a1", "start b1"], "an idle key starts at once; a busy one waits");
  gates[2]!.resolve();
  assert.equal(await b1, "b1");
  assert.deepEqual(log, ["start a1", "start b1", "end b1"], "b did not wait for a");
  gates[1]!.resolve(); // a2's gate opens first, but a2 has not started
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(log.includes("start a2"), false);
  gates[0]!.resolve();
  assert.deepEqual(await Promise.all([a1, a2]), ["a1", "a2"]);
  assert.deepEqual(log.slice(3), ["end a1", "start a2", "end a2"]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(queue.size, 0, "settled keys are forgotten");
});

Deno.test("KeyedQueue: a failing task fails alone, and the next one still runs", async () => {
  const queue = new KeyedQueue();
  const failing = queue.run("k", () => Promise.reject(new Error("boom")));
  const throwing = queue.run("k", () => {
    throw new Error("thrown before any await");
  });
  const next = queue.run("k", () => Promise.resolve("after"));
  await assert.rejects(failing, /boom/);
  await assert.rejects(throwing, /thrown before any await/);
  assert.equal(await next, "after");
  // A synchronous throw on an idle key is a rejection too, never an exception from run().
  await assert.rejects(
    queue.run("idle", () => {
      throw new Error("sync");
    }),
    /sync/,
  );
});

Deno.test("KeyedQueue: runAll holds every key; crossing multi-key tasks do not deadlock", async () => {
  const queue = new KeyedQueue();
  const log: string[] = [];
  const gate = deferred();
  const first = queue.run("b", async () => {
    await gate.promise;
    log.push("b alone");
  });
  // Both wait for "b"; taking keys in sorted order, neither holds one the other needs while it waits.
  const ab = queue.runAll(["b", "a"], () => {
    log.push("a+b");
    return Promise.resolve("ab");
  });
  const ba = queue.runAll(["a", "b", "a"], () => {
    log.push("b+a");
    return Promise.resolve("ba");
  });
  const a = queue.run("a", () => {
    log.push("a alone");
    return Promise.resolve();
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(log, [], "a+b holds a while it waits for b; everything behind it waits");
  gate.resolve();
  assert.deepEqual(await Promise.all([ab, ba]), ["ab", "ba"]);
  await Promise.all([first, a]);
  assert.deepEqual(log, ["b alone", "a+b", "b+a", "a alone"]);
  assert.equal(queue.runAll([], () => Promise.resolve(1)) instanceof Promise, true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(queue.size, 0);
});
