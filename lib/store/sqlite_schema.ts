/**
 * The SQLite schema and its migrations. Each migration runs once, in order,
 * inside the same `BEGIN IMMEDIATE` transaction that records the new schema
 * version, so several processes opening one file at once never migrate twice
 * and a crash mid-migration leaves the old schema intact.
 *
 * Timestamps are integer milliseconds since the Unix epoch (exactly what a
 * JavaScript `Date` holds, so nothing is lost on a round trip).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";

/** One schema step. */
export interface Migration {
  /** Schema version after this step. */
  readonly version: number;
  /** DDL run inside the migration transaction. */
  readonly sql: string;
}

/** Every schema step, oldest first. Append only: never edit a released step. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE secrets (
        path            TEXT    NOT NULL PRIMARY KEY,
        revision        INTEGER NOT NULL CHECK (revision >= 1),
        current_version INTEGER NOT NULL CHECK (current_version >= 0),
        oldest_version  INTEGER NOT NULL CHECK (oldest_version >= 0),
        max_versions    INTEGER NOT NULL CHECK (max_versions >= 0),
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE secret_versions (
        path       TEXT    NOT NULL REFERENCES secrets (path) ON DELETE CASCADE,
        version    INTEGER NOT NULL CHECK (version >= 1),
        created_ms INTEGER NOT NULL,
        deleted_ms INTEGER,
        sealed     BLOB    NOT NULL,
        PRIMARY KEY (path, version)
      ) STRICT;
      CREATE TABLE policies (
        name              TEXT    NOT NULL PRIMARY KEY,
        spiffe_id_pattern TEXT    NOT NULL,
        path_pattern      TEXT    NOT NULL,
        permissions       TEXT    NOT NULL,
        created_ms        INTEGER NOT NULL,
        updated_ms        INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value BLOB NOT NULL
      ) STRICT;
    `,
  },
  {
    // A counter every policy write bumps, in the writer's own transaction
    // (triggers), so Nexus can tell whether its copy of the policy list is
    // current with one single-row read.
    version: 2,
    sql: `
      CREATE TABLE policy_generation (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
      ) STRICT;
      INSERT INTO policy_generation (id, value) VALUES (1, 0);
      CREATE TRIGGER policies_bump_on_insert AFTER INSERT ON policies
        BEGIN UPDATE policy_generation SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER policies_bump_on_update AFTER UPDATE ON policies
        BEGIN UPDATE policy_generation SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER policies_bump_on_delete AFTER DELETE ON policies
        BEGIN UPDATE policy_generation SET value = value + 1 WHERE id = 1; END;
    `,
  },
  {
    // Key-value extensions: a secret's custom metadata, sealed by Nexus
    // (NULL: none).
    version: 3,
    sql: `ALTER TABLE secrets ADD COLUMN custom_metadata BLOB;`,
  },
  {
    // Key-value extensions: expiry times of a secret and of a version (NULL:
    // never), indexed where set so the expiry sweep finds them without a scan.
    version: 4,
    sql: `
      ALTER TABLE secrets ADD COLUMN expires_ms INTEGER;
      ALTER TABLE secret_versions ADD COLUMN expires_ms INTEGER;
      CREATE INDEX secrets_by_expiry ON secrets (expires_ms) WHERE expires_ms IS NOT NULL;
      CREATE INDEX secret_versions_by_expiry ON secret_versions (expires_ms) WHERE expires_ms IS NOT NULL;
    `,
  },
  {
    // Policies are sealed by Nexus: the store keeps the name, the root key
    // version and the sealed bytes. The plain columns stay, nullable, for
    // rows written before this step until Nexus seals them (it does so once,
    // when it first holds the key); a sealed row has them NULL. SQLite
    // cannot drop NOT NULL in place, so the table is rebuilt (which drops
    // its triggers; they are made again).
    version: 5,
    sql: `
      CREATE TABLE policies_sealed (
        name              TEXT    NOT NULL PRIMARY KEY,
        key_version       INTEGER CHECK (key_version >= 1),
        sealed            BLOB,
        spiffe_id_pattern TEXT,
        path_pattern      TEXT,
        permissions       TEXT,
        created_ms        INTEGER,
        updated_ms        INTEGER,
        CHECK ((sealed IS NULL) = (key_version IS NULL))
      ) STRICT;
      INSERT INTO policies_sealed (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms)
        SELECT name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms FROM policies;
      DROP TABLE policies;
      ALTER TABLE policies_sealed RENAME TO policies;
      CREATE TRIGGER policies_bump_on_insert AFTER INSERT ON policies
        BEGIN UPDATE policy_generation SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER policies_bump_on_update AFTER UPDATE ON policies
        BEGIN UPDATE policy_generation SET value = value + 1 WHERE id = 1; END;
      CREATE TRIGGER policies_bump_on_delete AFTER DELETE ON policies
        BEGIN UPDATE policy_generation SET value = value + 1 WHERE id = 1; END;
    `,
  },
  {
    // Root key versions: every secret version, and a secret's custom
    // metadata, says which root key version sealed it (everything written
    // before is version 1), and one row says which versions the data is
    // under and how far a rotation has got. The partial index lets a
    // rotation's scan walk only the secrets that have custom metadata.
    version: 6,
    sql: `
      ALTER TABLE secret_versions ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1 CHECK (key_version >= 1);
      ALTER TABLE secrets ADD COLUMN custom_metadata_key_version INTEGER CHECK (custom_metadata_key_version >= 1);
      UPDATE secrets SET custom_metadata_key_version = 1 WHERE custom_metadata IS NOT NULL;
      CREATE INDEX secrets_with_custom_metadata ON secrets (path, custom_metadata_key_version)
        WHERE custom_metadata_key_version IS NOT NULL;
      CREATE TABLE key_state (
        id                INTEGER PRIMARY KEY CHECK (id = 1),
        revision          INTEGER NOT NULL CHECK (revision >= 1),
        current_version   INTEGER NOT NULL CHECK (current_version >= 1),
        phase             TEXT    NOT NULL CHECK (phase IN ('idle', 'preparing', 'sealing')),
        target_version    INTEGER,
        target_check      BLOB,
        min_write_version INTEGER NOT NULL CHECK (min_write_version >= 1),
        lease_owner       TEXT,
        lease_until_ms    INTEGER,
        started_ms        INTEGER,
        to_reseal         INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      INSERT INTO key_state (id, revision, current_version, phase, min_write_version) VALUES (1, 1, 1, 'idle', 1);
    `,
  },
];

/** The schema version this build writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the database to `SCHEMA_VERSION`. Refuses a database written by a
 * newer build rather than guess at a schema it does not know.
 */
export function migrate(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): void {
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL) STRICT",
    );
    const row = db.prepare("SELECT version FROM schema_version WHERE id = 1").get();
    const current = row ? Number(row.version) : 0;
    if (current > latest) {
      throw new Error(`database schema version ${current} is newer than this build supports (${latest})`);
    }
    for (const step of migrations) {
      if (step.version > current) db.exec(step.sql);
    }
    if (current !== latest) {
      db.prepare(
        "INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
      ).run(latest);
    }
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
