/**
 * Backups of the Postgres store, safe while any number of Nexus instances
 * write to it:
 *
 * - a snapshot reads everything inside one `REPEATABLE READ READ ONLY`
 *   transaction (one MVCC snapshot: rows committed after it started are
 *   not seen, and nothing is locked against writers), streaming secrets
 *   through a cursor;
 * - an import migrates the schema, then fills the tables in one
 *   transaction that first locks them against other writers and checks
 *   they are empty, keeping revisions and times exactly.
 *
 * @module
 */
import type { Sql, TransactionSql } from "postgres";
import { type BackupCounts, BackupError, type BackupItem, describeCounts } from "../backup/format.ts";
import type { StoreImport, StoreSnapshot } from "../backup/snapshot.ts";
import { keyCheckMetaKey } from "../nexus/key_check.ts";
import { type BackupQueryDialect, policiesQuery, secretItems, secretsQuery } from "./backup_rows.ts";
import { INITIAL_KEY_STATE } from "./key_state.ts";
import { connectPostgres, type PostgresStoreOptions } from "./postgres_connection.ts";
import { migratePostgres, POSTGRES_SCHEMA_VERSION } from "./postgres_schema.ts";
import { POSTGRES_DECODERS, POSTGRES_KEY_STATE_COLUMNS } from "./postgres_store.ts";
import {
  checkKeyStateChange,
  checkMetaKey,
  checkMetaValue,
  checkPolicy,
  checkSealedPolicy,
  checkSecretWrite,
} from "./record_check.ts";
import { keyStateFromRow, storedPolicyFromRow } from "./record_rows.ts";
import type { KeyState } from "./types.ts";

type Row = Record<string, unknown>;

/** The schema step that added root key versions (columns and the key state row). */
const KEY_VERSIONS_SCHEMA = 7;
/** This backend's columns and schema steps for the backup's queries. */
const POSTGRES_BACKUP: BackupQueryDialect = {
  time: "at",
  steps: { customMetadata: 4, expiry: 5, sealedPolicies: 6, keyVersions: KEY_VERSIONS_SCHEMA },
};

/** Rows fetched per cursor round trip, and rows sent per multi-row insert. */
const BATCH_ROWS = 500;

/**
 * A statement may run this long (ms): a backup's statements move more rows
 * than the API's, and the import waits for writers in flight to finish.
 */
const STATEMENT_TIMEOUT_MS = 5 * 60_000;

