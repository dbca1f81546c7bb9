/**
 * Group commit, shared by both SQLite stores: writes queue up while the
 * previous group is being committed (and made durable), then go out together
 * as the next group: one transaction and one fsync for all of them. Each
 * write keeps its own outcome (its own compare-and-swap result, or its own
 * error); only a failure of the group as a whole fails all of its writes.
 *
 * How a group is committed is the store's business (`commit`): the in-thread
 * store commits on the calling thread and fsyncs the WAL off it; the worker
 * store posts the group to its worker.
 *
 * @module
 */
import type { SqliteOutcome } from "./sqlite_types.ts";

/** What the group committer needs. */
export interface GroupCommitOptions<C> {
  /** Most writes in one group (bounds how long one transaction holds the write lock). */
  readonly maxBatch: number;
  /**
   * Commits `calls` as one group (`queued` more writes are waiting behind
   * it). Resolves one outcome per call, in order, once the group is as
   * durable as the store promises; rejecting fails every call of the group,
   * with that error.
   */
  readonly commit: (calls: readonly C[], queued: number) => Promise<readonly SqliteOutcome[]>;
}

/** Counters of a group committer. */
export interface GroupCommitStats {
  /** Writes answered. */
  readonly writes: number;
  /** Groups they took (writes ÷ commits = the mean group size). */
  readonly commits: number;
}

/** A group committer. */
export interface GroupCommit<C> {
  /**
   * Queues `call` for the next group. Resolves with its value or rejects
   * with its error once its group is committed; writes submitted in the
   * same turn of the event loop always share a group.
   */
  submit(call: C): Promise<unknown>;
  /** Rejects every queued write, and every later one, with `error` (the store is unusable). */
  fail(error: Error): void;
  /** Writes and groups so far. */
  stats(): GroupCommitStats;
}

interface Queued<C> {
  readonly call: C;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** Creates a group committer around `options.commit`. */
export function createGroupCommit<C>(options: GroupCommitOptions<C>): GroupCommit<C> {
  const maxBatch = Math.max(1, Math.trunc(options.maxBatch));
  const queue: Queued<C>[] = [];
  let inFlight = false;
  let scheduled = false;
  let failure: Error | undefined;
  let writes = 0;
  let commits = 0;

  function settle(write: Queued<C>, outcome: SqliteOutcome | undefined): void {
    if (!outcome) write.reject(new Error("store: a group commit answered fewer outcomes than it had writes"));
    else if (outcome.ok) write.resolve(outcome.value);
    else write.reject(outcome.error);
  }

  /** Sends the queued writes as one group, unless a group is still in flight. */
  function flush(): void {
    scheduled = false;
    if (inFlight || queue.length === 0 || failure) return;
    const group = queue.splice(0, maxBatch);
    inFlight = true;
    let committed: Promise<readonly SqliteOutcome[]>;
    try {
      committed = options.commit(group.map((w) => w.call), queue.length);
    } catch (error) {
      committed = Promise.reject(error);
    }
    committed.then(
      (outcomes) => {
        writes += group.length;
        commits++;
        group.forEach((write, i) => settle(write, outcomes[i]));
      },
      (error) => {
        for (const write of group) write.reject(error);
      },
    ).finally(() => {
      inFlight = false;
      flush();
    });
  }

  return {
    submit(call) {
      return new Promise((resolve, reject) => {
        if (failure) return reject(failure);
        queue.push({ call, resolve, reject });
        // Writes issued in the same turn of the event loop go out together.
        if (!scheduled && !inFlight) {
          scheduled = true;
          queueMicrotask(flush);
        }
      });
    },

    fail(error) {
      failure ??= error;
      for (const write of queue.splice(0)) write.reject(failure);
    },

    stats: () => ({ writes, commits }),
  };
}
