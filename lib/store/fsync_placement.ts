/**
 * Where the in-thread store runs a group's WAL fsync: on the calling thread
 * or on Deno's blocking pool.
 *
 * Off the thread, an fsync costs a round trip between threads (~0.1 ms on
 * the 2-core development VM, against ~0.15–0.3 ms for the fsync itself),
 * and with one write at a time nothing runs meanwhile that could use the
 * thread: the write just waits longer. So a group of one write with no
 * other write queued behind it is fsynced on the calling thread, as long as
 * fsyncs are fast; every other group, and every group while recent fsyncs
 * took `limitMs` or more (a slow or busy disk), goes off the thread, so the
 * event loop never waits for the disk for long.
 *
 * @module
 */

/** Default: fsyncs that take longer than this on average never run on the event loop. */
export const DEFAULT_INLINE_FSYNC_LIMIT_MS = 1;

/** How much of each new fsync time goes into the running average. */
const WEIGHT = 0.2;

/** Decides, group by group, where the fsync runs, from the recent fsync times. */
export class FsyncPlacement {
  readonly #limitMs: number;
  #averageMs: number | undefined;

  /** `limitMs` 0 keeps every fsync off the calling thread. */
  constructor(limitMs: number = DEFAULT_INLINE_FSYNC_LIMIT_MS) {
    this.#limitMs = Math.max(0, limitMs);
  }

  /** Whether to fsync a group of `size` writes, with `queued` more waiting, on the calling thread. */
  inline(size: number, queued: number): boolean {
    return size === 1 && queued === 0 && (this.#averageMs ?? 0) < this.#limitMs;
  }

  /** Notes how long an fsync took, wherever it ran (off the thread: the round trip included). */
  record(ms: number): void {
    this.#averageMs = this.#averageMs === undefined ? ms : this.#averageMs + WEIGHT * (ms - this.#averageMs);
  }

  /** The running average of fsync times, in ms (`undefined` before the first). */
  get averageMs(): number | undefined {
    return this.#averageMs;
  }
}
