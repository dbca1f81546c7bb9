/**
 * Runs synchronous backend work behind the async `Store` interface, turning
 * a throw into a rejection so callers see one failure path whatever the
 * backend.
 *
 * @module
 */

/** Calls `work` now and returns its result, or its exception, as a promise. */
export function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * `run()`, unless `check` throws first (a store closed, or failed for
 * good): then that exception as a rejection, and `run` never starts.
 */
export function guarded<T>(check: () => void, run: () => Promise<T>): Promise<T> {
  try {
    check();
  } catch (error) {
    return Promise.reject(error);
  }
  return run();
}
