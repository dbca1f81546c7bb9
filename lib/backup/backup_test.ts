/**
 * Backups in-process against the real backends (SQLite files and the
 * suite's Postgres server): every kind from every store into every store
 * gives back exactly what was stored (revisions and times included), and
 * every way a restore can go wrong keeps nothing and says why. The full
 * drill on real processes under write load is `tests/backup_test.ts`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { createTestDatabase, testPostgresCaFile } from "../../tests/support/postgres_db.ts";
import { keyCheckMetaKey } from "../nexus/key_check.ts";
import { retiredMetaKey } from "../nexus/key_versions.ts";
import { createPostgresStore } from "../store/postgres_store.ts";
import { migratePostgres, POSTGRES_MIGRATIONS } from "../store/postgres_schema.ts";
import { migrate, MIGRATIONS } from "../store/sqlite_schema.ts";
import { createSqliteStore, SQLITE_FILE_NAME } from "../store/sqlite_store.ts";
import type { KeyStateChange, SecretRecord, Store, StoredPolicy } from "../store/types.ts";
import { makeBackup, restoreBackup, type StoreLocation } from "./backup.ts";
import { manifestPathOf } from "./files.ts";
import { BackupError } from "./format.ts";

const T0 = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
const at = (s: number) => new Date(T0 + s * 1000);
const bytes = (text: string) => new TextEncoder().encode(text);
const clock = () => new Date(T0 + 3600_000);

/** Meta keys a rotated store holds: both versions' key checks and when version 1 was retired. */
const META_KEYS = [keyCheckMetaKey(1), keyCheckMetaKey(2), retiredMetaKey(1)];

/**
 * A store after one root key rotation (key state idle at version 2): secrets
 * with several versions (one soft-deleted, some destroyed, some expiring,
 * under key versions 1 and 2), some with custom metadata (under either
 * version) or an expiry, one with none left, two sealed policies, both key
 * checks and the retirement record of version 1.
 */
async function fill(store: Store): Promise<void> {
  for (let i = 0; i < 25; i++) {
    const path = `apps/app-${String(i).padStart(2, "0")}/db`;
    const versions = new Map([1, 2, 3].map((n) => [n, {
      version: n,
      createdTime: at(i * 10 + n),
      deletedTime: n === 2 ? at(i * 10 + 5) : null,
      // Every third secret's version 2 is destroyed: its sealed bytes are empty.
      sealed: n === 2 && i % 3 === 0 ? new Uint8Array(0) : bytes(`sealed ${path} v${n} \u0000\u00ff`),
      // Re-sealed under version 2 but for version 1 of every other secret (as a backup taken
      // mid-rotation holds it; restore keeps each version's key version as it was).
      keyVersion: n === 1 && i % 2 === 1 ? 1 : 2,
      // Every fifth secret's version 3 expires.
      ...(n === 3 && i % 5 === 0 ? { expiresAt: at(9000 + i) } : {}),
    }]));
    const record: SecretRecord = {
      revision: 0,
      currentVersion: 3,
      oldestVersion: 1,
      maxVersions: 10,
      createdTime: at(i),
      updatedTime: at(i + 1),
      versions,
      ...(i % 4 === 0
        ? { customMetadata: { sealed: bytes(`sealed custom metadata of ${path}`), keyVersion: i % 8 === 0 ? 2 : 1 } }
        : {}),
      ...(i % 6 === 0 ? { expiresAt: at(8000 + i) } : {}),
    };
    assert.ok(await store.writeSecret(path, 0, record));
    // A second write so the revision is not 1: restores keep it.
    assert.ok(await store.writeSecret(path, 1, record));
  }
  const empty: SecretRecord = {
    revision: 0,
    currentVersion: 0,
    oldestVersion: 0,
    maxVersions: 10,
    createdTime: at(1),
    updatedTime: at(2),
    versions: new Map(),
  };
  assert.ok(await store.writeSecret("pruned/all", 0, empty));
  for (const [name, keyVersion] of [["web", 2], ["batch", 1]] as const) {
    await store.upsertPolicy({ name, keyVersion, sealed: bytes(`sealed policy ${name}`) });
  }
  await store.putMeta(keyCheckMetaKey(1), bytes("sealed key check"));
  await store.putMeta(keyCheckMetaKey(2), bytes("sealed key check v2"));
  await store.putMeta(retiredMetaKey(1), bytes("2030-01-02T04:00:00.000Z"));
  const idle2: KeyStateChange = {
    currentVersion: 2,
    phase: "idle",
    targetVersion: null,
    targetCheck: null,
    minWriteVersion: 2,
    leaseOwner: null,
    leaseUntil: null,
    startedAt: null,
    toReseal: 0,
  };
  // Two changes, so the key state's revision (kept by a restore) is not the initial one.
  assert.ok(await store.changeKeyState(1, { ...idle2, currentVersion: 1, minWriteVersion: 1 }));
  assert.ok(await store.changeKeyState(2, idle2));
}

