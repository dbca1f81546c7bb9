/**
 * The embedded default backend: one SQLite file (`spike.db`) through
 * `node:sqlite`, which is built into Deno and needs no native download.
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
import type { SQLInputValue, StatementSync } from "node:sqlite";
import { join } from "node:path";
import { checkMetaKey, checkMetaValue, checkPolicy, checkSecretWrite } from "./record_check.ts";
import { settle } from "./settle.ts";
import { openDatabase } from "./sqlite_connection.ts";
import { migrate } from "./sqlite_schema.ts";
import type { Permission, PolicyRecord, SecretRecord, SecretVersion, Store } from "./types.ts";

/** Name of the database file inside the data directory. */
export const SQLITE_FILE_NAME = "spike.db";

/** Options of `createSqliteStore`. */
export interface SqliteStoreOptions {
  /** Directory holding `spike.db`; created with mode 0700 when missing. */
  readonly dataDir: string;
  /** How long a writer waits for another connection's lock, in ms (default 5000). */
  readonly busyTimeoutMs?: number;
}

/** The SQLite store, with maintenance calls beyond `Store`. */
export interface SqliteStore extends Store {
  /** Full path of the database file. */
  readonly file: string;
  /**
   * Copies the WAL into the database file and truncates the WAL to zero
   * bytes, so page images of pruned versions left in the WAL are gone too.
   * Resolves `false` when another connection's reader kept it from
   * completing (nothing is lost; try again later).
   */
  checkpoint(): Promise<boolean>;
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

function text(value: unknown): string {
  if (typeof value === "string") return value;
  throw new TypeError("store: unexpected column type");
}

function toPolicy(row: Row): PolicyRecord {
  return {
    name: text(row.name),
    spiffeIdPattern: text(row.spiffe_id_pattern),
    pathPattern: text(row.path_pattern),
    permissions: JSON.parse(text(row.permissions)) as Permission[],
    createdAt: date(row.created_ms),
    updatedAt: date(row.updated_ms),
  };
}

/** Creates the data directory (0700) and database file (0600) when missing; tightens a loose file mode. */
function prepareFiles(dataDir: string, file: string): void {
  const posix = Deno.build.os !== "windows";
  try {
    Deno.statSync(dataDir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    Deno.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // mkdir's mode passes through the umask; set it exactly.
    if (posix) Deno.chmodSync(dataDir, 0o700);
  }
  try {
    Deno.openSync(file, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  // SQLite gives the -wal and -shm files the database file's mode, so this
  // one check covers all three.
  if (posix && ((Deno.statSync(file).mode ?? 0) & 0o077) !== 0) Deno.chmodSync(file, 0o600);
}

const SQL = {
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  rollback: "ROLLBACK",
  readSecret: `
    SELECT s.revision, s.current_version, s.oldest_version, s.max_versions, s.created_ms, s.updated_ms,
           v.version, v.created_ms AS v_created_ms, v.deleted_ms AS v_deleted_ms, v.sealed
    FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path
    WHERE s.path = ?
    ORDER BY v.version`,
  revision: "SELECT revision FROM secrets WHERE path = ?",
  insertSecret: `
    INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_ms, updated_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)`,
  updateSecret: `
    UPDATE secrets SET revision = ?, current_version = ?, oldest_version = ?, max_versions = ?,
                       created_ms = ?, updated_ms = ?
    WHERE path = ?`,
  // Versions absent from the new record are pruned; json_each lets one
  // prepared statement take a list of any length.
  pruneVersions: "DELETE FROM secret_versions WHERE path = ? AND version NOT IN (SELECT value FROM json_each(?))",
  // Rewrites a version only when something in it changed, so a put touches
  // one new row instead of all kept ones.
  upsertVersion: `
    INSERT INTO secret_versions (path, version, created_ms, deleted_ms, sealed) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (path, version) DO UPDATE SET
      created_ms = excluded.created_ms, deleted_ms = excluded.deleted_ms, sealed = excluded.sealed
    WHERE created_ms IS NOT excluded.created_ms OR deleted_ms IS NOT excluded.deleted_ms
       OR sealed IS NOT excluded.sealed`,
  listPaths: "SELECT path FROM secrets ORDER BY path",
  upsertPolicy: `
    INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
      spiffe_id_pattern = excluded.spiffe_id_pattern, path_pattern = excluded.path_pattern,
      permissions = excluded.permissions, updated_ms = excluded.updated_ms
    RETURNING name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms`,
  getPolicy:
    "SELECT name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms FROM policies WHERE name = ?",
  deletePolicy: "DELETE FROM policies WHERE name = ?",
  listPolicies:
    "SELECT name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms FROM policies ORDER BY name",
  getMeta: "SELECT value FROM meta WHERE key = ?",
  putMeta: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  hasData: `SELECT EXISTS (SELECT 1 FROM secrets) OR EXISTS (SELECT 1 FROM policies)
                OR EXISTS (SELECT 1 FROM meta) AS any_data`,
  ping: "SELECT version FROM schema_version WHERE id = 1",
  checkpoint: "PRAGMA wal_checkpoint(TRUNCATE)",
} as const;

type Statements = { readonly [K in keyof typeof SQL]: StatementSync };

/**
 * Opens (creating when missing) `spike.db` in `options.dataDir` and brings
 * its schema up to date. Each call is an independent connection; several
 * stores, in one process or many, may share the file.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const file = join(options.dataDir, SQLITE_FILE_NAME);
  prepareFiles(options.dataDir, file);
  const db = openDatabase(file, options.busyTimeoutMs);
  let statements: Statements;
  try {
    migrate(db);
    statements = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]),
    ) as unknown as Statements;
  } catch (error) {
    db.close();
    throw error;
  }
  const st = statements;
  let closed = false;

  function run<T>(work: () => T): Promise<T> {
    return settle(() => {
      if (closed) throw new Error("store is closed");
      return work();
    });
  }

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

  function readSecret(path: string): SecretRecord | undefined {
    // One statement is one consistent snapshot, even with writers in other processes.
    const rows = st.readSecret.all(path) as Row[];
    const first = rows[0];
    if (!first) return undefined;
    const versions = new Map<number, SecretVersion>();
    for (const row of rows) {
      if (row.version === null) continue; // a record with no versions left
      const version = int(row.version);
      versions.set(version, {
        version,
        createdTime: date(row.v_created_ms),
        deletedTime: row.v_deleted_ms === null ? null : date(row.v_deleted_ms),
        sealed: bytes(row.sealed),
      });
    }
    return {
      revision: int(first.revision),
      currentVersion: int(first.current_version),
      oldestVersion: int(first.oldest_version),
      maxVersions: int(first.max_versions),
      createdTime: date(first.created_ms),
      updatedTime: date(first.updated_ms),
      versions,
    };
  }

  function writeSecret(path: string, expectedRevision: number, next: SecretRecord): boolean {
    checkSecretWrite(path, expectedRevision, next);
    return inTransaction(() => {
      const row = st.revision.get(path) as Row | undefined;
      if ((row ? int(row.revision) : 0) !== expectedRevision) return false;
      const fields: SQLInputValue[] = [
        expectedRevision + 1,
        next.currentVersion,
        next.oldestVersion,
        next.maxVersions,
        next.createdTime.getTime(),
        next.updatedTime.getTime(),
      ];
      if (row) st.updateSecret.run(...fields, path);
      else st.insertSecret.run(path, ...fields);
      st.pruneVersions.run(path, JSON.stringify([...next.versions.keys()]));
      for (const v of next.versions.values()) {
        st.upsertVersion.run(
          path,
          v.version,
          v.createdTime.getTime(),
          v.deletedTime === null ? null : v.deletedTime.getTime(),
          v.sealed,
        );
      }
      return true;
    });
  }

  return {
    file,

    readSecret: (path) => run(() => readSecret(path)),

    writeSecret: (path, expectedRevision, next) => run(() => writeSecret(path, expectedRevision, next)),

    listSecretPaths: () => run(() => (st.listPaths.all() as Row[]).map((row) => text(row.path))),

    upsertPolicy: (policy) =>
      run(() => {
        checkPolicy(policy);
        const row = st.upsertPolicy.get(
          policy.name,
          policy.spiffeIdPattern,
          policy.pathPattern,
          JSON.stringify(policy.permissions),
          policy.createdAt.getTime(),
          policy.updatedAt.getTime(),
        ) as Row;
        return toPolicy(row);
      }),

    getPolicy: (name) =>
      run(() => {
        const row = st.getPolicy.get(name) as Row | undefined;
        return row && toPolicy(row);
      }),

    deletePolicy: (name) => run(() => Number(st.deletePolicy.run(name).changes) > 0),

    listPolicies: () => run(() => (st.listPolicies.all() as Row[]).map(toPolicy)),

    getMeta: (key) =>
      run(() => {
        const row = st.getMeta.get(key) as Row | undefined;
        return row && bytes(row.value);
      }),

    putMeta: (key, value) =>
      run(() => {
        checkMetaKey(key);
        checkMetaValue(value);
        st.putMeta.run(key, value);
      }),

    hasData: () => run(() => int((st.hasData.get() as Row).any_data) === 1),

    ping: () =>
      run(() => {
        if (!st.ping.get()) throw new Error("store: schema version missing");
      }),

    checkpoint: () =>
      run(() => {
        const row = st.checkpoint.get() as Row;
        return int(row.busy) === 0;
      }),

    close() {
      if (!closed) {
        closed = true;
        db.close();
      }
      return Promise.resolve();
    },
  };
}
