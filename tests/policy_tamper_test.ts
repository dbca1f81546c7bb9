/**
 * Whoever can write the database must not be able to grant themselves
 * access. A real Nexus process (SQLite, then Postgres) serves a workload
 * under a policy made through the API; then rows are written straight into
 * the database: a plain-text policy granting another workload `read` on
 * everything, a sealed policy's bytes copied under another name, random
 * bytes, an edited sealed row. Every one of them is refused and treated as
 * absent, and the event is visible: the error log names the rows, `/ready`
 * says the store was tampered with (still 200), `/metrics` counts them.
 * Deleting the rows through the API clears it.
 *
 * Also: a store left by a build from before policies were sealed (schema 2,
 * plain rows, the old check value) is sealed in place when the real Nexus
 * first gets its key, and its workloads keep their access.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { systemRandom } from "../lib/crypto/random.ts";
import { generateRootKey } from "../lib/crypto/root_key.ts";
import { getPlain } from "../lib/dev/health.ts";
import { KEY_CHECK_META, sealLegacyKeyCheck } from "../lib/nexus/key_check.ts";
import { migrate, MIGRATIONS } from "../lib/store/sqlite_schema.ts";
import { prepareSqliteFile, SQLITE_FILE_NAME } from "../lib/store/sqlite_files.ts";
import { insertPlainPoliciesSqlite } from "../lib/store/testdata/plain_policies.ts";
import { createTestDatabase } from "./support/postgres_db.ts";
import { type CommandResult, runSpike } from "./support/process.ts";
import { exits, type RestoredNexus, startRestoredNexus } from "./support/restored_nexus.ts";
import { join } from "node:path";

const EVIL = "spiffe://spike.ist/app/evil";

/** Raw access to the database behind a Nexus, as an attacker with write access has it. */
interface RawDatabase {
  /** The sealed bytes of policy `name`. */
  sealedOf(name: string): Promise<Uint8Array>;
  /** Inserts a sealed-looking row. */
  insertSealed(name: string, sealed: Uint8Array, keyVersion?: number): Promise<void>;
  /** Inserts a plain-text row granting `permissions` on `pathPattern` to `spiffeIdPattern`. */
  insertPlain(name: string, spiffeIdPattern: string, pathPattern: string, permissions: string[]): Promise<void>;
  /** Overwrites the sealed bytes of policy `name`. */
  overwriteSealed(name: string, sealed: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

function sqliteRaw(file: string): RawDatabase {
  const db = new DatabaseSync(file);
  return {
    sealedOf: (name) =>
      Promise.resolve(
        new Uint8Array(db.prepare("SELECT sealed FROM policies WHERE name = ?").get(name)!.sealed as Uint8Array),
      ),
    insertSealed: (name, sealed, keyVersion = 1) => {
      db.prepare("INSERT INTO policies (name, key_version, sealed) VALUES (?, ?, ?)").run(name, keyVersion, sealed);
      return Promise.resolve();
    },
    insertPlain: (name, id, path, permissions) => {
      db.prepare(
        "INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(name, id, path, JSON.stringify(permissions), Date.now(), Date.now());
      return Promise.resolve();
    },
    overwriteSealed: (name, sealed) => {
      db.prepare("UPDATE policies SET sealed = ? WHERE name = ?").run(sealed, name);
      return Promise.resolve();
    },
    close: () => Promise.resolve(db.close()),
  };
}

function postgresRaw(url: string): RawDatabase {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  return {
    sealedOf: async (name) => new Uint8Array((await sql`SELECT sealed FROM policies WHERE name = ${name}`)[0]!.sealed),
    insertSealed: async (name, sealed, keyVersion = 1) => {
      await sql`INSERT INTO policies (name, key_version, sealed) VALUES (${name}, ${keyVersion}, ${sealed})`;
    },
    insertPlain: async (name, id, path, permissions) => {
      await sql`
        INSERT INTO policies (name, spiffe_id_pattern, path_pattern, permissions, created_at, updated_at)
        VALUES (${name}, ${id}, ${path}, ${sql.json(permissions)}, now(), now())`;
    },
    overwriteSealed: async (name, sealed) => {
      await sql`UPDATE policies SET sealed = ${sealed} WHERE name = ${name}`;
    },
    close: () => sql.end(),
  };
}

/** The fields of a `/ready` body this test is about (the rest is checked in status and readiness tests). */
function rotationFields(body: Record<string, unknown>): Record<string, unknown> {
  const { ready, tampered, keyVersion, rotation } = body;
  return { ready, tampered, keyVersion, rotation };
}

async function readyBody(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const { status, body } = await getPlain(port, "/ready");
  return { status, body: JSON.parse(body) };
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const { body } = await getPlain(port, "/metrics");
  const line = body.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

/** `spike policy create` of the one legitimate policy: app/web reads apps/web/. */
const CREATE_WEB_POLICY = [
  "policy",
  "create",
  "--name",
  "web",
  "--spiffeid-pattern",
  "^spiffe://spike\\.ist/app/web$",
  "--path-pattern",
  "^apps/web/",
  "--permissions",
  "read",
];

/** Runs `spike secret get <path>` as the workload whose SVID is in `svidDir`. */
function readAs(nexus: RestoredNexus, svidDir: string, path: string): Promise<CommandResult> {
  return runSpike(["secret", "get", path], { env: nexus.env(svidDir) });
}

async function tamperScenario(nexus: RestoredNexus, raw: RawDatabase): Promise<void> {
  const [web, evil] = await Promise.all([nexus.mint("app/web"), nexus.mint("app/evil")]);
  exits(await nexus.admin(["secret", "put", "apps/web/db", "pass=hunter2"]), 0, "secret put");
  exits(await nexus.admin(["secret", "put", "apps/other/db", "pass=swordfish"]), 0, "secret put");
  exits(
    await nexus.admin(CREATE_WEB_POLICY),
    0,
    "policy create",
  );
  assert.match(exits(await readAs(nexus, web, "apps/web/db"), 0, "web reads").stdout, /hunter2/);
  exits(await readAs(nexus, evil, "apps/other/db"), 1, "evil is refused before any tampering");
  assert.equal((await readyBody(nexus.port)).body.tampered, false);

  // The attacks, straight into the database.
  await raw.insertPlain("evil-plain", `^${EVIL.replaceAll(".", "\\.")}$`, ".*", ["read"]);
  await raw.insertSealed("evil-copy", await raw.sealedOf("web"));
  await raw.insertSealed("evil-random", crypto.getRandomValues(new Uint8Array(120)));
  await raw.insertSealed("evil-relabelled", await raw.sealedOf("web"), 2);

  const refused = exits(await readAs(nexus, evil, "apps/other/db"), 1, "evil after tampering");
  assert.match(refused.stderr, /not authorized/);
  exits(await readAs(nexus, evil, "apps/web/db"), 1, "evil on web's path");
  assert.match(exits(await readAs(nexus, web, "apps/web/db"), 0, "web still reads").stdout, /hunter2/);

  // Visible: the log, /ready, /metrics, and the API does not show the rows.
  const line = await nexus.process.waitFor(/failed authentication and are treated as absent/, 10_000);
  assert.match(line, /"level":"error"/);
  for (const name of ["evil-copy", "evil-plain", "evil-random"]) assert.ok(line.includes(name), name);
  const ready = await readyBody(nexus.port);
  assert.equal(ready.status, 200, "a tampered store does not take Nexus out of service");
  assert.equal(ready.body.tampered, true);
  assert.match(String(ready.body.reason), /store tampered: 4 policy row/);
  assert.equal(await metric(nexus.port, "spike_nexus_policies_tampered"), 4);
  assert.ok((await metric(nexus.port, "spike_nexus_policy_tampered_total"))! >= 4);
  const listed = exits(await nexus.admin(["policy", "list", "--format", "json"]), 0, "policy list").stdout;
  assert.deepEqual(JSON.parse(listed).map((p: { name: string }) => p.name), ["web"]);
  exits(await nexus.admin(["policy", "get", "evil-plain"]), 3, "a tampered row is not found");

  // An edited sealed row denies (its workload loses access), never grants.
  const webSealed = await raw.sealedOf("web");
  const edited = webSealed.slice();
  edited[edited.length - 17]! ^= 0x01;
  await raw.overwriteSealed("web", edited);
  exits(await readAs(nexus, web, "apps/web/db"), 1, "web after its row was edited");
  assert.equal(await metric(nexus.port, "spike_nexus_policies_tampered"), 5);

  // The operator clears it through the API: delete the rows, write the policy again.
  for (const name of ["evil-plain", "evil-copy", "evil-random", "evil-relabelled"]) {
    exits(await nexus.admin(["policy", "delete", name, "--yes"]), 0, `delete ${name}`);
  }
  exits(
    await nexus.admin(CREATE_WEB_POLICY),
    0,
    "policy rewritten",
  );
  assert.match(exits(await readAs(nexus, web, "apps/web/db"), 0, "web reads again").stdout, /hunter2/);
  const cleared = await readyBody(nexus.port);
  assert.equal(cleared.status, 200);
  assert.deepEqual(rotationFields(cleared.body), { ready: true, tampered: false, keyVersion: 1, rotation: "idle" });
  assert.equal(await metric(nexus.port, "spike_nexus_policies_tampered"), 0);
}

Deno.test("policy rows written into the SQLite file are refused, absent and reported", async () => {
  const nexus = await startRestoredNexus("spike_tamper_sqlite_");
  const raw = sqliteRaw(nexus.sqliteFile!);
  try {
    await tamperScenario(nexus, raw);
  } finally {
    await raw.close();
    await nexus.close();
  }
});

Deno.test("policy rows written into the Postgres table are refused, absent and reported", async () => {
  const db = await createTestDatabase();
  const nexus = await startRestoredNexus("spike_tamper_pg_", { postgresUrl: db.url });
  const raw = postgresRaw(db.url);
  try {
    await tamperScenario(nexus, raw);
  } finally {
    await raw.close();
    await nexus.close();
    await db.drop();
  }
});

Deno.test("a SQLite store from before sealing: its plain policies are sealed when the real Nexus gets its key", async () => {
  const rootKey = generateRootKey(systemRandom);
  let file = "";
  const nexus = await startRestoredNexus("spike_legacy_", {
    rootKey,
    async prepare(dataDir) {
      file = prepareSqliteFile(dataDir);
      const db = new DatabaseSync(file);
      migrate(db, MIGRATIONS.slice(0, 2));
      db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run(
        KEY_CHECK_META,
        await sealLegacyKeyCheck(rootKey, systemRandom),
      );
      db.close();
      const at = new Date(1_700_000_000_000);
      insertPlainPoliciesSqlite(file, [{
        name: "web",
        spiffeIdPattern: "^spiffe://spike\\.ist/app/web$",
        pathPattern: "^apps/web/",
        permissions: ["read"],
        createdAt: at,
        updatedAt: at,
      }]);
    },
  });
  try {
    assert.equal(file, join(nexus.dir, "data", SQLITE_FILE_NAME));
    rootKey.fill(0);
    await nexus.process.waitFor(/sealed the plain-text policies/);
    const web = await nexus.mint("app/web");
    exits(await nexus.admin(["secret", "put", "apps/web/db", "pass=hunter2"]), 0, "secret put");
    assert.match(exits(await readAs(nexus, web, "apps/web/db"), 0, "web reads").stdout, /hunter2/);
    const shown = JSON.parse(exits(await nexus.admin(["policy", "get", "web", "--format", "json"]), 0, "get").stdout);
    assert.equal(shown.createdAt, "2023-11-14T22:13:20.000Z", "the policy keeps its creation time");
    assert.deepEqual(rotationFields((await readyBody(nexus.port)).body), {
      ready: true,
      tampered: false,
      keyVersion: 1,
      rotation: "idle",
    });
    const db = new DatabaseSync(file);
    try {
      const row = db.prepare("SELECT * FROM policies WHERE name = 'web'").get()!;
      assert.equal(row.spiffe_id_pattern, null, "no plain text left");
      assert.equal(row.key_version, 1);
      assert.ok(!new TextDecoder("latin1").decode(row.sealed as Uint8Array).includes("apps/web"));
    } finally {
      db.close();
    }
  } finally {
    await nexus.close();
  }
});
