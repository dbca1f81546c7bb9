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
import { type ExclusiveOutcome, localExclusive } from "./exclusive.ts";
import {
  checkListExpired,
  checkMetaKey,
  checkMetaValue,
  checkPathPage,
  checkPolicy,
  checkSecretDelete,
  checkSecretMove,
  checkSecretWrite,
} from "./record_check.ts";
import { auditRefusalOr, insertAuditRows } from "./postgres_audit.ts";
import { migratePostgres } from "./postgres_schema.ts";
import { secretDeleteStatement, secretWriteStatement } from "./postgres_write.ts";
import { type ColumnDecoders, policyFromRow, recordFromJoinRows, textColumn as text } from "./record_rows.ts";
import type { AuditRow, Permission, PolicyRecord, Store } from "./types.ts";

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
const toPolicy = (row: Row): PolicyRecord => policyFromRow(row, DECODE);

/** Inserts or replaces a policy; resolves it as stored. */
async function upsert(q: Sql | TransactionSql, policy: PolicyRecord): Promise<PolicyRecord> {
  const [row] = await q`
    INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_at, updated_at)
    VALUES (${policy.name}, ${policy.spiffeIdPattern}, ${policy.pathPattern},
            ${q.json([...policy.permissions])}, ${policy.createdAt}, ${policy.updatedAt})
    ON CONFLICT (name) DO UPDATE SET
      spiffe_id_pattern = excluded.spiffe_id_pattern, path_pattern = excluded.path_pattern,
      permissions = excluded.permissions, updated_at = excluded.updated_at
    RETURNING name, spiffe_id_pattern, path_pattern, permissions, created_at AS created, updated_at AS updated`;
  return toPolicy(row!);
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
                 s.created_at AS created, s.updated_at AS updated, s.custom_metadata, s.expires_at AS expires,
                 v.version, v.created_at AS v_created, v.deleted_at AS v_deleted, v.sealed,
                 v.expires_at AS v_expires
          FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path
          WHERE s.path = ${path}
          ORDER BY v.version`;
        return recordFromJoinRows(rows, DECODE);
      }),

    writeSecret: (path, expectedRevision, next, audit) =>
      run(async () => {
        checkSecretWrite(path, expectedRevision, next);
        const statement = secretWriteStatement(path, expectedRevision, next, audit);
        const [row] = await sql.unsafe(statement.text, statement.params as never[], { prepare: true })
          .catch((error) => audit ? auditRefusalOr(error) : Promise.reject(error));
        return row!.swapped === 1;
      }),

    deleteSecret: (path, expectedRevision, audit) =>
      run(async () => {
        checkSecretDelete(path, expectedRevision);
        // Versions go with it (ON DELETE CASCADE), in the same statement, and
        // so does the audit row, inserted only when the path was removed.
        const statement = secretDeleteStatement(path, expectedRevision, audit);
        const [row] = await sql.unsafe(statement.text, statement.params as never[], { prepare: true })
          .catch((error) => audit ? auditRefusalOr(error) : Promise.reject(error));
        return row!.removed === 1;
      }),

    moveSecret: (from, fromRevision, to, toRevision, next, audit) =>
      run(async () => {
        checkSecretMove(from, fromRevision, to, toRevision, next);
        // One transaction: the source's removal and the destination's write
        // (its usual one-statement compare-and-swap, carrying the audit row
        // when there is one) commit together, or a refused half rolls the
        // other back.
        try {
          await sql.begin(async (tx) => {
            const removed =
              await tx`DELETE FROM secrets WHERE path = ${from} AND revision = ${fromRevision} RETURNING 1`;
            if (removed.length === 0) throw MOVE_REFUSED;
            const statement = secretWriteStatement(to, toRevision, next, audit);
            const [row] = await tx.unsafe(statement.text, statement.params as never[], { prepare: true });
            if (row!.swapped !== 1) throw MOVE_REFUSED;
          });
          return true;
        } catch (error) {
          // Two moves in opposite directions can lock each other's rows; Postgres
          // then aborts one of them whole, which is as good as a lost race.
          if (error === MOVE_REFUSED || (error as { code?: unknown }).code === "40P01") return false;
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

    upsertPolicy: (policy, audit) =>
      run(async () => {
        checkPolicy(policy);
        if (audit) return await withAuditRow(sql, audit, (tx) => upsert(tx, policy), () => true);
        return await upsert(sql, policy);
      }),

    getPolicy: (name) =>
      run(async () => {
        const [row] = await sql`
          SELECT name, spiffe_id_pattern, path_pattern, permissions, created_at AS created, updated_at AS updated
          FROM policies WHERE name = ${name}`;
        return row && toPolicy(row);
      }),

    deletePolicy: (name, audit) =>
      run(async () => {
        const remove = async (q: Sql | TransactionSql) =>
          (await q`DELETE FROM policies WHERE name = ${name} RETURNING 1`).length > 0;
        if (audit) return await withAuditRow(sql, audit, remove, (deleted) => deleted);
        return await remove(sql);
      }),

    listPolicies: () =>
      run(async () =>
        (await sql`
          SELECT name, spiffe_id_pattern, path_pattern, permissions, created_at AS created, updated_at AS updated
          FROM policies ORDER BY name`).map(toPolicy)
      ),

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
