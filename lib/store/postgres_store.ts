/**
 * The shared backend: PostgreSQL through the `postgres` npm driver, so that
 * several Nexus instances serve the same data (Nexus keeps no cache of
 * secrets; see `docs/STORAGE.md`).
 *
 * Compare-and-swap: a secret write is one statement whose first step is
 * `UPDATE … WHERE revision = expected` (or `INSERT … ON CONFLICT DO NOTHING`
 * for a new path); see `postgres_write.ts`. Postgres row locks make a
 * concurrent writer wait and then re-check the condition against the
 * committed row, so of two writers with the same expected revision exactly
 * one matches a row; the other changes nothing and resolves `false`.
 *
 * The schema is created or upgraded on first use (`postgres_schema.ts`), and
 * a failed attempt (server down) is retried by the next call, so Nexus can
 * start before its database and turn ready once it answers.
 *
 * @module
 */
import type { Sql, TransactionSql } from "postgres";
import { pageRange } from "./byte_order.ts";
import { connectPostgres, type PostgresStoreOptions } from "./postgres_connection.ts";
import { StaleKeyVersionError } from "./errors.ts";
import { type ExclusiveOutcome, localExclusive } from "./exclusive.ts";
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
import { auditRefusalOr, insertAuditRows } from "./postgres_audit.ts";
import { migratePostgres } from "./postgres_schema.ts";
import { secretDeleteStatement, secretWriteStatement } from "./postgres_write.ts";
import {
  type ColumnDecoders,
  keyStateFromRow,
  recordFromJoinRows,
  storedPolicyFromRow,
  textColumn as text,
} from "./record_rows.ts";
import type { AuditRow, Permission, SealedPolicy, SecretRecord, Store, StoredPolicy, WriteOptions } from "./types.ts";

export type { PostgresStoreOptions };

type Row = Record<string, unknown>;

/** An int8 arrives as a string (it may exceed 2^53); ours never do. */
function int(value: unknown): number {
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw new TypeError("store: unexpected column type");
  return n;
}

function date(value: unknown): Date {
  if (value instanceof Date) return new Date(value);
  throw new TypeError("store: unexpected column type");
}

/** The driver hands out Node `Buffer`s; callers get plain `Uint8Array` copies. */
function bytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw new TypeError("store: unexpected column type");
}

/** How this backend's columns decode (times arrive as `Date`s; permissions as parsed `jsonb`); backups read with them too. */
export const POSTGRES_DECODERS: ColumnDecoders = {
  int,
  date,
  bytes,
  text,
  permissions: (value) => [...(value as Permission[])],
};

const DECODE = POSTGRES_DECODERS;
const toPolicy = (row: Row): StoredPolicy => storedPolicyFromRow(row, DECODE);

/** Every column of the key state row, aliased as `keyStateFromRow` reads them; backups read them too. */
export const POSTGRES_KEY_STATE_COLUMNS = `revision, current_version, phase, target_version, target_check,
  min_write_version, lease_owner, lease_until, started_at AS started, to_reseal`;

/** Every column of a policy row, aliased as `storedPolicyFromRow` reads them. */
const POLICY_COLUMNS = `name, key_version, sealed, spiffe_id_pattern, path_pattern, permissions,
  created_at AS created, updated_at AS updated`;

/**
 * Inserts or replaces a sealed policy row (a plain row's plain columns are
 * cleared). The key state row is locked FOR SHARE, as for secret writes
 * (`postgres_write.ts`); throws `StaleKeyVersionError` when its key version
 * is refused.
 */
async function upsert(q: Sql | TransactionSql, policy: SealedPolicy): Promise<void> {
  const [row] = await q`
    WITH gate AS (SELECT min_write_version FROM key_state WHERE id = 1 FOR SHARE),
    upserted AS (
      INSERT INTO policies (name, key_version, sealed)
      SELECT ${policy.name}, ${policy.keyVersion}, ${policy.sealed}
      WHERE ${policy.keyVersion}::integer >= (SELECT min_write_version FROM gate)
      ON CONFLICT (name) DO UPDATE SET
        key_version = excluded.key_version, sealed = excluded.sealed, spiffe_id_pattern = NULL,
        path_pattern = NULL, permissions = NULL, created_at = NULL, updated_at = NULL
      RETURNING 1)
    SELECT (SELECT count(*)::integer FROM upserted) AS done, (SELECT min_write_version FROM gate) AS min_write`;
  if (row!.done !== 1) throw new StaleKeyVersionError(policy.keyVersion, int(row!.min_write));
}

