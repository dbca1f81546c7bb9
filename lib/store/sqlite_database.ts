/**
 * One open SQLite connection with every statement the store runs, answering
 * the store calls synchronously. The in-thread store (`sqlite_store.ts`)
 * calls it directly; the worker store runs it inside its worker
 * (`sqlite_worker.ts`), which also commits writes in groups through
 * `writeBatch`. All SQL lives here.
 *
 * Compare-and-swap: a secret write runs in a `BEGIN IMMEDIATE` transaction
 * (or inside one, in a batch), which takes SQLite's single write lock before
 * the revision is read, so no two connections, in one process or many, can
 * both pass the check.
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { pageRange } from "./byte_order.ts";
import { StaleKeyVersionError } from "./errors.ts";
import {
  checkKeyStateChange,
  checkListExpired,
  checkMetaKey,
  checkMetaValue,
  checkPathPage,
  checkPolicyReplacements,
  checkScan,
  checkSealedPolicy,
  checkSealedUnder,
  checkSecretDelete,
  checkSecretMove,
  checkSecretWrite,
  checkSecretWrites,
} from "./record_check.ts";
import {
  type ColumnDecoders,
  keyStateFromRow,
  recordFromJoinArrays,
  storedPolicyFromRow,
  textColumn as text,
} from "./record_rows.ts";
import { type ConnectionOptions, openDatabase } from "./sqlite_connection.ts";
import { migrate } from "./sqlite_schema.ts";
import type { SqliteCall, SqliteCalls, SqliteOutcome, SqliteWriteName } from "./sqlite_types.ts";
import type {
  KeyStateChange,
  Permission,
  PolicyReplacement,
  SecretRecord,
  SecretVersion,
  SecretWrite,
  StoredPolicy,
} from "./types.ts";

/** An open connection answering the store calls. */
export interface SqliteDatabase extends SqliteCalls {
  /**
   * Runs `calls` in one `BEGIN IMMEDIATE` transaction, each in its own
   * savepoint (so one that throws or loses its compare-and-swap changes
   * nothing and leaves the others alone), then commits once: one WAL fsync
   * for the whole group. Resolves one outcome per call, in order, only after
   * `COMMIT` returned; throws, with nothing written, when the transaction as
   * a whole fails (lock timeout, I/O error at commit).
   */
  writeBatch(calls: readonly SqliteCall<SqliteWriteName>[]): SqliteOutcome[];
  /**
   * Rows this connection has inserted, updated or deleted since it opened
   * (SQLite's `total_changes()`): a store compares it before and after a
   * call to learn whether the call wrote anything.
   */
  totalChanges(): number;
  /** Closes the connection (the last one to close checkpoints the WAL). */
  close(): void;
}

type Row = Record<string, unknown>;

function int(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  throw new TypeError("store: unexpected column type");
}

function date(value: unknown): Date {
  return new Date(int(value));
}

function bytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new TypeError("store: unexpected column type");
}

/** How this backend's columns decode (times are integer milliseconds; permissions are JSON text); backups read with them too. */
export const SQLITE_DECODERS: ColumnDecoders = {
  int,
  date,
  bytes,
  text,
  permissions: (value) => JSON.parse(text(value)) as Permission[],
};

const DECODE = SQLITE_DECODERS;
const toPolicy = (row: Row): StoredPolicy => storedPolicyFromRow(row, DECODE);

/** Every column of a policy row, aliased as `storedPolicyFromRow` reads them. */
const POLICY_COLUMNS = `name, key_version, sealed, spiffe_id_pattern, path_pattern, permissions,
  created_ms AS created, updated_ms AS updated`;

/** The key state row, aliased as `keyStateFromRow` reads it; backups read it too. */
export const SQLITE_KEY_STATE_QUERY = `
  SELECT revision, current_version, phase, target_version, target_check, min_write_version, lease_owner,
         lease_until_ms AS lease_until, started_ms AS started, to_reseal
  FROM key_state WHERE id = 1`;

/** A secret's row joined to its versions; its columns are `SECRET_JOIN_COLUMNS` in order (a test checks). */
export const SQLITE_SECRET_READ_QUERY = `
    SELECT s.revision, s.current_version, s.oldest_version, s.max_versions,
           s.created_ms AS created, s.updated_ms AS updated, s.custom_metadata, s.custom_metadata_key_version,
           s.expires_ms AS expires,
           v.version, v.created_ms AS v_created, v.deleted_ms AS v_deleted, v.sealed, v.key_version,
           v.expires_ms AS v_expires
    FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path
    WHERE s.path = ?
    ORDER BY v.version`;

