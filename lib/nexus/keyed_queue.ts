/**
 * Runs tasks one at a time per key, in the order they were queued; tasks
 * of different keys run concurrently. Nexus queues secret writes by path
 * in front of the store's compare-and-swap, so many writers of one path in
 * this process take turns instead of racing, failing the swap and backing
 * off (the swap still guards against writers in other processes).
 *
 * @module
 */

/** A queue per key; a key holds no memory once its last task has settled. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * Runs `task` after every task queued before it under `key` has settled
   * (resolved or rejected), and resolves or rejects as `task` does. A task
   * whose key is idle starts at once, in this call.
   */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const result = previous ? previous.then(task) : start(task);
    const tail = result.then(ignore, ignore);
    this.#tails.set(key, tail);
    tail.then(() => {
      // Only the last task of a key removes it: a later one has replaced the tail.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /**
   * Runs `task` holding the turn of every one of `keys` (a move holds its
   * source and its destination). Keys are taken one by one in sorted order,
   * duplicates once, so two tasks that hold several keys never wait for
   * each other in a cycle.
   */
  runAll<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const hold = (index: number): Promise<T> =>
      index === sorted.length ? start(task) : this.run(sorted[index]!, () => hold(index + 1));
    return hold(0);
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.#tails.size;
  }
}

function start<T>(task: () => Promise<T>): Promise<T> {
  try {
    return task();
  } catch (error) {
    return Promise.reject(error);
  }
}

function ignore(): void {}