/**
 * The key state's `min_write_version`, with its row locked FOR SHARE until
 * `tx` ends (as every single-statement write locks it, `postgres_write.ts`),
 * so a rotation cannot raise the minimum before `tx` commits.
 */
async function lockMinWriteVersion(tx: TransactionSql): Promise<number> {
  const [row] = await tx`SELECT min_write_version FROM key_state WHERE id = 1 FOR SHARE`;
  return int(row!.min_write_version);
}

/**
 * One secret write (`postgres_write.ts`) on `q` (the pool or a
 * transaction): whether it swapped; throws `StaleKeyVersionError` when its
 * key version is refused, and `AuditRowRefusedError` when its audit row is.
 */
async function writeOne(
  q: Sql | TransactionSql,
  path: string,
  expectedRevision: number,
  next: SecretRecord,
  options: WriteOptions,
): Promise<boolean> {
  const statement = secretWriteStatement(path, expectedRevision, next, options);
  const [row] = await q.unsafe(statement.text, statement.params as never[], { prepare: true })
    .catch((error) => options.audit ? auditRefusalOr(error) : Promise.reject(error));
  if (row!.swapped === 1) return true;
  const { sealedUnder } = options;
  if (sealedUnder !== undefined && row!.min_write !== null && sealedUnder < int(row!.min_write)) {
    throw new StaleKeyVersionError(sealedUnder, int(row!.min_write));
  }
  return false;
}

/**
 * Runs `change` and inserts `audit` in one transaction (the row only when
 * `changed` says the change happened); a refused row rolls the change back
 * and rejects with `AuditRowRefusedError`.
 */
async function withAuditRow<T>(
  sql: Sql,
  audit: AuditRow,
  change: (tx: TransactionSql) => Promise<T>,
  changed: (result: T) => boolean,
): Promise<T> {
  return await sql.begin(async (tx) => {
    const result = await change(tx);
    if (changed(result)) await insertAuditRows(tx, [audit]).catch(auditRefusalOr);
    return result;
  }) as T;
}

/** Thrown inside a move's transaction to roll it back when a revision does not match. */
const MOVE_REFUSED = new Error("move refused: a revision changed");

/** Advisory lock key of `tryExclusive` ("spksw"; the migration lock is another key). */
const EXCLUSIVE_LOCK = 0x73706b7377;

/**
 * Connects lazily to the database at `options.url`. Each store is its own
 * connection pool; any number of stores, in one process or many, may share
 * the database.
 */
