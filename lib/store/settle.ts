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
