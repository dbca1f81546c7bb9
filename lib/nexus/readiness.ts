/**
 * Whether Nexus can serve, decided in one place for every asker: `GET
 * /ready` (load balancers, `spike status`) and the service manager's
 * `READY=1` (systemd). Ready means the root key is loaded and the store
 * answers.
 *
 * The answer also says **[ours]** which root key version new data is
 * sealed under, where a rotation stands, and whether the store was tampered
 * with. A tampered store keeps `/ready` ready (200): the rows that fail
 * authentication are already treated as absent (they can deny, never
 * grant), so serving stays safe, and answering 503 would let anyone who can
 * write one row into the database take every Nexus out of its load
 * balancer. The answer says `"tampered": true` with a reason instead, the
 * error log names the rows, and `spike_nexus_policies_tampered` /
 * `spike_nexus_policy_tampered_total` are there to alert on.
 *
 * @module
 */
import type { KeyPhase, Store } from "../store/types.ts";
import type { Readiness } from "../systemd/service_notifier.ts";
import type { NexusDeps } from "./deps.ts";

/**
 * Longest the check waits for the store: probes give up after a second or
 * two, and an answer that comes later is no better than none.
 */
const STORE_PING_TIMEOUT_MS = 2000;

/** What the readiness check found. */
export interface NexusReadiness {
  /** True when both conditions hold (a tampered store is still ready). */
  readonly ready: boolean;
  /** Why not, or what is wrong while ready (tampered rows), for people (absent when all is well). */
  readonly reason?: string;
  /** Whether the root key is in memory. */
  readonly rootKey: "loaded" | "missing";
  /** Whether the store answered (`none` in lite mode, which keeps no data). */
  readonly store: "ok" | "unreachable" | "none";
  /** The root key version new data is sealed under [ours]; absent without a key. */
  readonly keyVersion?: number;
  /** Where a root key rotation stands in the store [ours]; absent without a key or a store. */
  readonly rotation?: KeyPhase;
  /** Whether stored policy rows fail authentication [ours]; absent without a key or a store. */
  readonly tampered?: boolean;
}

/**
 * Checks the root key and pings the store (bounded in time); with both,
 * reads the key state and the current policy generation's tampered rows.
 */
export async function checkReadiness(
  deps: Pick<NexusDeps, "keys" | "store" | "policies">,
): Promise<NexusReadiness> {
  const rootKey = deps.keys.ready ? "loaded" : "missing";
  const store = deps.store === undefined
    ? "none"
    : await withinTimeout(deps.store.ping().then(() => true, () => false), false)
    ? "ok"
    : "unreachable";
  if (rootKey === "missing") return { ready: false, reason: "root key not loaded", rootKey, store };
  if (store === "unreachable") return { ready: false, reason: "backend store not answering", rootKey, store };
  const keyVersion = deps.keys.writeVersion;
  if (store === "none") return { ready: true, rootKey, store, keyVersion };
  const found = await withinTimeout(inspect(deps.store!, deps), undefined);
  if (!found) return { ready: false, reason: "backend store not answering", rootKey, store: "unreachable" };
  const { rotation, tamperedRows } = found;
  const tampered = tamperedRows > 0;
  return {
    ready: true,
    ...(tampered
      ? {
        reason: `store tampered: ${tamperedRows} policy row(s) failed authentication and are treated as absent`,
      }
      : {}),
    rootKey,
    store,
    keyVersion,
    rotation,
    tampered,
  };
}

/** The same check as the service manager hears it: a status line that says what Nexus waits for. */
export async function nexusReadiness(
  deps: Pick<NexusDeps, "keys" | "store" | "policies">,
  port: number,
): Promise<Readiness> {
  const found = await checkReadiness(deps);
  if (found.ready) {
    return { ready: true, status: `serving on port ${port}${found.tampered ? " (store tampered: see the log)" : ""}` };
  }
  return {
    ready: false,
    status: found.rootKey === "missing"
      ? "waiting for the root key (shards from the Keepers, spike bootstrap, or spike operator restore)"
      : "root key loaded; the backend store is not answering",
  };
}

/** The rotation phase and how many policy rows of the current generation fail authentication. */
async function inspect(
  store: Store,
  deps: Pick<NexusDeps, "policies">,
): Promise<{ rotation: KeyPhase; tamperedRows: number } | undefined> {
  try {
    const rotation = (await store.keyState()).phase;
    const tamperedRows = (await deps.policies.generation(store)).tampered.length;
    return { rotation, tamperedRows };
  } catch {
    return undefined;
  }
}

/** `work`'s result, or `fallback` when it takes longer than the store timeout. */
async function withinTimeout<T>(work: Promise<T>, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => timer = setTimeout(() => resolve(fallback), STORE_PING_TIMEOUT_MS));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
