/**
 * A {@linkcode Store} that times every call and notes its failures, for
 * Nexus's `/metrics`, and otherwise passes everything through unchanged.
 * The operation name is the only label: never a path or any other argument.
 *
 * @module
 */
import type { Store } from "./types.ts";

/**
 * The calls that are measured, as label values. (The audit table's inserts
 * are not: they are the audit trail's own traffic, counted by its metrics.)
 */
export const STORE_OPERATIONS = Object.freeze(
  {
    readSecret: "read_secret",
    writeSecret: "write_secret",
    // The rotation's batches of re-sealed records.
    writeSecrets: "write_secrets",
    deleteSecret: "delete_secret",
    moveSecret: "move_secret",
    listExpired: "list_expired",
    // Spans the work it guards (one expiry sweep pass), whose own calls are measured too.
    tryExclusive: "try_exclusive",
    listSecretPaths: "list_secret_paths",
    listSecretPathsPage: "list_secret_paths_page",
    secretPathsSealedBelow: "secret_paths_sealed_below",
    countSealedBelow: "count_sealed_below",
    keyState: "key_state",
    changeKeyState: "change_key_state",
    upsertPolicy: "upsert_policy",
    getPolicy: "get_policy",
    deletePolicy: "delete_policy",
    listPolicies: "list_policies",
    replacePolicies: "replace_policies",
    policyGeneration: "policy_generation",
    getMeta: "get_meta",
    putMeta: "put_meta",
    hasData: "has_data",
    counts: "counts",
    ping: "ping",
  } as const satisfies Record<Exclude<keyof Store, "close" | "insertAuditRows">, string>,
);

/** A measured operation's label value. */
export type StoreOperation = (typeof STORE_OPERATIONS)[keyof typeof STORE_OPERATIONS];

/** Where measurements go. */
export interface StoreObserver {
  /** One finished call: how long it took and whether it resolved. */
  storeOperation(operation: StoreOperation, seconds: number, ok: boolean): void;
}

/**
 * Wraps `store` so every call is reported to `observer`. A backend's own
 * extras (SQLite's `checkpoint`, the worker store's `stats`) are passed
 * through unmeasured, so the wrapper has the same shape as what it wraps.
 */
export function measureStore<S extends Store>(store: S, observer: StoreObserver): S {
  const measured = {} as Record<string, unknown>;
  for (const [key, value] of Object.entries(store)) {
    measured[key] = typeof value === "function" ? value.bind(store) : value;
  }
  for (
    const [method, operation] of Object.entries(STORE_OPERATIONS) as [keyof typeof STORE_OPERATIONS, StoreOperation][]
  ) {
    const call = (store[method] as (...args: unknown[]) => Promise<unknown>).bind(store);
    measured[method] = async (...args: unknown[]) => {
      const started = performance.now();
      let ok = false;
      try {
        const result = await call(...args);
        ok = true;
        return result;
      } finally {
        observer.storeOperation(operation, (performance.now() - started) / 1000, ok);
      }
    };
  }
  measured.close = () => store.close();
  return measured as unknown as S;
}
