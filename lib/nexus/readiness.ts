/**
 * Whether Nexus can serve, decided in one place for every asker: `GET
 * /ready` (load balancers, `spike status`) and the service manager's
 * `READY=1` (systemd). Ready means the root key is loaded and the store
 * answers.
 *
 * @module
 */
import type { Store } from "../store/types.ts";
import type { Readiness } from "../systemd/service_notifier.ts";
import type { NexusDeps } from "./deps.ts";

/**
 * Longest the check waits for the store: probes give up after a second or
 * two, and an answer that comes later is no better than none.
 */
const STORE_PING_TIMEOUT_MS = 2000;

/** What the readiness check found. */
export interface NexusReadiness {
  /** True when both conditions hold. */
  readonly ready: boolean;
  /** Why not, for people (absent when ready). */
  readonly reason?: string;
  /** Whether the root key is in memory. */
  readonly rootKey: "loaded" | "missing";
  /** Whether the store answered (`none` in lite mode, which keeps no data). */
  readonly store: "ok" | "unreachable" | "none";
}

/** Checks the root key and pings the store (bounded in time). */
export async function checkReadiness(deps: Pick<NexusDeps, "keys" | "store">): Promise<NexusReadiness> {
  const rootKey = deps.keys.ready ? "loaded" : "missing";
  const store = deps.store === undefined
    ? "none"
    : await pingWithin(deps.store, STORE_PING_TIMEOUT_MS)
    ? "ok"
    : "unreachable";
  const reason = rootKey === "missing"
    ? "root key not loaded"
    : store === "unreachable"
    ? "backend store not answering"
    : undefined;
  return { ready: reason === undefined, ...(reason === undefined ? {} : { reason }), rootKey, store };
}

/** The same check as the service manager hears it: a status line that says what Nexus waits for. */
export async function nexusReadiness(deps: Pick<NexusDeps, "keys" | "store">, port: number): Promise<Readiness> {
  const found = await checkReadiness(deps);
  if (found.ready) return { ready: true, status: `serving on port ${port}` };
  return {
    ready: false,
    status: found.rootKey === "missing"
      ? "waiting for the root key (shards from the Keepers, spike bootstrap, or spike operator restore)"
      : "root key loaded; the backend store is not answering",
  };
}

/** Whether `store` answers its ping within `ms`. */
async function pingWithin(store: Store, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([store.ping().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
