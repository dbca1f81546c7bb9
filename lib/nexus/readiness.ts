/**
 * Nexus's readiness as the service manager sees it: the same two conditions
 * as `GET /ready` (root key loaded, store answering), with a status line
 * that says what it is waiting for.
 *
 * @module
 */
import type { Readiness } from "../systemd/service_notifier.ts";
import type { NexusDeps } from "./deps.ts";

/** Ready exactly when `GET /ready` would answer 200. */
export async function nexusReadiness(deps: Pick<NexusDeps, "keys" | "store">, port: number): Promise<Readiness> {
  if (!deps.keys.ready) {
    return {
      ready: false,
      status: "waiting for the root key (shards from the Keepers, spike bootstrap, or spike operator restore)",
    };
  }
  if (deps.store) {
    try {
      await deps.store.ping();
    } catch {
      return { ready: false, status: "root key loaded; the backend store is not answering" };
    }
  }
  return { ready: true, status: `serving on port ${port}` };
}