const SQL = {
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  rollback: "ROLLBACK",
  savepoint: "SAVEPOINT write",
  release: "RELEASE write",
  rollbackToSavepoint: "ROLLBACK TO write",
  readSecret: SQLITE_SECRET_READ_QUERY,
  revision: "SELECT revision FROM secrets WHERE path = ?",
  insertSecret: `
    INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_ms, updated_ms,
                         custom_metadata, custom_metadata_key_version, expires_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  updateSecret: `
    UPDATE secrets SET revision = ?, current_version = ?, oldest_version = ?, max_versions = ?,
                       created_ms = ?, updated_ms = ?, custom_metadata = ?, custom_metadata_key_version = ?,
                       expires_ms = ?
    WHERE path = ?`,
  // Versions absent from the new record are pruned; json_each lets one
  // prepared statement take a list of any length.
  pruneVersions: "DELETE FROM secret_versions WHERE path = ? AND version NOT IN (SELECT value FROM json_each(?))",
  // Rewrites a version only when something in it changed, so a put touches
  // one new row instead of all kept ones.
  upsertVersion: `
    INSERT INTO secret_versions (path, version, created_ms, deleted_ms, sealed, key_version, expires_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (path, version) DO UPDATE SET
      created_ms = excluded.created_ms, deleted_ms = excluded.deleted_ms, sealed = excluded.sealed,
      key_version = excluded.key_version, expires_ms = excluded.expires_ms
    WHERE created_ms IS NOT excluded.created_ms OR deleted_ms IS NOT excluded.deleted_ms
       OR sealed IS NOT excluded.sealed OR key_version IS NOT excluded.key_version
       OR expires_ms IS NOT excluded.expires_ms`,
  // Versions go with it (ON DELETE CASCADE); secure_delete zeroes their bytes.
  deleteSecret: "DELETE FROM secrets WHERE path = ? AND revision = ?",
  // Each half stops after `limit` rows of its expiry index, so the work is
  // bounded however much has expired.
  listExpired: `
    SELECT path FROM (SELECT path FROM secrets WHERE expires_ms <= ? LIMIT ?)
    UNION
    SELECT path FROM (SELECT DISTINCT path FROM secret_versions WHERE expires_ms <= ? LIMIT ?)
    LIMIT ?`,
  minWriteVersion: "SELECT min_write_version FROM key_state WHERE id = 1",
  // Both halves walk an index in path order from the cursor (versions: the
  // primary key; custom metadata: the partial index of secrets that have
  // some), and the ordered UNION merges them, stopping after `limit` paths.
  pathsSealedBelow: `
    SELECT path FROM secret_versions WHERE path > ? AND key_version < ?
    UNION
    SELECT path FROM secrets
    WHERE custom_metadata_key_version IS NOT NULL AND path > ? AND custom_metadata_key_version < ?
    ORDER BY path LIMIT ?`,
  countSealedBelow: `
    SELECT (SELECT count(*) FROM secret_versions WHERE key_version < ?) AS secret_versions,
           (SELECT count(*) FROM secrets WHERE custom_metadata_key_version < ?) AS custom_metadata,
           (SELECT count(*) FROM policies WHERE key_version < ?) AS policies`,
  keyState: SQLITE_KEY_STATE_QUERY,
  changeKeyState: `
    UPDATE key_state SET revision = ?, current_version = ?, phase = ?, target_version = ?, target_check = ?,
      min_write_version = ?, lease_owner = ?, lease_until_ms = ?, started_ms = ?, to_reseal = ?
    WHERE id = 1 AND revision = ?`,
  listPaths: "SELECT path FROM secrets ORDER BY path",
  // A page is one range of the primary key index, stopping after `limit`
  // rows: from the prefix (inclusive) or from the cursor (exclusive),
  // whichever is later, up to the prefix's upper bound when it has one.
  // One statement per shape, so the planner always sees a single lower
  // bound (with two, it may start at the earlier and filter its way to the
  // later) and no OR.
  pageFrom: "SELECT path FROM secrets WHERE path >= ? AND path < ? ORDER BY path LIMIT ?",
  pageAfter: "SELECT path FROM secrets WHERE path > ? AND path < ? ORDER BY path LIMIT ?",
  pageFromOpen: "SELECT path FROM secrets WHERE path >= ? ORDER BY path LIMIT ?",
  pageAfterOpen: "SELECT path FROM secrets WHERE path > ? ORDER BY path LIMIT ?",
  // A sealed row replaces a plain one entirely: its plain columns are cleared.
  upsertPolicy: `
    INSERT INTO policies (name, key_version, sealed) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
      key_version = excluded.key_version, sealed = excluded.sealed, spiffe_id_pattern = NULL,
      path_pattern = NULL, permissions = NULL, created_ms = NULL, updated_ms = NULL`,
  replaceSealedPolicy: `
    UPDATE policies SET key_version = ?, sealed = ?
    WHERE name = ? AND key_version = ? AND sealed = ?`,
  deleteSealedPolicy: "DELETE FROM policies WHERE name = ? AND key_version = ? AND sealed = ?",
  deletePlainPolicy: "DELETE FROM policies WHERE name = ? AND sealed IS NULL",
  replacePlainPolicy: `
    UPDATE policies SET key_version = ?, sealed = ?, spiffe_id_pattern = NULL, path_pattern = NULL,
                        permissions = NULL, created_ms = NULL, updated_ms = NULL
    WHERE name = ? AND sealed IS NULL`,
  getPolicy: `SELECT ${POLICY_COLUMNS} FROM policies WHERE name = ?`,
  deletePolicy: "DELETE FROM policies WHERE name = ?",
  listPolicies: `SELECT ${POLICY_COLUMNS} FROM policies ORDER BY name`,
  policyGeneration: "SELECT value FROM policy_generation WHERE id = 1",
  getMeta: "SELECT value FROM meta WHERE key = ?",
  putMeta: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  hasData: `SELECT EXISTS (SELECT 1 FROM secrets) OR EXISTS (SELECT 1 FROM policies)
                OR EXISTS (SELECT 1 FROM meta) AS any_data`,
  counts: "SELECT (SELECT count(*) FROM secrets) AS secrets, (SELECT count(*) FROM policies) AS policies",
  ping: "SELECT version FROM schema_version WHERE id = 1",
  checkpoint: "PRAGMA wal_checkpoint(TRUNCATE)",
  totalChanges: "SELECT total_changes() AS n",
  synchronous: "PRAGMA synchronous",
} as const;

type Statements = { readonly [K in keyof typeof SQL]: StatementSync };

/** `StatementSync` with `setReturnArrays` (Deno has it; its bundled Node types do not list it yet). */
type ArrayRowsStatement = StatementSync & { setReturnArrays(enabled: boolean): void };

/**
 * The column values of a key state change, in the order of the
 * `changeKeyState` statement (after its revision); a backup's import writes
 * the row in the same order.
 */
export function keyStateParams(next: KeyStateChange): SQLInputValue[] {
  return [
    next.currentVersion,
    next.phase,
    next.targetVersion,
    next.targetCheck,
    next.minWriteVersion,
    next.leaseOwner,
    next.leaseUntil?.getTime() ?? null,
    next.startedAt?.getTime() ?? null,
    next.toReseal,
  ];
}

/**
 * The column values of a secret row after its path, in the order of the
 * `insertSecret` statement (and of `updateSecret`, whose path comes last);
 * a backup's import inserts rows in the same order.
 */
export function secretRowParams(revision: number, record: SecretRecord): SQLInputValue[] {
  return [
    revision,
    record.currentVersion,
    record.oldestVersion,
    record.maxVersions,
    record.createdTime.getTime(),
    record.updatedTime.getTime(),
    record.customMetadata?.sealed ?? null,
    record.customMetadata?.keyVersion ?? null,
    record.expiresAt?.getTime() ?? null,
  ];
}

/** The column values of a version row of `path`, in the order of the `upsertVersion` statement (and a backup's insert). */
export function versionRowParams(path: string, v: SecretVersion): SQLInputValue[] {
  return [
    path,
    v.version,
    v.createdTime.getTime(),
    v.deletedTime?.getTime() ?? null,
    v.sealed,
    v.keyVersion,
    v.expiresAt?.getTime() ?? null,
  ];
}

/**
 * Opens `file` (which must exist; see `prepareSqliteFile`) with `options`
 * (a number: the busy timeout), brings its schema up to date and prepares
 * every statement once.
 */
export function openSqliteDatabase(file: string, options: ConnectionOptions | number = {}): SqliteDatabase {
  const db = openDatabase(file, options);
  let st: Statements;
  try {
    migrate(db);
    st = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]),
    ) as unknown as Statements;
    // Rows as arrays: the hot read skips building an object per row (record_rows.ts).
    (st.readSecret as ArrayRowsStatement).setReturnArrays(true);
  } catch (error) {
    db.close();
    throw error;
  }
  return createCalls(db, st);
}

function createCalls(db: DatabaseSync, st: Statements): SqliteDatabase {
  function inTransaction<T>(work: () => T): T {
    st.begin.run();
    try {
      const result = work();
      st.commit.run();
      return result;
    } catch (error) {
      if (db.isTransaction) st.rollback.run();
      throw error;
    }
  }

  /**
   * Refuses new data sealed under a version below the key state's minimum.
   * Called inside the write transaction, so a key state change (which takes
   * the same single write lock) is either wholly before or wholly after it.
   */
  function gate(sealedUnder: number | undefined): void {
    if (sealedUnder === undefined) return;
    const min = int((st.minWriteVersion.get() as Row).min_write_version);
    if (sealedUnder < min) throw new StaleKeyVersionError(sealedUnder, min);
  }

  function withinTransaction<T>(work: () => T): T {
    return db.isTransaction ? work() : inTransaction(work);
  }

  /** The compare-and-swap itself; the caller holds the write lock (an open `BEGIN IMMEDIATE`). */
  function applySecretWrite(path: string, expectedRevision: number, next: SecretRecord): boolean {
    checkSecretWrite(path, expectedRevision, next);
    const row = st.revision.get(path) as Row | undefined;
    if ((row ? int(row.revision) : 0) !== expectedRevision) return false;
    const fields = secretRowParams(expectedRevision + 1, next);
    if (row) st.updateSecret.run(...fields, path);
    else st.insertSecret.run(path, ...fields);
    st.pruneVersions.run(path, JSON.stringify([...next.versions.keys()]));
    for (const v of next.versions.values()) st.upsertVersion.run(...versionRowParams(path, v));
    return true;
  }

  /**
   * A move inside the caller's transaction: nothing is written unless both
   * revisions match, so a refused move leaves both paths as they were.
   */
  function applySecretMove(from: string, fromRevision: number, to: string, toRevision: number, next: SecretRecord) {
    checkSecretMove(from, fromRevision, to, toRevision, next);
    const source = st.revision.get(from) as Row | undefined;
    if (!source || int(source.revision) !== fromRevision) return false;
    const target = st.revision.get(to) as Row | undefined;
    if ((target ? int(target.revision) : 0) !== toRevision) return false;
    st.deleteSecret.run(from, fromRevision);
    return applySecretWrite(to, toRevision, next);
  }

  function applyPolicyReplacement({ expected, next }: PolicyReplacement): boolean {
    if (next === null) {
      const deleted = expected.kind === "sealed"
        ? st.deleteSealedPolicy.run(expected.name, expected.keyVersion, expected.sealed)
        : st.deletePlainPolicy.run(expected.name);
      return Number(deleted.changes) > 0;
    }
    const result = expected.kind === "sealed"
      ? st.replaceSealedPolicy.run(next.keyVersion, next.sealed, next.name, expected.keyVersion, expected.sealed)
      : st.replacePlainPolicy.run(next.keyVersion, next.sealed, next.name);
    return Number(result.changes) > 0;
  }

  const calls: SqliteCalls = {
    readSecret(path) {
      // One statement is one consistent snapshot, even with writers in other processes.
      return recordFromJoinArrays(st.readSecret.all(path) as unknown as unknown[][], DECODE);
    },

    // SQLite keeps no audit table: an audit row in the options is ignored.
    writeSecret(path, expectedRevision, next, options = {}) {
      checkSealedUnder(options.sealedUnder);
      return withinTransaction(() => {
        gate(options.sealedUnder);
        return applySecretWrite(path, expectedRevision, next);
      });
    },

    moveSecret(from, fromRevision, to, toRevision, next, options = {}) {
      checkSealedUnder(options.sealedUnder);
      return withinTransaction(() => {
        gate(options.sealedUnder);
        return applySecretMove(from, fromRevision, to, toRevision, next);
      });
    },

    deleteSecret(path, expectedRevision) {
      checkSecretDelete(path, expectedRevision);
      return Number(st.deleteSecret.run(path, expectedRevision).changes) > 0;
    },

    listExpired(now, limit) {
      checkListExpired(now, limit);
      const ms = now.getTime();
      return (st.listExpired.all(ms, limit, ms, limit, limit) as Row[]).map((row) => text(row.path));
    },

    writeSecrets(writes) {
      checkSecretWrites(writes);
      return withinTransaction(() => {
        for (const write of writes) gate(write.sealedUnder);
        return writes.map((w: SecretWrite) => applySecretWrite(w.path, w.expectedRevision, w.next));
      });
    },

    secretPathsSealedBelow(version, after, limit) {
      checkScan(version, after, limit);
      return (st.pathsSealedBelow.all(after, version, after, version, limit) as Row[]).map((row) => text(row.path));
    },

    countSealedBelow(version) {
      checkScan(version, "", 1);
      const row = st.countSealedBelow.get(version, version, version) as Row;
      return {
        secretVersions: int(row.secret_versions),
        customMetadata: int(row.custom_metadata),
        policies: int(row.policies),
      };
    },

    keyState: () => keyStateFromRow(st.keyState.get() as Row, DECODE),

    changeKeyState(expectedRevision, next, options = {}) {
      checkKeyStateChange(expectedRevision, next);
      return withinTransaction(() => {
        if (options.requireNoneBelow !== undefined) {
          const left = calls.countSealedBelow(options.requireNoneBelow);
          if (left.secretVersions > 0 || left.customMetadata > 0 || left.policies > 0) return false;
        }
        const params = [expectedRevision + 1, ...keyStateParams(next), expectedRevision];
        return Number(st.changeKeyState.run(...params).changes) > 0;
      });
    },

    listSecretPaths: () => (st.listPaths.all() as Row[]).map((row) => text(row.path)),

    listSecretPathsPage(query) {
      checkPathPage(query);
      const { from, inclusive, upper } = pageRange(query);
      const rows = upper === undefined
        ? (inclusive ? st.pageFromOpen : st.pageAfterOpen).all(from, query.limit)
        : (inclusive ? st.pageFrom : st.pageAfter).all(from, upper, query.limit);
      return (rows as Row[]).map((row) => text(row.path));
    },

    upsertPolicy(policy) {
      checkSealedPolicy(policy);
      withinTransaction(() => {
        gate(policy.keyVersion);
        st.upsertPolicy.run(policy.name, policy.keyVersion, policy.sealed);
      });
    },

    replacePolicies(replacements) {
      checkPolicyReplacements(replacements);
      // Several rows change together: one transaction (or the caller's, in a batch).
      return withinTransaction(() => {
        for (const { next } of replacements) if (next) gate(next.keyVersion);
        return replacements.map(applyPolicyReplacement);
      });
    },

    getPolicy(name) {
      const row = st.getPolicy.get(name) as Row | undefined;
      return row && toPolicy(row);
    },

    deletePolicy: (name) => Number(st.deletePolicy.run(name).changes) > 0,

    listPolicies: () => (st.listPolicies.all() as Row[]).map(toPolicy),

    policyGeneration: () => int((st.policyGeneration.get() as Row).value),

    getMeta(key) {
      const row = st.getMeta.get(key) as Row | undefined;
      return row && bytes(row.value);
    },

    putMeta(key, value) {
      checkMetaKey(key);
      checkMetaValue(value);
      st.putMeta.run(key, value);
    },

    hasData: () => int((st.hasData.get() as Row).any_data) === 1,

    counts() {
      const row = st.counts.get() as Row;
      return { secrets: int(row.secrets), policies: int(row.policies) };
    },

    ping() {
      if (!st.ping.get()) throw new Error("store: schema version missing");
    },

    checkpoint: () => int((st.checkpoint.get() as Row).busy) === 0,

    synchronousPragma: () => int((st.synchronous.get() as Row).synchronous),
  };

  /** A write call without a transaction of its own, for use inside a batch. */
  function applyWrite(call: SqliteCall<SqliteWriteName>): unknown {
    switch (call.name) {
      case "writeSecret":
        return calls.writeSecret(...call.args);
      case "deleteSecret":
        return calls.deleteSecret(...call.args);
      case "moveSecret":
        return calls.moveSecret(...call.args);
      case "upsertPolicy":
        return calls.upsertPolicy(...call.args);
      case "replacePolicies":
        return calls.replacePolicies(...call.args);
      case "writeSecrets":
        return calls.writeSecrets(...call.args);
      case "changeKeyState":
        return calls.changeKeyState(...call.args);
      case "deletePolicy":
        return calls.deletePolicy(...call.args);
      case "putMeta":
        return calls.putMeta(...call.args);
    }
  }

  return {
    ...calls,

    writeBatch(batch) {
      return inTransaction(() =>
        batch.map((call): SqliteOutcome => {
          st.savepoint.run();
          try {
            const value = applyWrite(call);
            st.release.run();
            return { ok: true, value };
          } catch (error) {
            // Some errors (I/O, out of memory) make SQLite roll back the whole
            // transaction; then the writes before this one are gone too, and
            // the batch must fail as a whole rather than report them written.
            if (!db.isTransaction) throw error;
            st.rollbackToSavepoint.run();
            st.release.run();
            return { ok: false, error };
          }
        })
      );
    },

    totalChanges: () => int((st.totalChanges.get() as Row).n),

    close: () => db.close(),
  };
}
