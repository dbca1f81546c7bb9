/**
 * The in-process half of `Store.tryExclusive`: one holder at a time per
 * store object. Backends shared between processes (Postgres) add a lock in
 * the database on top; the others are exclusive within this process only.
 *
 * @module
 */

/** What `tryExclusive` resolves. */
export type ExclusiveOutcome<T> = { ran: true; value: T } | { ran: false };

/** A `tryExclusive` for one store: `work` runs unless an earlier call's work is still running. */
export function localExclusive(): <T>(work: () => Promise<T>) => Promise<ExclusiveOutcome<T>> {
  let held = false;
  return async <T>(work: () => Promise<T>): Promise<ExclusiveOutcome<T>> => {
    if (held) return { ran: false };
    held = true;
    try {
      return { ran: true, value: await work() };
    } finally {
      held = false;
    }
  };
}