/** Everything a store holds, comparable with deepEqual. */
async function contents(store: Store) {
  const secrets: [string, SecretRecord | undefined][] = [];
  for (const path of await store.listSecretPaths()) secrets.push([path, await store.readSecret(path)]);
  const policies: StoredPolicy[] = await store.listPolicies();
  const meta = await Promise.all(META_KEYS.map(async (key) => [key, await store.getMeta(key)]));
  return { secrets, policies, meta, keyState: await store.keyState() };
}

async function withDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "spike_backup_" });
  try {
    return await use(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function sqliteAt(dir: string): StoreLocation {
  return { kind: "sqlite", dataDir: dir };
}

async function postgresDb() {
  const db = await createTestDatabase();
  const caPem = await Deno.readTextFile(testPostgresCaFile());
  // Over TLS verified against the suite's CA (its certificate names localhost).
  const url = Object.assign(new URL(db.url), { hostname: "localhost" }).href;
  const options = { url, caPem };
  return { db, location: { kind: "postgres", options } as const, open: () => createPostgresStore(options) };
}

Deno.test("backup: sqlite and jsonl kinds from SQLite restore exactly, into SQLite and Postgres", async () => {
  await withDir(async (dir) => {
    const source = createSqliteStore({ dataDir: join(dir, "source") });
    await fill(source);
    const expected = await contents(source);
    await source.close();

    for (const kind of ["sqlite", "jsonl"] as const) {
      const out = join(dir, `backup.${kind}`);
      const manifest = await makeBackup({ source: sqliteAt(join(dir, "source")), out, kind, spikeVersion: "t", clock });
      assert.deepEqual(manifest.counts, { secrets: 26, versions: 75, policies: 2, meta: 3 });
      assert.deepEqual([manifest.kind, manifest.source.store, manifest.createdAt], [
        kind,
        "sqlite",
        clock().toISOString(),
      ]);
      assert.equal(manifest.keyVersion, 2);
      assert.equal(manifest.rotatingTo, undefined);
      assert.equal(manifest.keyCheck, btoa("sealed key check v2"), "the check value of the version the data is under");
      assert.equal(manifest.sha256, createHash("sha256").update(await Deno.readFile(out)).digest("hex"));
      assert.deepEqual(JSON.parse(await Deno.readTextFile(manifestPathOf(out))), manifest);
      for (const file of [out, manifestPathOf(out)]) assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      // One self-contained file: no WAL or shared-memory file beside it, before or after a restore reads it.
      const beside = async () =>
        [...await Array.fromAsync(Deno.readDir(dir))].map((e) => e.name).filter((n) => n.startsWith(`backup.${kind}`));
      assert.deepEqual((await beside()).sort(), [`backup.${kind}`, `backup.${kind}.manifest.json`]);

      const target = join(dir, `restored-${kind}`);
      const result = await restoreBackup(out, sqliteAt(target));
      assert.deepEqual(result.counts, manifest.counts);
      const restored = createSqliteStore({ dataDir: target });
      assert.deepEqual(await contents(restored), expected);
      await restored.close();
      assert.deepEqual((await beside()).sort(), [`backup.${kind}`, `backup.${kind}.manifest.json`]);
      assert.equal(manifest.sha256, createHash("sha256").update(await Deno.readFile(out)).digest("hex"));
    }

    const pg = await postgresDb();
    try {
      await restoreBackup(join(dir, "backup.jsonl"), pg.location);
      const restored = pg.open();
      assert.deepEqual(await contents(restored), expected);
      await restored.close();
      // And back: a jsonl export of Postgres restores into SQLite unchanged.
      const out = join(dir, "from-postgres.jsonl");
      const manifest = await makeBackup({ source: pg.location, out, kind: "jsonl", spikeVersion: "t", clock });
      assert.equal(manifest.source.store, "postgres");
      await restoreBackup(out, sqliteAt(join(dir, "from-postgres")));
      const back = createSqliteStore({ dataDir: join(dir, "from-postgres") });
      assert.deepEqual(await contents(back), expected);
      await back.close();
      await assert.rejects(
        makeBackup({ source: pg.location, out: join(dir, "pg.sqlite"), kind: "sqlite", spikeVersion: "t", clock }),
        (e: Error) => e instanceof BackupError && /jsonl/.test(e.message),
      );
    } finally {
      await pg.db.drop();
    }
  });
});

Deno.test("restore-backup refuses, and keeps nothing: non-empty target, changed, truncated or inconsistent files", async () => {
  await withDir(async (dir) => {
    const source = createSqliteStore({ dataDir: join(dir, "source") });
    await fill(source);
    await source.close();
    const backup = async (kind: "sqlite" | "jsonl", name = `b.${kind}`) => {
      const out = join(dir, name);
      await makeBackup({ source: sqliteAt(join(dir, "source")), out, kind, spikeVersion: "t", clock });
      return out;
    };
    const jsonl = await backup("jsonl");
    const sqlite = await backup("sqlite");
    const refused = async (input: string, target: StoreLocation, message: RegExp) =>
      await assert.rejects(restoreBackup(input, target), (e: Error) => {
        assert.ok(e instanceof BackupError, String(e));
        assert.match(e.message, message);
        return true;
      });
    const stillEmpty = async (dataDir: string) => {
      const store = createSqliteStore({ dataDir });
      assert.equal(await store.hasData(), false, `${dataDir} was left with data`);
      await store.close();
    };

    // Never overwrite.
    await assert.rejects(
      makeBackup({ source: sqliteAt(join(dir, "source")), out: jsonl, kind: "jsonl", spikeVersion: "t", clock }),
      /already exists/,
    );
    // Not empty: the source itself.
    await refused(jsonl, sqliteAt(join(dir, "source")), /not empty \(26 secrets/);
    const pg = await postgresDb();
    try {
      await restoreBackup(jsonl, pg.location);
      await refused(sqlite, pg.location, /not empty/);
    } finally {
      await pg.db.drop();
    }

    // One byte changed in the middle of a secret line.
    const text = await Deno.readTextFile(jsonl);
    const changed = join(dir, "changed.jsonl");
    await Deno.writeTextFile(changed, text.replace("app-07", "app-7x"));
    await refused(changed, sqliteAt(join(dir, "t1")), /checksum/);
    await stillEmpty(join(dir, "t1"));
    // Cut short (and the manifest beside it would not match either).
    const cut = join(dir, "cut.jsonl");
    await Deno.writeTextFile(cut, text.slice(0, Math.floor(text.length / 2)));
    await refused(cut, sqliteAt(join(dir, "t2")), /truncated|incomplete/);
    const cutLines = join(dir, "cut-lines.jsonl");
    await Deno.writeTextFile(cutLines, text.split("\n").slice(0, 5).join("\n") + "\n");
    await refused(cutLines, sqliteAt(join(dir, "t2")), /incomplete/);
    await stillEmpty(join(dir, "t2"));
    // A sqlite backup changed after the fact, or without its manifest.
    const bytesOfSqlite = await Deno.readFile(sqlite);
    const changedSqlite = join(dir, "changed.sqlite");
    const flip = bytesOfSqlite.length - 100;
    bytesOfSqlite[flip] = bytesOfSqlite[flip]! ^ 1;
    await Deno.writeFile(changedSqlite, bytesOfSqlite);
    await Deno.copyFile(manifestPathOf(sqlite), manifestPathOf(changedSqlite));
    await refused(changedSqlite, sqliteAt(join(dir, "t3")), /checksum in its manifest/);
    const bare = join(dir, "bare.sqlite");
    await Deno.copyFile(sqlite, bare);
    await refused(bare, sqliteAt(join(dir, "t3")), /manifest\.json is missing/);
    await stillEmpty(join(dir, "t3"));
    // Not a backup at all.
    const junk = join(dir, "junk");
    await Deno.writeTextFile(junk, "hello\n");
    await refused(junk, sqliteAt(join(dir, "t4")), /not a spike backup/);
    await refused(join(dir, "absent"), sqliteAt(join(dir, "t4")), /no backup at/);

    // A well-formed export whose rows break the store (one path twice): the
    // transaction is rolled back, nothing is kept.
    const lines = text.trimEnd().split("\n");
    const body = [lines[0]!, lines[1]!, lines[1]!, ...lines.slice(2, -1)];
    const header = JSON.parse(body[0]!);
    const second = JSON.parse(lines[1]!);
    header.counts.secrets += 1;
    header.counts.versions += second.versions.length;
    body[0] = JSON.stringify(header);
    const hash = createHash("sha256");
    for (const line of body) hash.update(line + "\n");
    const twice = join(dir, "twice.jsonl");
    await Deno.writeTextFile(
      twice,
      [...body, JSON.stringify({ type: "end", sha256: hash.digest("hex") })].join("\n") + "\n",
    );
    await refused(twice, sqliteAt(join(dir, "t5")), /twice/);
    await stillEmpty(join(dir, "t5"));
    const pg2 = await postgresDb();
    try {
      await refused(twice, pg2.location, /twice/);
      const store = pg2.open();
      assert.equal(await store.hasData(), false);
      await store.close();
    } finally {
      await pg2.db.drop();
    }
  });
});

Deno.test("the documented pg_dump / pg_restore steps copy the spike tables whole (triggers too)", async () => {
  const source = await postgresDb();
  const target = await postgresDb();
  const dir = await Deno.makeTempDir({ prefix: "spike_pgdump_" });
  try {
    const store = source.open();
    await fill(store);
    const expected = await contents(store);
    await store.close();
    // libpq checks the server against the CA given like this (verify-full).
    const libpq = (url: string) => {
      const u = new URL(url);
      u.searchParams.set("sslmode", "verify-full");
      u.searchParams.set("sslrootcert", testPostgresCaFile());
      return u.href;
    };
    const run = async (command: string, args: string[]) => {
      const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
      assert.equal(output.code, 0, `${command}: ${new TextDecoder().decode(output.stderr)}`);
    };
    const dump = join(dir, "spike.pgdump");
    await run("pg_dump", [
      "--format=custom",
      "--no-owner",
      "--no-privileges",
      `--dbname=${libpq(source.location.options.url)}`,
      `--file=${dump}`,
    ]);
    await run("pg_restore", [
      "--no-owner",
      "--no-privileges",
      "--exit-on-error",
      "--single-transaction",
      `--dbname=${libpq(target.location.options.url)}`,
      dump,
    ]);
    const restored = target.open();
    assert.deepEqual(await contents(restored), expected);
    // The policy generation trigger came along: a policy write still bumps it.
    const generation = await restored.policyGeneration();
    await restored.deletePolicy("web");
    assert.ok(await restored.policyGeneration() > generation);
    await restored.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
    await source.db.drop();
    await target.db.drop();
  }
});

Deno.test("backup: databases an earlier build left (SQLite schema 2, Postgres schema 3) back up and restore", async () => {
  await withDir(async (dir) => {
    const t = new Date("2026-01-02T03:04:05.678Z");
    const expectedSecret: SecretRecord = {
      revision: 1,
      currentVersion: 1,
      oldestVersion: 1,
      createdTime: t,
      updatedTime: t,
      maxVersions: 10,
      versions: new Map([[1, {
        version: 1,
        createdTime: t,
        deletedTime: null,
        sealed: new Uint8Array([7, 7]),
        keyVersion: 1,
      }]]),
    };
    const plainPolicy: StoredPolicy = {
      kind: "plain",
      name: "old",
      record: {
        name: "old",
        spiffeIdPattern: "^x$",
        pathPattern: "^y$",
        permissions: ["read"],
        createdAt: t,
        updatedAt: t,
      },
    };
    // SQLite at version 2, as a Nexus of an earlier build left its data directory.
    await Deno.mkdir(join(dir, "old-sqlite"), { mode: 0o700 });
    const old = new DatabaseSync(join(dir, "old-sqlite", SQLITE_FILE_NAME));
    try {
      migrate(old, MIGRATIONS.slice(0, 2));
      old.exec(
        "INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_ms, updated_ms) " +
          `VALUES ('old/db', 1, 1, 1, 10, ${t.getTime()}, ${t.getTime()});` +
          "INSERT INTO secret_versions (path, version, created_ms, deleted_ms, sealed) " +
          `VALUES ('old/db', 1, ${t.getTime()}, NULL, x'0707');` +
          "INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms) " +
          `VALUES ('old', '^x$', '^y$', '["read"]', ${t.getTime()}, ${t.getTime()})`,
      );
    } finally {
      old.close();
    }
    // Postgres at version 3 (audit_logs, before custom metadata and expiry).
    const pg = await postgresDb();
    const sql = postgres(pg.location.options.url, {
      max: 1,
      onnotice: () => {},
      ssl: { ca: pg.location.options.caPem },
    });
    try {
      await migratePostgres(sql, POSTGRES_MIGRATIONS.slice(0, 3));
      await sql`INSERT INTO secrets (path, revision, current_version, oldest_version, max_versions, created_at, updated_at)
                VALUES ('old/db', 1, 1, 1, 10, ${t}, ${t})`;
      await sql`INSERT INTO secret_versions (path, version, created_at, deleted_at, sealed)
                VALUES ('old/db', 1, ${t}, NULL, ${new Uint8Array([7, 7])})`;
      await sql`INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_at, updated_at)
                VALUES ('old', '^x$', '^y$', '["read"]', ${t}, ${t})`;
      const sources: Array<[string, StoreLocation, number]> = [
        ["sqlite", sqliteAt(join(dir, "old-sqlite")), 2],
        ["postgres", pg.location, 3],
      ];
      for (const [name, source, schemaVersion] of sources) {
        for (const kind of name === "sqlite" ? ["sqlite", "jsonl"] as const : ["jsonl"] as const) {
          const out = join(dir, `${name}.${kind}`);
          const manifest = await makeBackup({ source, out, kind, spikeVersion: "t", clock });
          assert.equal(manifest.source.schemaVersion, schemaVersion, `${name} ${kind}`);
          assert.equal(manifest.keyVersion, 1, "a store from before key versions is all under version 1");
          if (kind === "sqlite") {
            // What the earlier build wrote into its manifest: format 1 (the data file, and so its checksum, is the same).
            const manifestFile = manifestPathOf(out);
            const written = JSON.parse(await Deno.readTextFile(manifestFile));
            await Deno.writeTextFile(manifestFile, JSON.stringify({ ...written, formatVersion: 1 }));
          }
          const target = join(dir, `restored-${name}-${kind}`);
          await restoreBackup(out, sqliteAt(target));
          const restored = createSqliteStore({ dataDir: target });
          assert.deepEqual(await restored.readSecret("old/db"), expectedSecret, `${name} ${kind}`);
          assert.deepEqual(await restored.listPolicies(), [plainPolicy], "a plain row until Nexus seals it");
          assert.deepEqual((await restored.keyState()).currentVersion, 1);
          await restored.close();
        }
      }
    } finally {
      await sql.end();
      await pg.db.drop();
    }
  });
});

/** A logical export as a build of format 2 wrote it (before key versions), with a correct end line. */
function formatTwoExport(t: Date): string {
  const lines = [
    {
      type: "header",
      format: "spike-backup",
      formatVersion: 2,
      kind: "jsonl",
      spikeVersion: "0.9.0",
      createdAt: t.toISOString(),
      source: { store: "sqlite", schemaVersion: 4 },
      keyCheck: btoa("sealed key check"),
      counts: { secrets: 1, versions: 2, policies: 1, meta: 1 },
    },
    {
      type: "secret",
      path: "app/db",
      revision: 4,
      currentVersion: 2,
      oldestVersion: 1,
      maxVersions: 10,
      createdTime: t.toISOString(),
      updatedTime: t.toISOString(),
      versions: [
        { version: 1, createdTime: t.toISOString(), deletedTime: null, sealed: "", expiresAt: t.toISOString() },
        { version: 2, createdTime: t.toISOString(), deletedTime: null, sealed: btoa("v2") },
      ],
      customMetadata: btoa("sealed custom metadata"),
      expiresAt: new Date(t.getTime() + 1000).toISOString(),
    },
    {
      type: "policy",
      name: "web",
      spiffeIdPattern: "^x$",
      pathPattern: "^y$",
      permissions: ["read"],
      createdAt: t.toISOString(),
      updatedAt: t.toISOString(),
    },
    { type: "meta", key: "root_key_check", value: btoa("sealed key check") },
  ].map((line) => JSON.stringify(line));
  const hash = createHash("sha256");
  for (const line of lines) hash.update(line + "\n");
  return [...lines, JSON.stringify({ type: "end", sha256: hash.digest("hex") })].join("\n") + "\n";
}

Deno.test("backup: a format 2 export (before key versions) restores under version 1, its policies plain", async () => {
  await withDir(async (dir) => {
    const t = new Date("2026-01-02T03:04:05.678Z");
    const input = join(dir, "old.jsonl");
    await Deno.writeTextFile(input, formatTwoExport(t));
    const pg = await postgresDb();
    try {
      for (const target of [sqliteAt(join(dir, "restored")), pg.location]) {
        const result = await restoreBackup(input, target);
        assert.equal(result.manifest.keyVersion, 1);
        const store = target.kind === "sqlite" ? createSqliteStore({ dataDir: target.dataDir }) : pg.open();
        try {
          const secret = await store.readSecret("app/db");
          assert.deepEqual(
            [...secret!.versions.values()].map((v) => [v.version, v.keyVersion, v.sealed.length]),
            [[1, 1, 0], [2, 1, 2]],
          );
          assert.deepEqual(secret!.customMetadata, { sealed: bytes("sealed custom metadata"), keyVersion: 1 });
          assert.equal(secret!.revision, 4);
          assert.deepEqual((await store.listPolicies()).map((p) => [p.name, p.kind]), [["web", "plain"]]);
          const state = await store.keyState();
          assert.deepEqual([state.currentVersion, state.minWriteVersion, state.phase], [1, 1, "idle"]);
          assert.deepEqual(await store.getMeta("root_key_check"), bytes("sealed key check"));
        } finally {
          await store.close();
        }
      }
    } finally {
      await pg.db.drop();
    }
  });
});

Deno.test("backup: a store in the middle of a rotation backs up with its key state as it was, and says so", async () => {
  await withDir(async (dir) => {
    const source = createSqliteStore({ dataDir: join(dir, "source") });
    await fill(source);
    const idle = await source.keyState();
    const { revision, ...rest } = idle;
    const sealing: KeyStateChange = {
      ...rest,
      phase: "sealing",
      targetVersion: 3,
      targetCheck: bytes("sealed key check v3"),
      minWriteVersion: 3,
      leaseOwner: "nexus-a",
      leaseUntil: at(50),
      startedAt: at(40),
      toReseal: 75,
    };
    assert.ok(await source.changeKeyState(revision, sealing));
    const expected = await contents(source);
    await source.close();
    const out = join(dir, "mid.jsonl");
    const manifest = await makeBackup({
      source: sqliteAt(join(dir, "source")),
      out,
      kind: "jsonl",
      spikeVersion: "t",
      clock,
    });
    assert.deepEqual([manifest.keyVersion, manifest.rotatingTo], [2, 3]);
    const pg = await postgresDb();
    try {
      await restoreBackup(out, pg.location);
      const restored = pg.open();
      assert.deepEqual(await contents(restored), expected, "key state (lease and check value included) kept");
      await restored.close();
    } finally {
      await pg.db.drop();
    }
    // A manifest that names another key version than the file holds is refused.
    const manifestFile = manifestPathOf(out);
    const written = JSON.parse(await Deno.readTextFile(manifestFile));
    await Deno.writeTextFile(manifestFile, JSON.stringify({ ...written, keyVersion: 1 }));
    await assert.rejects(
      restoreBackup(out, sqliteAt(join(dir, "t"))),
      (e: Error) => e instanceof BackupError && /do not describe the same backup/.test(e.message),
    );
  });
});
