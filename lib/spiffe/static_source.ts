/**
 * An identity source holding one identity that the caller replaces by hand:
 * for tests, and for `spike dev`, which mints SVIDs from its own CA.
 *
 * @module
 */

import type { IdentitySource, X509Identity } from "./identity.ts";

/** An {@linkcode IdentitySource} whose identity is swapped with {@linkcode StaticSource.set}. */
export interface StaticSource extends IdentitySource {
  /** Replaces the identity and notifies every `onChange` listener. */
  set(identity: X509Identity): void;
}

/**
 * Creates a source that is ready at once with `identity`.
 *
 * Listeners run synchronously inside `set`; if some throw, the rest still
 * run and `set` then throws an `AggregateError` with every failure.
 */
export function createStaticSource(identity: X509Identity): StaticSource {
  let current = identity;
  let closed = false;
  const listeners = new Set<(identity: X509Identity) => void>();

  return {
    ready: () => Promise.resolve(current),
    current: () => current,
    onChange(listener) {
      if (closed) return () => {};
      // A wrapper makes each subscription distinct, so subscribing the same
      // function twice and unsubscribing once leaves the other in place.
      const entry = (next: X509Identity) => listener(next);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    set(next) {
      if (closed) throw new Error("identity source is closed");
      current = next;
      const failures: unknown[] = [];
      for (const listener of [...listeners]) {
        try {
          listener(next);
        } catch (err) {
          failures.push(err);
        }
      }
      if (failures.length > 0) throw new AggregateError(failures, "identity change listener failed");
    },
    close() {
      closed = true;
      listeners.clear();
      return Promise.resolve();
    },
  };
}
