/**
 * An {@linkcode IdentitySource} whose real source is created by an async
 * step (a dynamic `import()` of its module), so a process loads only the
 * source it uses. It behaves like the source it wraps: `ready()` waits for
 * both, `current()` throws until then, listeners subscribed early are
 * attached once the source exists, and `close()` closes it whenever it
 * arrives.
 *
 * @module
 */

import type { IdentitySource } from "./identity.ts";
import { IdentitySourceError } from "./identity_check.ts";

/**
 * Starts `create` now and returns a source that forwards to its result.
 * When `create` fails, `ready()` rejects with that error.
 *
 * @param name Shown in the not-ready error, e.g. `Workload API at unix:///…`.
 */
export function deferredSource(name: string, create: () => Promise<IdentitySource>): IdentitySource {
  let inner: IdentitySource | undefined;
  let closed = false;
  const creating = create().then((source) => {
    inner = source;
    return source;
  });
  // A failure is reported by ready(); it must not also surface as an unhandled rejection.
  creating.catch(() => {});

  return {
    ready: async () => {
      const source = await creating;
      if (closed) throw new IdentitySourceError("closed", `${name}: closed`);
      return await source.ready();
    },
    current: () => {
      if (inner === undefined) throw new IdentitySourceError("not_ready", `${name}: no identity yet`);
      return inner.current();
    },
    onChange(listener) {
      if (inner !== undefined) return inner.onChange(listener);
      let unsubscribe: (() => void) | undefined;
      let cancelled = false;
      creating.then((source) => {
        if (!cancelled) unsubscribe = source.onChange(listener);
      }, () => {});
      return () => {
        cancelled = true;
        unsubscribe?.();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      const source = await creating.catch(() => undefined);
      await source?.close();
    },
  };
}
