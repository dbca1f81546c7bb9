/**
 * The store as a request that must announce its changes sees it (fail-closed
 * or audit table mode): every write first calls the request's
 * `beforeChange`, which writes the intent record (or refuses with a 503, and
 * then nothing is written), and hands the intent's table row to the
 * backend, which inserts it in the same transaction as the change. A backend
 * that refuses that row rolls the change back; the client gets a 503.
 *
 * Reads pass straight through. Every method is spelled out (no proxy), so
 * a method added to `Store` fails to compile here until someone decides
 * whether it changes state.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import { AuditRowRefusedError } from "../store/audit_row.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/types.ts";
import type { AuditNote, ChangeAudit } from "./audit.ts";
import type { NexusDeps } from "./deps.ts";

/** `deps` with the store wrapped when the request must announce changes; `deps` itself otherwise. */
export function withAuditedChanges(deps: NexusDeps, note: AuditNote): NexusDeps {
  const beforeChange = note.beforeChange;
  if (!beforeChange || !deps.store) return deps;
  return { ...deps, store: auditedStore(deps.store, beforeChange, deps.log) };
}

/** Wraps `store` so that each write announces itself through `beforeChange` first. */
export function auditedStore(store: Store, beforeChange: () => Promise<ChangeAudit>, log: Logger): Store {
  async function change<T>(
    write: (row: ChangeAudit["row"]) => Promise<T>,
    committed: (result: T) => boolean,
  ): Promise<T> {
    const audit = await beforeChange();
    let result: T;
    try {
      result = await write(audit.row);
    } catch (error) {
      if (error instanceof AuditRowRefusedError) {
        log.error("request refused: the database refused its audit row", { error: error.message });
        throw new ApiError("state_not_ready", error.message);
      }
      throw error;
    }
    if (audit.row && committed(result)) audit.carried();
    return result;
  }
  return {
    readSecret: (path) => store.readSecret(path),
    writeSecret: (path, expected, next, options) =>
      change((row) => store.writeSecret(path, expected, next, { ...options, audit: row }), (swapped) => swapped),
    // Several records in one commit (a rotation's batch): announced, with no single row to carry.
    writeSecrets: (writes) => change(() => store.writeSecrets(writes), () => false),
    deleteSecret: (path, expected) =>
      change((row) => store.deleteSecret(path, expected, { audit: row }), (removed) => removed),
    moveSecret: (from, fromRevision, to, toRevision, next, options) =>
      change(
        (row) => store.moveSecret(from, fromRevision, to, toRevision, next, { ...options, audit: row }),
        (moved) => moved,
      ),
    listExpired: (now, limit) => store.listExpired(now, limit),
    // A lock, not a change: what runs under it goes through this store's writes.
    tryExclusive: (work) => store.tryExclusive(work),
    listSecretPaths: () => store.listSecretPaths(),
    listSecretPathsPage: (query) => store.listSecretPathsPage(query),
    secretPathsSealedBelow: (version, after, limit) => store.secretPathsSealedBelow(version, after, limit),
    countSealedBelow: (version) => store.countSealedBelow(version),
    keyState: () => store.keyState(),
    // The key state row has no audit row of its own; the intent is stored on its own.
    changeKeyState: (expected, next, options) =>
      change(() => store.changeKeyState(expected, next, options), () => false),
    upsertPolicy: (policy) => change((row) => store.upsertPolicy(policy, { audit: row }), () => true),
    getPolicy: (name) => store.getPolicy(name),
    deletePolicy: (name) => change((row) => store.deletePolicy(name, { audit: row }), (deleted) => deleted),
    listPolicies: () => store.listPolicies(),
    // Sealing an older store's plain rows when a restored key arrives: several rows, one commit.
    replacePolicies: (replacements) => change(() => store.replacePolicies(replacements), () => false),
    policyGeneration: () => store.policyGeneration(),
    getMeta: (key) => store.getMeta(key),
    // No table row goes with a meta value; the intent is stored on its own.
    putMeta: (key, value) => change(() => store.putMeta(key, value), () => false),
    hasData: () => store.hasData(),
    counts: () => store.counts(),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
