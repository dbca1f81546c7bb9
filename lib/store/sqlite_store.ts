/**
 * The embedded backend: one SQLite file (`spike.db`) through `node:sqlite`,
 * which is built into Deno and needs no native download. This store runs
 * every call on the calling thread, so each commit (and its fsync) blocks
 * that thread's event loop; `sqlite_worker_store.ts` is the same store with
 * the connection in a worker, which Nexus uses. This one stays for tools and
 * tests that want a plain synchronous connection.
 *
 * Durability: WAL journal with `synchronous=FULL`, so a write is on stable
 * storage before `writeSecret` resolves. Concurrency: every secret write is
 * one `BEGIN IMMEDIATE` transaction that checks the stored revision, so the
 * compare-and-swap holds across connections and across processes sharing
 * the file. All work is synchronous inside each method, so two calls on
 * one store never interleave mid-transaction.
 *
 * See `docs/STORAGE.md` for the schema and what is stored in plain text.
 *
 * @module
 */
import { localExclusive } from "./exclusive.ts";
import { settle } from "./settle.ts";
import { openSqliteDatabase } from "./sqlite_database.ts";
import { prepareSqliteFile } from "./sqlite_files.ts";
import type { SqliteStore, SqliteStoreOptions } from "./sqlite_types.ts";

export { SQLITE_FILE_NAME } from "./sqlite_files.ts";
export type { SqliteStore, SqliteStoreOptions } from "./sqlite_types.ts";

/**
 * Opens (creating when missing) `spike.db` in `options.dataDir` and brings
 * its schema up to date. Each call is an independent connection; several
 * stores, in one process or many, may share the file.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const file = prepareSqliteFile(options.dataDir);
  const db = openSqliteDatabase(file, options.busyTimeoutMs);
  let closed = false;
  // Exclusive within this process; Nexus processes sharing one file may each sweep (the compare-and-swap keeps that safe).
  const exclusive = localExclusive();

  function run<T>(work: () => T): Promise<T> {
    return settle(() => {
      if (closed) throw new Error("store is closed");
      return work();
    });
  }

  return {
    file,
    readSecret: (path) => run(() => db.readSecret(path)),
    // SQLite keeps no audit table: only the key version of the options matters here.
    writeSecret: (path, expectedRevision, next, options) =>
      run(() => db.writeSecret(path, expectedRevision, next, { sealedUnder: options?.sealedUnder })),
    writeSecrets: (writes) => run(() => db.writeSecrets(writes)),
    deleteSecret: (path, expectedRevision) => run(() => db.deleteSecret(path, expectedRevision)),
    moveSecret: (from, fromRevision, to, toRevision, next, options) =>
      run(() => db.moveSecret(from, fromRevision, to, toRevision, next, { sealedUnder: options?.sealedUnder })),
    listExpired: (now, limit) => run(() => db.listExpired(now, limit)),
    tryExclusive: (work) => closed ? Promise.reject(new Error("store is closed")) : exclusive(work),
    listSecretPathsPage: (query) => run(() => db.listSecretPathsPage(query)),
    secretPathsSealedBelow: (version, after, limit) => run(() => db.secretPathsSealedBelow(version, after, limit)),
    countSealedBelow: (version) => run(() => db.countSealedBelow(version)),
    keyState: () => run(() => db.keyState()),
    changeKeyState: (expectedRevision, next, options) => run(() => db.changeKeyState(expectedRevision, next, options)),
    listSecretPaths: () => run(() => db.listSecretPaths()),
    upsertPolicy: (policy) => run(() => db.upsertPolicy(policy)),
    getPolicy: (name) => run(() => db.getPolicy(name)),
    deletePolicy: (name) => run(() => db.deletePolicy(name)),
    replacePolicies: (replacements) => run(() => db.replacePolicies(replacements)),
    listPolicies: () => run(() => db.listPolicies()),
    policyGeneration: () => run(() => db.policyGeneration()),
    getMeta: (key) => run(() => db.getMeta(key)),
    putMeta: (key, value) => run(() => db.putMeta(key, value)),
    hasData: () => run(() => db.hasData()),
    counts: () => run(() => db.counts()),
    ping: () => run(() => db.ping()),
    checkpoint: () => run(() => db.checkpoint()),
    close() {
      if (!closed) {
        closed = true;
        db.close();
      }
      return Promise.resolve();
    },
  };
}
