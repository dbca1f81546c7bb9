/**
 * Backups of the SQLite store, safe while Nexus writes to the same file:
 *
 * - a snapshot reads everything inside one read transaction on a read-only
 *   connection; in WAL mode that sees one committed state and never blocks
 *   a writer (it only keeps the WAL from being checkpointed past it until
 *   it ends);
 * - SQLite's online backup API copies the database file as of one instant
 *   (all pages in one step);
 * - an import fills an empty store inside one `BEGIN IMMEDIATE`
 *   transaction, keeping revisions and times exactly.
 *
 * @module
 */
import { backup, DatabaseSync } from "node:sqlite";
import { type BackupCounts, BackupError, type BackupItem, describeCounts } from "../backup/format.ts";
import type { StoreImport, StoreSnapshot } from "../backup/snapshot.ts";
import { keyCheckMetaKey } from "../nexus/key_check.ts";
import { type BackupQueryDialect, policiesQuery, secretItems, secretsQuery } from "./backup_rows.ts";
import { INITIAL_KEY_STATE } from "./key_state.ts";
import {
  checkKeyStateChange,
  checkMetaKey,
  checkMetaValue,
  checkPolicy,
  checkSealedPolicy,
  checkSecretWrite,
} from "./record_check.ts";
import { keyStateFromRow, storedPolicyFromRow } from "./record_rows.ts";
import { openDatabase } from "./sqlite_connection.ts";
import {
  keyStateParams,
  secretRowParams,
  SQLITE_DECODERS,
  SQLITE_KEY_STATE_QUERY,
  versionRowParams,
} from "./sqlite_database.ts";
import { prepareSqliteFile } from "./sqlite_files.ts";
import { migrate, SCHEMA_VERSION } from "./sqlite_schema.ts";
import type { KeyState } from "./types.ts";

type Row = Record<string, unknown>;

/** How long a backup waits for another connection's lock, in ms. */
const BUSY_TIMEOUT_MS = 30_000;

