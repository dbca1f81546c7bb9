/**
 * The Postgres schema and its migrations. Every Nexus sharing a database
 * runs `migratePostgres` when it first touches the store; a transaction-level
 * advisory lock makes them take turns, so a step runs once however many
 * instances start together, and a failing step leaves the old schema intact
 * (Postgres DDL is transactional).
 *
 * Text columns that are sorted use `COLLATE "C"`: byte order of UTF-8, the
 * order every backend lists in (see `byte_order.ts`). Times are `timestamptz`
 * (microsecond precision, so a JavaScript `Date` round-trips exactly).
 *
 * @module
 */
import type { Sql } from "postgres";
import { AUDIT_LOGS_MIGRATION_SQL } from "./postgres_audit.ts";

/** One schema step. */
export interface PostgresMigration {
  /** Schema version after this step. */
  readonly version: number;
  /** DDL run inside the migration transaction. */
  readonly sql: string;
}

/** Every schema step, oldest first. Append only: never edit a released step. */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE secrets (
        path            text COLLATE "C" NOT NULL PRIMARY KEY,
        revision        bigint      NOT NULL CHECK (revision >= 1),
        current_version integer     NOT NULL CHECK (current_version >= 0),
        oldest_version  integer     NOT NULL CHECK (oldest_version >= 0),
        max_versions    integer     NOT NULL CHECK (max_versions >= 0),
        created_at      timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL
      );
      CREATE TABLE secret_versions (
        path       text COLLATE "C" NOT NULL REFERENCES secrets (path) ON DELETE CASCADE,
        version    integer     NOT NULL CHECK (version >= 1),
        created_at timestamptz NOT NULL,
        deleted_at timestamptz,
        sealed     bytea       NOT NULL,
        PRIMARY KEY (path, version)
      );
      CREATE TABLE policies (
        name              text COLLATE "C" NOT NULL PRIMARY KEY,
        spiffe_id_pattern text        NOT NULL,
        path_pattern      text        NOT NULL,
        permissions       jsonb       NOT NULL,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL
      );
      CREATE TABLE meta (
        key   text  NOT NULL PRIMARY KEY,
        value bytea NOT NULL
      );
    `,
  },
  {
    // A counter every policy write bumps, in the writer's own transaction
    // (a statement trigger), so each Nexus can tell whether its copy of the
    // policy list is current with one single-row read.
    version: 2,
    sql: `
      CREATE TABLE policy_generation (
        id    integer PRIMARY KEY CHECK (id = 1),
        value bigint  NOT NULL
      );
      INSERT INTO policy_generation (id, value) VALUES (1, 0);
      CREATE FUNCTION bump_policy_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE policy_generation SET value = value + 1 WHERE id = 1;
          RETURN NULL;
        END
      $$;
      CREATE TRIGGER policies_bump_generation AFTER INSERT OR UPDATE OR DELETE ON policies
        FOR EACH STATEMENT EXECUTE FUNCTION bump_policy_generation();
    `,
  },
  {
    // The audit table [ours] (`postgres_audit.ts`); empty unless SPIKE_NEXUS_AUDIT_TABLE is on.
    version: 3,
    sql: AUDIT_LOGS_MIGRATION_SQL,
  },
  {
    // Key-value extensions [ours]: a secret's custom metadata, sealed by
    // Nexus (NULL: none). The advisory lock and the version row already make
    // each step run once; IF NOT EXISTS (here and in step 5) also lets a step
    // that finds its change made by hand complete instead of failing.
    version: 4,
    sql: `ALTER TABLE secrets ADD COLUMN IF NOT EXISTS custom_metadata bytea;`,
  },
  {
    // Key-value extensions [ours]: expiry times of a secret and of a version
    // (NULL: never), indexed where set so the expiry sweep finds them without
    // a scan.
    version: 5,
    sql: `
      ALTER TABLE secrets ADD COLUMN IF NOT EXISTS expires_at timestamptz;
      ALTER TABLE secret_versions ADD COLUMN IF NOT EXISTS expires_at timestamptz;
      CREATE INDEX IF NOT EXISTS secrets_by_expiry ON secrets (expires_at) WHERE expires_at IS NOT NULL;
      CREATE INDEX IF NOT EXISTS secret_versions_by_expiry ON secret_versions (expires_at)
        WHERE expires_at IS NOT NULL;
    `,
  },
  {
    // Policies are sealed by Nexus: the store keeps the name, the root key
    // version and the sealed bytes. The plain columns stay, nullable, for
    // rows written before this step until Nexus seals them (it does so once,
    // when it first holds the key); a sealed row has them NULL. Written to
    // complete when it finds its change (or part of it) already made.
    version: 6,
    sql: `
      ALTER TABLE policies
        ALTER COLUMN spiffe_id_pattern DROP NOT NULL,
        ALTER COLUMN path_pattern DROP NOT NULL,
        ALTER COLUMN permissions DROP NOT NULL,
        ALTER COLUMN created_at DROP NOT NULL,
        ALTER COLUMN updated_at DROP NOT NULL,
        ADD COLUMN IF NOT EXISTS key_version integer CHECK (key_version >= 1),
        ADD COLUMN IF NOT EXISTS sealed bytea;
      DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                       WHERE conrelid = 'policies'::regclass AND conname = 'policies_sealed_with_key_version') THEN
          ALTER TABLE policies
            ADD CONSTRAINT policies_sealed_with_key_version CHECK ((sealed IS NULL) = (key_version IS NULL));
        END IF;
      END
      $$;
    `,
  },
  {
    // Root key versions: every secret version, and a secret's custom
    // metadata, says which root key version sealed it (everything written
    // before is version 1), and one row says which versions the data is
    // under and how far a rotation has got. Writes lock that row FOR SHARE,
    // so raising min_write_version waits for writes in flight (see
    // postgres_write.ts). The partial index lets a rotation's scan walk only
    // the secrets that have custom metadata.
    version: 7,
    sql: `
      ALTER TABLE secret_versions ADD COLUMN IF NOT EXISTS key_version integer NOT NULL DEFAULT 1
        CHECK (key_version >= 1);
      ALTER TABLE secrets ADD COLUMN IF NOT EXISTS custom_metadata_key_version integer
        CHECK (custom_metadata_key_version >= 1);
      UPDATE secrets SET custom_metadata_key_version = 1
        WHERE custom_metadata IS NOT NULL AND custom_metadata_key_version IS NULL;
      CREATE INDEX IF NOT EXISTS secrets_with_custom_metadata ON secrets (path)
        INCLUDE (custom_metadata_key_version) WHERE custom_metadata_key_version IS NOT NULL;
      CREATE TABLE IF NOT EXISTS key_state (
        id                integer PRIMARY KEY CHECK (id = 1),
        revision          bigint      NOT NULL CHECK (revision >= 1),
        current_version   integer     NOT NULL CHECK (current_version >= 1),
        phase             text        NOT NULL CHECK (phase IN ('idle', 'preparing', 'sealing')),
        target_version    integer,
        target_check      bytea,
        min_write_version integer     NOT NULL CHECK (min_write_version >= 1),
        lease_owner       text,
        lease_until       timestamptz,
        started_at        timestamptz,
        to_reseal         bigint      NOT NULL DEFAULT 0
      );
      INSERT INTO key_state (id, revision, current_version, phase, min_write_version) VALUES (1, 1, 1, 'idle', 1)
        ON CONFLICT (id) DO NOTHING;
    `,
  },
];

/** The schema version this build writes. */
export const POSTGRES_SCHEMA_VERSION: number = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]!.version;

/** Advisory lock key that serializes migrations of one database ("spike" in ASCII). */
const MIGRATION_LOCK = 0x7370696b65;

/**
 * Brings the database to the newest schema of `migrations`. Refuses a
 * database written by a newer build rather than guess at a schema it does
 * not know.
 */
export async function migratePostgres(
  sql: Sql,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
): Promise<void> {
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`
      CREATE TABLE IF NOT EXISTS schema_version (
        id      integer PRIMARY KEY CHECK (id = 1),
        version integer NOT NULL
      )`;
    const [row] = await tx`SELECT version FROM schema_version WHERE id = 1`;
    const current = row ? Number(row.version) : 0;
    if (current > latest) {
      throw new Error(`database schema version ${current} is newer than this build supports (${latest})`);
    }
    for (const step of migrations) {
      if (step.version > current) await tx.unsafe(step.sql);
    }
    if (current !== latest) {
      await tx`
        INSERT INTO schema_version (id, version) VALUES (1, ${latest})
        ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
    }
  });
}
