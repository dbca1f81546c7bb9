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
import postgres, { type Sql, type TransactionSql } from "postgres";
import { StaleKeyVersionError } from "./errors.ts";
import {
  checkKeyStateChange,
  checkMetaKey,
  checkMetaValue,
  checkPolicyReplacements,
  checkScan,
  checkSealedPolicy,
  checkSealedUnder,
  checkSecretWrite,
  checkSecretWrites,
} from "./record_check.ts";
import { migratePostgres } from "./postgres_schema.ts";
import { secretWriteStatement } from "./postgres_write.ts";
import {
  type ColumnDecoders,
  keyStateFromRow,
  recordFromJoinRows,
  storedPolicyFromRow,
  textColumn as text,
} from "./record_rows.ts";
import type { Permission, SecretWrite, Store, StoredPolicy } from "./types.ts";

/** Options of the Postgres store. */
export interface PostgresStoreOptions {
  /** `postgres://user[:password]@host[:port]/database[?sslmode=…]`. */
  readonly url: string;
  /** Password when not in the URL (e.g. read from a file by the caller). */
  readonly password?: string;
  /**
   * PEM of the CA(s) that sign the server's certificate. When given, every
   * connection uses TLS and verifies the certificate and that it names the
   * host of `url`, whatever `sslmode` the URL says.
   */
  readonly caPem?: string;
  /** Most connections the pool opens (default 10). */
  readonly maxConnections?: number;
  /** Seconds to wait for a new connection before the call fails (default 10). */
  readonly connectTimeoutSeconds?: number;
  /**
   * Longest a statement may run, waiting for locks included, in ms (default
   * 10 000): a stuck transaction elsewhere fails a call instead of hanging it.
   */
  readonly statementTimeoutMs?: number;
}

type Row = Record<string, unknown>;

/** Every column of a policy row, aliased as `storedPolicyFromRow` reads them. */
const POLICY_COLUMNS = `name, key_version, sealed, spiffe_id_pattern, path_pattern, permissions,
  created_at AS created, updated_at AS updated`;

/**
 * TLS options that verify the server: against `caPem` when given, else
 * against Deno's root store when the URL says `sslmode=verify-full`; other
 * modes are left to the driver. The host is named explicitly because the
 * driver leaves the TLS server name unset for an IP address, and the TLS
 * layer would then check the certificate against "localhost".
 */
function verifiedTls(url: string, caPem: string | undefined): object | undefined {
  const parsed = new URL(url);
  if (caPem === undefined && parsed.searchParams.get("sslmode") !== "verify-full") return undefined;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return { rejectUnauthorized: true, host, ...(caPem === undefined ? {} : { ca: caPem }) };
}

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

/** How this backend's columns decode (times arrive as `Date`s; permissions as parsed `jsonb`). */
const DECODE: ColumnDecoders = {
  int,
  date,
  bytes,
  text,
  permissions: (value) => {
    if (!Array.isArray(value)) throw new TypeError("store: unexpected column type");
    return [...(value as Permission[])];
  },
};

const toPolicy = (row: Row): StoredPolicy => storedPolicyFromRow(row, DECODE);

/**
 * One secret write (`postgres_write.ts`) on `sql` (the pool or a
 * transaction): whether it swapped; throws when its key version is refused.
 */
async function applySecretWrite(sql: Sql | TransactionSql, write: SecretWrite): Promise<boolean> {
  const statement = secretWriteStatement(write.path, write.expectedRevision, write.next, write.sealedUnder);
  const [row] = await sql.unsafe(statement.text, statement.params as never[], { prepare: true });
  if (row!.swapped === 1) return true;
  if (write.sealedUnder !== undefined && row!.min_write !== null && write.sealedUnder < int(row!.min_write)) {
    throw new StaleKeyVersionError(write.sealedUnder, int(row!.min_write));
  }
  return false;
}

/**
 * Connects lazily to the database at `options.url`. Each store is its own
 * connection pool; any number of stores, in one process or many, may share
 * the database.
 */