const SQL = {
  schemaVersion: "SELECT version FROM schema_version WHERE id = 1",
  counts: `SELECT (SELECT count(*) FROM secrets) AS secrets, (SELECT count(*) FROM secret_versions) AS versions,
                  (SELECT count(*) FROM policies) AS policies, (SELECT count(*) FROM meta) AS meta`,
  keyCheck: "SELECT value FROM meta WHERE key = ?",
  meta: "SELECT key, value FROM meta ORDER BY key",
  // Columns in the order of `secretRowParams` and `versionRowParams`.
  insertSecret: `
    INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_ms, updated_ms,
                         custom_metadata, custom_metadata_key_version, expires_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  insertVersion: `
    INSERT INTO secret_versions (path, version, created_ms, deleted_ms, sealed, key_version, expires_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)`,
  insertSealedPolicy: "INSERT INTO policies (name, key_version, sealed) VALUES (?, ?, ?)",
  insertPlainPolicy: `
    INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms)
    VALUES (?, ?, ?, ?, ?, ?)`,
  insertMeta: "INSERT INTO meta (key, value) VALUES (?, ?)",
  // Columns in the order of `keyStateParams`.
  writeKeyState: `
    UPDATE key_state SET revision = ?, current_version = ?, phase = ?, target_version = ?, target_check = ?,
      min_write_version = ?, lease_owner = ?, lease_until_ms = ?, started_ms = ?, to_reseal = ?
    WHERE id = 1`,
} as const;

/** The schema step that added root key versions (columns and the key state row). */
const KEY_VERSIONS_SCHEMA = 6;
/** This backend's columns and schema steps for the backup's queries. */
const SQLITE_BACKUP: BackupQueryDialect = {
  time: "ms",
  steps: { customMetadata: 3, expiry: 4, sealedPolicies: 5, keyVersions: KEY_VERSIONS_SCHEMA },
};

/**
 * Runs `use` with a snapshot of the spike database `file`, opened read-only
 * (it must exist and hold spike's schema, at most this build's version).
 */
export async function withSqliteSnapshot<T>(file: string, use: (snapshot: StoreSnapshot) => Promise<T>): Promise<T> {
  const db = openReadOnly(file);
  try {
    // The first read of a deferred transaction fixes the snapshot every later read sees.
    db.exec("BEGIN");
    const schemaVersion = readSchemaVersion(db, file);
    const keyState = readKeyState(db, schemaVersion);
    const snapshot: StoreSnapshot = {
      store: "sqlite",
      schemaVersion,
      counts: readCounts(db),
      keyState,
      keyCheck: readKeyCheck(db, keyState),
      items: () => snapshotItems(db, schemaVersion, keyState),
    };
    return await use(snapshot);
  } finally {
    if (db.isTransaction) db.exec("COMMIT");
    db.close();
  }
}

/**
 * Copies the spike database `file` as of one instant into `out` with
 * SQLite's online backup API, all pages in one step: one read transaction
 * on the source, so the copy is consistent and a writer cannot make it
 * start over. (`VACUUM INTO` would also do, but it attaches a database,
 * which Deno allows only with every permission.) `out` must not exist; it
 * is created with mode 0600 and switched to a rollback journal, so it is
 * one self-contained file.
 */
export async function copySqliteInto(file: string, out: string): Promise<void> {
  const db = openReadOnly(file);
  try {
    readSchemaVersion(db, file);
    await Deno.writeFile(out, new Uint8Array(), { createNew: true, mode: 0o600 });
    await backup(db, out, { rate: -1 });
  } finally {
    db.close();
  }
  const copy = new DatabaseSync(out);
  try {
    copy.exec("PRAGMA journal_mode = DELETE");
  } finally {
    copy.close();
  }
}

/**
 * Fills the SQLite store in `dataDir` (created when missing, schema brought
 * up to date) from `use`'s items in one transaction; refuses a store that
 * holds any secret, policy or meta value.
 */
export async function importIntoSqlite(dataDir: string, use: (target: StoreImport) => Promise<void>): Promise<void> {
  const db = openDatabase(prepareSqliteFile(dataDir), BUSY_TIMEOUT_MS);
  try {
    migrate(db);
    db.exec("BEGIN IMMEDIATE");
    try {
      const before = readCounts(db);
      if (before.secrets + before.policies + before.meta > 0) {
        throw new BackupError(
          `the target store in ${dataDir} is not empty (${describeCounts(before)}); ` +
            "restore only into an empty store",
        );
      }
      const st = {
        secret: db.prepare(SQL.insertSecret),
        version: db.prepare(SQL.insertVersion),
        sealedPolicy: db.prepare(SQL.insertSealedPolicy),
        plainPolicy: db.prepare(SQL.insertPlainPolicy),
        meta: db.prepare(SQL.insertMeta),
        keyState: db.prepare(SQL.writeKeyState),
      };
      const writeKeyState = (state: KeyState) => {
        const { revision, ...change } = state;
        checkKeyStateChange(revision, change);
        st.keyState.run(revision, ...keyStateParams(change));
      };
      // A backup without a key state (format 1 and 2) is all under version 1; one with it replaces this.
      writeKeyState(INITIAL_KEY_STATE);
      let keyStateSeen = false;
      const add = (item: BackupItem): void => {
        switch (item.kind) {
          case "secret": {
            const r = item.record;
            checkSecretWrite(item.path, r.revision - 1, r);
            st.secret.run(item.path, ...secretRowParams(r.revision, r));
            for (const v of r.versions.values()) st.version.run(...versionRowParams(item.path, v));
            return;
          }
          case "policy": {
            const row = item.policy;
            if (row.kind === "sealed") {
              checkSealedPolicy(row);
              st.sealedPolicy.run(row.name, row.keyVersion, row.sealed);
              return;
            }
            const p = row.record;
            if (p) checkPolicy(p);
            st.plainPolicy.run(
              row.name,
              p?.spiffeIdPattern ?? null,
              p?.pathPattern ?? null,
              p ? JSON.stringify(p.permissions) : null,
              p?.createdAt.getTime() ?? null,
              p?.updatedAt.getTime() ?? null,
            );
            return;
          }
          case "meta":
            checkMetaKey(item.key);
            checkMetaValue(item.value);
            st.meta.run(item.key, item.value);
            return;
          case "key-state":
            if (keyStateSeen) throw new BackupError("the backup holds the key state twice");
            keyStateSeen = true;
            writeKeyState(item.state);
            return;
        }
      };
      await use({
        add: (item) => {
          try {
            add(item);
            return Promise.resolve();
          } catch (error) {
            return Promise.reject(duplicateOr(error, item));
          }
        },
        counts: () => Promise.resolve(readCounts(db)),
        keyState: () => Promise.resolve(readKeyState(db, SCHEMA_VERSION)),
        keyCheck: () => Promise.resolve(readKeyCheck(db, readKeyState(db, SCHEMA_VERSION))),
      });
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  } finally {
    db.close();
  }
}

function openReadOnly(file: string): DatabaseSync {
  try {
    if (!Deno.statSync(file).isFile) throw new BackupError(`${file} is not a file`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new BackupError(`no database at ${file}`);
    throw error;
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { readOnly: true });
  } catch (error) {
    throw new BackupError(`cannot open ${file}: ${(error as Error).message}`);
  }
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

function readSchemaVersion(db: DatabaseSync, file: string): number {
  let row: Row | undefined;
  try {
    row = db.prepare(SQL.schemaVersion).get() as Row | undefined;
  } catch (error) {
    const message = (error as Error).message;
    if (/no such table|file is not a database/.test(message)) {
      throw new BackupError(`${file} is not a spike database (${message})`);
    }
    throw error;
  }
  if (!row) throw new BackupError(`${file} is not a spike database (no schema version)`);
  const version = SQLITE_DECODERS.int(row.version);
  if (version > SCHEMA_VERSION) {
    throw new BackupError(`${file} has schema version ${version}, newer than this build reads (${SCHEMA_VERSION})`);
  }
  return version;
}

function readCounts(db: DatabaseSync): BackupCounts {
  const row = db.prepare(SQL.counts).get() as Row;
  const int = SQLITE_DECODERS.int;
  return { secrets: int(row.secrets), versions: int(row.versions), policies: int(row.policies), meta: int(row.meta) };
}

/** The key state row; a file from before key versions has none (everything is under version 1). */
function readKeyState(db: DatabaseSync, schemaVersion: number): KeyState | undefined {
  if (schemaVersion < KEY_VERSIONS_SCHEMA) return undefined;
  return keyStateFromRow(db.prepare(SQLITE_KEY_STATE_QUERY).get() as Row, SQLITE_DECODERS);
}

/** The check value of the version the records are under (version 1 without a key state). */
function readKeyCheck(db: DatabaseSync, keyState: KeyState | undefined): Uint8Array | undefined {
  const row = db.prepare(SQL.keyCheck).get(keyCheckMetaKey(keyState?.currentVersion ?? 1)) as Row | undefined;
  return row && SQLITE_DECODERS.bytes(row.value);
}

async function* snapshotItems(
  db: DatabaseSync,
  schemaVersion: number,
  keyState: KeyState | undefined,
): AsyncGenerator<BackupItem> {
  yield* secretItems(
    db.prepare(secretsQuery(schemaVersion, SQLITE_BACKUP)).iterate() as Iterable<Row>,
    SQLITE_DECODERS,
  );
  for (const row of db.prepare(policiesQuery(schemaVersion, SQLITE_BACKUP)).iterate() as Iterable<Row>) {
    yield { kind: "policy", policy: storedPolicyFromRow(row, SQLITE_DECODERS) };
  }
  for (const row of db.prepare(SQL.meta).iterate() as Iterable<Row>) {
    yield { kind: "meta", key: SQLITE_DECODERS.text(row.key), value: SQLITE_DECODERS.bytes(row.value) };
  }
  if (keyState) yield { kind: "key-state", state: keyState };
}

/** A unique-key violation names the item that repeats; anything else passes through. */
function duplicateOr(error: unknown, item: BackupItem): unknown {
  if (!/UNIQUE constraint failed/.test((error as Error)?.message ?? "")) return error;
  const what = item.kind === "secret"
    ? `secret path ${item.path}`
    : item.kind === "policy"
    ? `policy ${item.policy.name}`
    : item.kind === "meta"
    ? `meta key ${item.key}`
    : "the key state";
  return new BackupError(`the backup holds ${what} twice`);
}