/** `options` for one connection with the backup's statement timeout. */
function backupConnection(options: PostgresStoreOptions): Sql {
  return connectPostgres({ ...options, maxConnections: 1, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
}

/** Runs `use` with a snapshot of the spike tables in the database at `options.url`. */
export async function withPostgresSnapshot<T>(
  options: PostgresStoreOptions,
  use: (snapshot: StoreSnapshot) => Promise<T>,
): Promise<T> {
  const sql = backupConnection(options);
  try {
    return await sql.begin("isolation level repeatable read read only", async (tx) => {
      const schemaVersion = await readSchemaVersion(tx);
      const keyState = await readKeyState(tx, schemaVersion);
      const snapshot: StoreSnapshot = {
        store: "postgres",
        schemaVersion,
        counts: await readCounts(tx),
        keyState,
        keyCheck: await readKeyCheck(tx, keyState),
        items: () => snapshotItems(tx, schemaVersion, keyState),
      };
      return await use(snapshot);
    }) as T;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Fills the spike tables of the database at `options.url` (schema created or
 * upgraded first) from `use`'s items in one transaction; refuses a database
 * that holds any secret, policy or meta value.
 */
export async function importIntoPostgres(
  options: PostgresStoreOptions,
  use: (target: StoreImport) => Promise<void>,
): Promise<void> {
  const sql = backupConnection(options);
  try {
    await migratePostgres(sql);
    await sql.begin(async (tx) => {
      // Nexus instances already running on this database must not write in between.
      await tx`LOCK TABLE secrets, secret_versions, policies, meta, key_state IN EXCLUSIVE MODE`;
      const before = await readCounts(tx);
      if (before.secrets + before.policies + before.meta > 0) {
        throw new BackupError(
          `the target database is not empty (${describeCounts(before)}); restore only into an empty store`,
        );
      }
      // A backup without a key state (format 1 and 2) is all under version 1; one with it replaces this.
      await writeKeyState(tx, INITIAL_KEY_STATE);
      const inserter = new BatchInserter(tx);
      await use({
        add: (item) => inserter.add(item),
        counts: async () => {
          await inserter.flush();
          return await readCounts(tx);
        },
        keyState: () => readKeyState(tx, POSTGRES_SCHEMA_VERSION),
        keyCheck: async () => {
          await inserter.flush();
          return await readKeyCheck(tx, await readKeyState(tx, POSTGRES_SCHEMA_VERSION));
        },
      });
      await inserter.flush();
    });
  } catch (error) {
    // A repeated key is a fault of the backup, not of the database.
    if ((error as { code?: string }).code === "23505") {
      throw new BackupError(
        `the backup holds a secret path, policy name or meta key twice (${(error as Error).message})`,
      );
    }
    throw error;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Collects rows and sends them as multi-row inserts, secrets before their versions. */
class BatchInserter {
  readonly #tx: TransactionSql;
  #secrets: Row[] = [];
  #versions: Row[] = [];
  #keyStateSeen = false;

  constructor(tx: TransactionSql) {
    this.#tx = tx;
  }

  async add(item: BackupItem): Promise<void> {
    const tx = this.#tx;
    switch (item.kind) {
      case "secret": {
        const r = item.record;
        checkSecretWrite(item.path, r.revision - 1, r);
        this.#secrets.push({
          path: item.path,
          revision: r.revision,
          current_version: r.currentVersion,
          oldest_version: r.oldestVersion,
          max_versions: r.maxVersions,
          created_at: r.createdTime,
          updated_at: r.updatedTime,
          custom_metadata: r.customMetadata?.sealed ?? null,
          custom_metadata_key_version: r.customMetadata?.keyVersion ?? null,
          expires_at: r.expiresAt ?? null,
        });
        for (const v of r.versions.values()) {
          this.#versions.push({
            path: item.path,
            version: v.version,
            created_at: v.createdTime,
            deleted_at: v.deletedTime,
            sealed: v.sealed,
            key_version: v.keyVersion,
            expires_at: v.expiresAt ?? null,
          });
        }
        if (this.#secrets.length >= BATCH_ROWS || this.#versions.length >= BATCH_ROWS) await this.flush();
        return;
      }
      case "policy": {
        const row = item.policy;
        if (row.kind === "sealed") {
          checkSealedPolicy(row);
          await tx`INSERT INTO policies (name, key_version, sealed) VALUES (${row.name}, ${row.keyVersion}, ${row.sealed})`;
          return;
        }
        const p = row.record;
        if (p) checkPolicy(p);
        await tx`
          INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_at, updated_at)
          VALUES (${row.name}, ${p?.spiffeIdPattern ?? null}, ${p?.pathPattern ?? null},
                  ${p ? tx.json([...p.permissions]) : null}, ${p?.createdAt ?? null}, ${p?.updatedAt ?? null})`;
        return;
      }
      case "meta":
        checkMetaKey(item.key);
        checkMetaValue(item.value);
        await tx`INSERT INTO meta (key, value) VALUES (${item.key}, ${item.value})`;
        return;
      case "key-state":
        if (this.#keyStateSeen) throw new BackupError("the backup holds the key state twice");
        this.#keyStateSeen = true;
        await writeKeyState(tx, item.state);
        return;
    }
  }

  async flush(): Promise<void> {
    const tx = this.#tx;
    const secrets = this.#secrets;
    const versions = this.#versions;
    this.#secrets = [];
    this.#versions = [];
    if (secrets.length > 0) {
      await tx`INSERT INTO secrets ${
        tx(
          secrets,
          "path",
          "revision",
          "current_version",
          "oldest_version",
          "max_versions",
          "created_at",
          "updated_at",
          "custom_metadata",
          "custom_metadata_key_version",
          "expires_at",
        )
      }`;
    }
    for (let i = 0; i < versions.length; i += BATCH_ROWS) {
      const chunk = versions.slice(i, i + BATCH_ROWS);
      await tx`INSERT INTO secret_versions ${
        tx(chunk, "path", "version", "created_at", "deleted_at", "sealed", "key_version", "expires_at")
      }`;
    }
  }
}

async function readSchemaVersion(tx: TransactionSql): Promise<number> {
  let rows;
  try {
    rows = await tx`SELECT version FROM schema_version WHERE id = 1`;
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") {
      throw new BackupError("this database holds no spike tables (no schema_version)");
    }
    throw error;
  }
  if (rows.length === 0) throw new BackupError("this database holds no spike tables (no schema version)");
  const version = POSTGRES_DECODERS.int(rows[0]!.version);
  if (version > POSTGRES_SCHEMA_VERSION) {
    throw new BackupError(
      `the database has schema version ${version}, newer than this build reads (${POSTGRES_SCHEMA_VERSION})`,
    );
  }
  return version;
}

async function readCounts(tx: TransactionSql): Promise<BackupCounts> {
  const [row] = await tx`
    SELECT (SELECT count(*) FROM secrets)::integer AS secrets,
           (SELECT count(*) FROM secret_versions)::integer AS versions,
           (SELECT count(*) FROM policies)::integer AS policies,
           (SELECT count(*) FROM meta)::integer AS meta`;
  const int = POSTGRES_DECODERS.int;
  return {
    secrets: int(row!.secrets),
    versions: int(row!.versions),
    policies: int(row!.policies),
    meta: int(row!.meta),
  };
}

/** The key state row; a database from before key versions has none (everything is under version 1). */
async function readKeyState(tx: TransactionSql, schemaVersion: number): Promise<KeyState | undefined> {
  if (schemaVersion < KEY_VERSIONS_SCHEMA) return undefined;
  const [row] = await tx`SELECT ${tx.unsafe(POSTGRES_KEY_STATE_COLUMNS)} FROM key_state WHERE id = 1`;
  return keyStateFromRow(row!, POSTGRES_DECODERS);
}

/** Replaces the key state row (an import into a migrated, empty database). */
async function writeKeyState(tx: TransactionSql, state: KeyState): Promise<void> {
  const { revision, ...change } = state;
  checkKeyStateChange(revision, change);
  await tx`
    UPDATE key_state SET revision = ${revision}, current_version = ${state.currentVersion}, phase = ${state.phase},
      target_version = ${state.targetVersion}, target_check = ${state.targetCheck},
      min_write_version = ${state.minWriteVersion}, lease_owner = ${state.leaseOwner},
      lease_until = ${state.leaseUntil}, started_at = ${state.startedAt}, to_reseal = ${state.toReseal}
    WHERE id = 1`;
}

/** The check value of the version the records are under (version 1 without a key state). */
async function readKeyCheck(tx: TransactionSql, keyState: KeyState | undefined): Promise<Uint8Array | undefined> {
  const [row] = await tx`SELECT value FROM meta WHERE key = ${keyCheckMetaKey(keyState?.currentVersion ?? 1)}`;
  return row && POSTGRES_DECODERS.bytes(row.value);
}

async function* snapshotItems(
  tx: TransactionSql,
  schemaVersion: number,
  keyState: KeyState | undefined,
): AsyncGenerator<BackupItem> {
  const secretRows = async function* () {
    const cursor = tx.unsafe(secretsQuery(schemaVersion, POSTGRES_BACKUP)).cursor(BATCH_ROWS);
    for await (const rows of cursor) yield* rows as Row[];
  };
  yield* secretItems(secretRows(), POSTGRES_DECODERS);
  const policies = await tx.unsafe(policiesQuery(schemaVersion, POSTGRES_BACKUP));
  for (const row of policies) yield { kind: "policy", policy: storedPolicyFromRow(row, POSTGRES_DECODERS) };
  const meta = await tx`SELECT key, value FROM meta ORDER BY key`;
  for (const row of meta) {
    yield { kind: "meta", key: POSTGRES_DECODERS.text(row.key), value: POSTGRES_DECODERS.bytes(row.value) };
  }
  if (keyState) yield { kind: "key-state", state: keyState };
}