export function createPostgresStore(options: PostgresStoreOptions): Store {
  const tls = verifiedTls(options.url, options.caPem);
  const sql: Sql = postgres(options.url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    connection: { statement_timeout: options.statementTimeoutMs ?? 10_000 },
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(tls === undefined ? {} : { ssl: tls }),
    onnotice: () => {},
  });
  let closed = false;
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
                 s.created_at AS created, s.updated_at AS updated,
                 v.version, v.created_at AS v_created, v.deleted_at AS v_deleted, v.sealed, v.key_version
          FROM secrets s LEFT JOIN secret_versions v ON v.path = s.path
          WHERE s.path = ${path}
          ORDER BY v.version`;
        return recordFromJoinRows(rows, DECODE);
      }),

    writeSecret: (path, expectedRevision, next, sealedUnder) =>
      run(async () => {
        checkSecretWrite(path, expectedRevision, next);
        checkSealedUnder(sealedUnder);
        return await applySecretWrite(sql, { path, expectedRevision, next, sealedUnder });
      }),

    writeSecrets: (writes) =>
      run(async () => {
        checkSecretWrites(writes);
        if (writes.length === 0) return [];
        // One transaction; the statements go out pipelined. A refusal throws and rolls all back.
        return await sql.begin((tx) => Promise.all(writes.map((write) => applySecretWrite(tx, write))));
      }),

    secretPathsSealedBelow: (version, after, limit) =>
      run(async () => {
        checkScan(version, after, limit);
        const rows = await sql`
          SELECT DISTINCT path FROM secret_versions WHERE path > ${after} AND key_version < ${version}
          ORDER BY path LIMIT ${limit}`;
        return rows.map((row) => text(row.path));
      }),

    countSealedBelow: (version) =>
      run(async () => {
        checkScan(version, "", 1);
        const [row] = await sql`
          SELECT (SELECT count(*) FROM secret_versions WHERE key_version < ${version}) AS secret_versions,
                 (SELECT count(*) FROM policies WHERE key_version < ${version}) AS policies`;
        return { secretVersions: int(row!.secret_versions), policies: int(row!.policies) };
      }),

    keyState: () =>
      run(async () => {
        const [row] = await sql`
          SELECT revision, current_version, phase, target_version, target_check, min_write_version, lease_owner,
                 lease_until, started_at AS started, to_reseal
          FROM key_state WHERE id = 1`;
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
              AND NOT EXISTS (SELECT 1 FROM policies WHERE key_version < ${below ?? 1})))
          RETURNING 1`;
        return rows.length > 0;
      }),

    listSecretPaths: () =>
      run(async () => (await sql`SELECT path FROM secrets ORDER BY path`).map((row) => text(row.path))),

    upsertPolicy: (policy) =>
      run(async () => {
        checkSealedPolicy(policy);
        // A sealed row replaces a plain one entirely: its plain columns are cleared. The key
        // state row is locked FOR SHARE, as for secret writes (postgres_write.ts).
        const [row] = await sql`
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
      }),

    getPolicy: (name) =>
      run(async () => {
        const [row] = await sql`SELECT ${sql.unsafe(POLICY_COLUMNS)} FROM policies WHERE name = ${name}`;
        return row && toPolicy(row);
      }),

    deletePolicy: (name) =>
      run(async () => (await sql`DELETE FROM policies WHERE name = ${name} RETURNING 1`).length > 0),

    listPolicies: () =>
      run(async () => (await sql`SELECT ${sql.unsafe(POLICY_COLUMNS)} FROM policies ORDER BY name`).map(toPolicy)),

    replacePolicies: (replacements) =>
      run(async () => {
        checkPolicyReplacements(replacements);
        if (replacements.length === 0) return [];
        // One transaction; the statements go out pipelined, answered in order.
        return await sql.begin(async (tx) => {
          const [gate] = await tx`SELECT min_write_version FROM key_state WHERE id = 1 FOR SHARE`;
          const min = int(gate!.min_write_version);
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
      await sql.end({ timeout: 2 });
    },
  };
}