export function createPostgresStore(options: PostgresStoreOptions): Store {
  const sql: Sql = connectPostgres(options);
  // Audit rows that guard no change go through one connection of their own
  // that does not wait for the WAL flush (opened on first use): they reach
  // disk with the next flush, a fraction of a second later, unless the
  // server crashes first; the audit file is their durable copy.
  let relaxed: Sql | undefined;
  let closed = false;
  const exclusive = localExclusive();
  let schema: Promise<void> | undefined;

  /** Migrates once per store; a failure is forgotten so the next call tries again. */
  function ensureSchema(): Promise<void> {
    schema ??= migratePostgres(sql).catch((error) => {
      schema = undefined;
      throw error;
    });
    return schema;
  }

  async function run<T>(work: () => Promise<T>): Promise<T> {
    if (closed) throw new Error("store is closed");
    await ensureSchema();
    return await work();
  }

  return {
    readSecret: (path) =>
      run(async () => {
        // One statement is one snapshot, even with writers in other processes.
        const rows = await sql`
          SELECT s.revision, s.current_version, s.oldest_version, s.max_versions,
                 s.created_at AS created, s.updated_at AS updated, s.custom_metadata, s.custom_metadata_key_version,
                 s.expires_at AS expires,
                 v.version, v.created_at AS v_created, v.deleted_at AS v_deleted, v.sealed, v.key_version,
                 v.expires_at AS v_expires
          FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path
          WHERE s.path = ${path}
          ORDER BY v.version`;
        return recordFromJoinRows(rows, DECODE);
      }),

    writeSecret: (path, expectedRevision, next, options = {}) =>
      run(async () => {
        checkSecretWrite(path, expectedRevision, next);
        checkSealedUnder(options.sealedUnder);
        return await writeOne(sql, path, expectedRevision, next, options);
      }),

    writeSecrets: (writes) =>
      run(async () => {
        checkSecretWrites(writes);
        if (writes.length === 0) return [];
        // One transaction; the statements go out pipelined. A refusal throws and rolls all back.
        return await sql.begin((tx) =>
          Promise.all(
            writes.map((w) => writeOne(tx, w.path, w.expectedRevision, w.next, { sealedUnder: w.sealedUnder })),
          )
        );
      }),

    deleteSecret: (path, expectedRevision, { audit } = {}) =>
      run(async () => {
        checkSecretDelete(path, expectedRevision);
        // Versions go with it (ON DELETE CASCADE), in the same statement, and
        // so does the audit row, inserted only when the path was removed.
        const statement = secretDeleteStatement(path, expectedRevision, audit);
        const [row] = await sql.unsafe(statement.text, statement.params as never[], { prepare: true })
          .catch((error) => audit ? auditRefusalOr(error) : Promise.reject(error));
        return row!.removed === 1;
      }),

    moveSecret: (from, fromRevision, to, toRevision, next, options = {}) =>
      run(async () => {
        checkSecretMove(from, fromRevision, to, toRevision, next);
        checkSealedUnder(options.sealedUnder);
        const { sealedUnder, audit } = options;
        // One transaction: the source's removal and the destination's write
        // (its usual one-statement compare-and-swap, carrying the audit row
        // when there is one) commit together, or a refused half rolls the
        // other back. The re-sealed record is gated first, before any row is
        // locked (the order every single-statement write takes): the key
        // state row stays locked FOR SHARE until the commit.
        try {
          await sql.begin(async (tx) => {
            if (sealedUnder !== undefined) {
              const min = await lockMinWriteVersion(tx);
              if (sealedUnder < min) throw new StaleKeyVersionError(sealedUnder, min);
            }
            const removed =
              await tx`DELETE FROM secrets WHERE path = ${from} AND revision = ${fromRevision} RETURNING 1`;
            if (removed.length === 0) throw MOVE_REFUSED;
            const statement = secretWriteStatement(to, toRevision, next, { audit });
            const [row] = await tx.unsafe(statement.text, statement.params as never[], { prepare: true });
            if (row!.swapped !== 1) throw MOVE_REFUSED;
          });
          return true;
        } catch (error) {
          // Two moves in opposite directions can lock each other's rows; Postgres
          // then aborts one of them whole, which is as good as a lost race.
          if (error === MOVE_REFUSED || (error as { code?: unknown }).code === "40P01") return false;
          if (error instanceof StaleKeyVersionError) throw error;
          if (audit) auditRefusalOr(error);
          throw error;
        }
      }),

    listExpired: (now, limit) =>
      run(async () => {
        checkListExpired(now, limit);
        // Each half stops after `limit` rows of its expiry index: bounded work.
        const rows = await sql`
          (SELECT path FROM secrets WHERE expires_at <= ${now} LIMIT ${limit})
          UNION
          (SELECT DISTINCT path FROM secret_versions WHERE expires_at <= ${now} LIMIT ${limit})
          LIMIT ${limit}`;
        return rows.map((row) => text(row.path));
      }),

    tryExclusive<T>(work: () => Promise<T>) {
      return run(async (): Promise<ExclusiveOutcome<T>> => {
        // Within this process first (no round trip), then among every Nexus
        // on the database: a transaction-level advisory lock, released by
        // COMMIT or ROLLBACK, and by the server when this connection dies, so
        // a crashed Nexus never leaves it held. The work runs on other
        // connections of the pool while this transaction holds the lock.
        const local = await exclusive(async () => {
          let outcome: ExclusiveOutcome<T> = { ran: false };
          await sql.begin(async (tx) => {
            const [row] = await tx`SELECT pg_try_advisory_xact_lock(${EXCLUSIVE_LOCK}) AS locked`;
            if (row!.locked === true) outcome = { ran: true, value: await work() };
          });
          return outcome;
        });
        return local.ran ? local.value : { ran: false };
      });
    },

    secretPathsSealedBelow: (version, after, limit) =>
      run(async () => {
        checkScan(version, after, limit);
        // Each half walks an index in path order from the cursor and stops after `limit`
        // (custom metadata: the partial index of secrets that have some).
        const rows = await sql`
          (SELECT DISTINCT path FROM secret_versions WHERE path > ${after} AND key_version < ${version}
           ORDER BY path LIMIT ${limit})
          UNION
          (SELECT path FROM secrets
           WHERE custom_metadata_key_version IS NOT NULL AND path > ${after} AND custom_metadata_key_version < ${version}
           ORDER BY path LIMIT ${limit})
          ORDER BY path LIMIT ${limit}`;
        return rows.map((row) => text(row.path));
      }),

    countSealedBelow: (version) =>
      run(async () => {
        checkScan(version, "", 1);
        const [row] = await sql`
          SELECT (SELECT count(*) FROM secret_versions WHERE key_version < ${version}) AS secret_versions,
                 (SELECT count(*) FROM secrets WHERE custom_metadata_key_version < ${version}) AS custom_metadata,
                 (SELECT count(*) FROM policies WHERE key_version < ${version}) AS policies`;
        return {
          secretVersions: int(row!.secret_versions),
          customMetadata: int(row!.custom_metadata),
          policies: int(row!.policies),
        };
      }),

    keyState: () =>
      run(async () => {
        const [row] = await sql`SELECT ${sql.unsafe(POSTGRES_KEY_STATE_COLUMNS)} FROM key_state WHERE id = 1`;
        return keyStateFromRow(row!, DECODE);
      }),

    changeKeyState: (expectedRevision, next, options = {}) =>
      run(async () => {
        checkKeyStateChange(expectedRevision, next);
        const below = options.requireNoneBelow;
        // The UPDATE's row lock waits for every write holding the row FOR SHARE (postgres_write.ts).
        const rows = await sql`
          UPDATE key_state SET revision = ${expectedRevision + 1}, current_version = ${next.currentVersion},
            phase = ${next.phase}, target_version = ${next.targetVersion}, target_check = ${next.targetCheck},
            min_write_version = ${next.minWriteVersion}, lease_owner = ${next.leaseOwner},
            lease_until = ${next.leaseUntil}, started_at = ${next.startedAt}, to_reseal = ${next.toReseal}
          WHERE id = 1 AND revision = ${expectedRevision}
            AND (${below ?? null}::integer IS NULL OR (
              NOT EXISTS (SELECT 1 FROM secret_versions WHERE key_version < ${below ?? 1})
              AND NOT EXISTS (SELECT 1 FROM secrets WHERE custom_metadata_key_version < ${below ?? 1})
              AND NOT EXISTS (SELECT 1 FROM policies WHERE key_version < ${below ?? 1})))
          RETURNING 1`;
        return rows.length > 0;
      }),

    listSecretPathsPage: (query) =>
      run(async () => {
        checkPathPage(query);
        const { from, inclusive, upper } = pageRange(query);
        // One range scan of the primary key ("C" collation: byte order), stopping after `limit` rows.
        const lower = inclusive ? sql`path >= ${from}` : sql`path > ${from}`;
        const rows = upper === undefined
          ? await sql`SELECT path FROM secrets WHERE ${lower} ORDER BY path LIMIT ${query.limit}`
          : await sql`SELECT path FROM secrets WHERE ${lower} AND path < ${upper} ORDER BY path LIMIT ${query.limit}`;
        return rows.map((row) => text(row.path));
      }),

    listSecretPaths: () =>
      run(async () => (await sql`SELECT path FROM secrets ORDER BY path`).map((row) => text(row.path))),

    upsertPolicy: (policy, { audit } = {}) =>
      run(async () => {
        checkSealedPolicy(policy);
        if (audit) return await withAuditRow(sql, audit, (tx) => upsert(tx, policy), () => true);
        return await upsert(sql, policy);
      }),

    getPolicy: (name) =>
      run(async () => {
        const [row] = await sql`SELECT ${sql.unsafe(POLICY_COLUMNS)} FROM policies WHERE name = ${name}`;
        return row && toPolicy(row);
      }),

    deletePolicy: (name, { audit } = {}) =>
      run(async () => {
        const remove = async (q: Sql | TransactionSql) =>
          (await q`DELETE FROM policies WHERE name = ${name} RETURNING 1`).length > 0;
        if (audit) return await withAuditRow(sql, audit, remove, (deleted) => deleted);
        return await remove(sql);
      }),

    listPolicies: () =>
      run(async () => (await sql`SELECT ${sql.unsafe(POLICY_COLUMNS)} FROM policies ORDER BY name`).map(toPolicy)),

    replacePolicies: (replacements) =>
      run(async () => {
        checkPolicyReplacements(replacements);
        if (replacements.length === 0) return [];
        // One transaction; the statements go out pipelined, answered in order.
        return await sql.begin(async (tx) => {
          const min = await lockMinWriteVersion(tx);
          const stale = replacements.find(({ next }) => next !== null && next.keyVersion < min);
          if (stale) throw new StaleKeyVersionError(stale.next!.keyVersion, min);
          return await Promise.all(replacements.map(({ expected, next }) =>
            next === null
              ? (expected.kind === "sealed"
                ? tx`
                  DELETE FROM policies
                  WHERE name = ${expected.name} AND key_version = ${expected.keyVersion} AND sealed = ${expected.sealed}
                  RETURNING 1`
                : tx`DELETE FROM policies WHERE name = ${expected.name} AND sealed IS NULL RETURNING 1`)
              : expected.kind === "sealed"
              ? tx`
                UPDATE policies SET key_version = ${next.keyVersion}, sealed = ${next.sealed}
                WHERE name = ${next.name} AND key_version = ${expected.keyVersion} AND sealed = ${expected.sealed}
                RETURNING 1`
              : tx`
                UPDATE policies SET key_version = ${next.keyVersion}, sealed = ${next.sealed},
                  spiffe_id_pattern = NULL, path_pattern = NULL, permissions = NULL, created_at = NULL, updated_at = NULL
                WHERE name = ${next.name} AND sealed IS NULL
                RETURNING 1`
          ));
        }).then((results) =>
          (results as unknown as unknown[][]).map((rows) => rows.length > 0)
        );
      }),

    policyGeneration: () =>
      run(async () => {
        const [row] = await sql`SELECT value FROM policy_generation WHERE id = 1`;
        return int(row!.value);
      }),

    getMeta: (key) =>
      run(async () => {
        const [row] = await sql`SELECT value FROM meta WHERE key = ${key}`;
        return row && bytes(row.value);
      }),

    putMeta: (key, value) =>
      run(async () => {
        checkMetaKey(key);
        checkMetaValue(value);
        await sql`
          INSERT INTO meta (key, value) VALUES (${key}, ${value})
          ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      }),

    hasData: () =>
      run(async () => {
        const [row] = await sql`
          SELECT EXISTS (SELECT 1 FROM secrets) OR EXISTS (SELECT 1 FROM policies)
                 OR EXISTS (SELECT 1 FROM meta) AS any_data`;
        return row!.any_data === true;
      }),

    insertAuditRows: (rows, insert) =>
      run(async () => {
        if (insert?.durable !== false) return await insertAuditRows(sql, rows);
        relaxed ??= connectPostgres({ ...options, maxConnections: 1 }, { synchronous_commit: "off" });
        await insertAuditRows(relaxed, rows);
      }),

    counts: () =>
      run(async () => {
        const [row] = await sql`
          SELECT (SELECT count(*) FROM secrets)::integer AS secrets, (SELECT count(*) FROM policies)::integer AS policies`;
        return { secrets: int(row!.secrets), policies: int(row!.policies) };
      }),

    ping: () =>
      run(async () => {
        const [row] = await sql`SELECT version FROM schema_version WHERE id = 1`;
        if (!row) throw new Error("store: schema version missing");
      }),

    async close() {
      if (closed) return;
      closed = true;
      // Calls still running get 2 s before their connections are cut. The
      // bound also matters with nothing running: after a connection was cut
      // under it (database restart), the driver may never see that
      // connection's end, and would otherwise wait for it forever.
      await Promise.all([sql.end({ timeout: 2 }), relaxed?.end({ timeout: 2 })]);
    },
  };
}
