/**
 * The backup drill on real processes (Nexus over real mTLS, real SQLite and
 * Postgres, the `spike` CLI): secrets are written while a bounded loop keeps
 * writing, `spike operator backup` copies the store mid-load, `spike operator
 * restore-backup` loads each copy into a fresh store, a fresh Nexus there
 * gets its root key from the recovery files (`spike operator recover`, then
 * `spike operator restore`), and every secret of the backup reads back —
 * with each loaded path at a version no older than what was acknowledged
 * before the backup started, and its value the one written as that version.
 *
 * SQLite source: the `sqlite` kind into SQLite, the `jsonl` kind into
 * Postgres. Postgres source: the `jsonl` kind into SQLite.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { BackupManifest } from "../lib/backup/format.ts";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { generateRootKey, splitSecret } from "../lib/crypto/shamir.ts";
import { formatRecoveryShard } from "../lib/pilot/recovery_file.ts";
import { createFileSource } from "../lib/spiffe/file_source.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus } from "../lib/spiffe/roles.ts";
import { createTestDatabase, type TestDatabase, testPostgresCaFile } from "./support/postgres_db.ts";
import { type CommandResult, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const TD = "spiffe://spike.ist";
/** Secrets written before the load starts. */
const SEEDS = 60;
/** Paths the load loop writes to, one writer each. */
const LOAD_PATHS = 4;
/**
 * The permissions of the installed `spike` (`deno task spike`, the compiled
 * binary): the backup commands must need no more.
 */
const SPIKE_PERMISSIONS = [
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
  "--v8-flags=--enable-experimental-regexp-engine",
  "--quiet",
];
/** Upper bound of load puts per path (the loop also stops when told to, or after 60 s). */
const MAX_PUTS_PER_PATH = 400;

function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** Identities, a scratch directory, and helpers shared by both drills. */
class Drill {
  readonly dir: string;
  readonly #running = new Set<SpikeProcess>();
  readonly #clients: MtlsClient[] = [];
  readonly #dbs: TestDatabase[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(prefix: string): Promise<Drill> {
    const drill = new Drill(await Deno.makeTempDir({ prefix }));
    const mint = async (role: string) =>
      exits(
        await runSpike(["dev", "identity", `${TD}/${role}`, "--dir", join(drill.dir, "ca"), "--out", drill.id(role)]),
        0,
        `mint ${role}`,
      );
    await mint("spike/nexus");
    await Promise.all(["spike/pilot/role/superuser", "spike/pilot/role/recover", "spike/pilot/role/restore"].map(mint));
    return drill;
  }

  id(role: string): string {
    return join(this.dir, "id", role.replaceAll("/", "_"));
  }

  /** Environment of a CLI run as `role` against the Nexus at `url`. */
  pilot(role: string, url: string): Record<string, string> {
    return {
      SPIKE_SVID_DIR: this.id(`spike/pilot/role/${role}`),
      SPIKE_NEXUS_API_URL: url,
      SPIKE_PILOT_RECOVERY_DIR: join(this.dir, "recover"),
    };
  }

  /** A fresh Postgres database (dropped at the end) and the settings that reach it over verified TLS. */
  async database(): Promise<Record<string, string>> {
    const db = await createTestDatabase();
    this.#dbs.push(db);
    const url = Object.assign(new URL(db.url), { hostname: "localhost" }).href;
    return {
      SPIKE_NEXUS_BACKEND_STORE: "postgres",
      SPIKE_NEXUS_POSTGRES_URL: url,
      SPIKE_NEXUS_POSTGRES_CA_FILE: testPostgresCaFile(),
    };
  }

  /** Starts a Nexus (no Keepers) on `store` settings; resolves its URL once it listens. */
  async nexus(store: Record<string, string>): Promise<{ url: string; port: number }> {
    const port = freePort();
    const child = new SpikeProcess(["nexus"], {
      env: {
        SPIKE_SVID_DIR: this.id("spike/nexus"),
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
        SPIKE_NEXUS_KEEPER_PEERS: "",
        ...store,
      },
    });
    this.#running.add(child);
    await child.waitFor(/nexus listening/);
    return { url: `https://127.0.0.1:${port}`, port };
  }

  /** Sends recovery lines 1 and 3 with `spike operator restore`; waits until Nexus is ready. */
  async restoreKey(nexus: { url: string; port: number }, lines: readonly string[]): Promise<void> {
    for (const line of [lines[0]!, lines[2]!]) {
      exits(
        await runSpike(["operator", "restore"], { env: this.pilot("restore", nexus.url), stdin: line }),
        0,
        "operator restore",
      );
    }
    await waitForReady(nexus.port, 15_000);
  }

  /** An in-process API client as the superuser. */
  async client(url: string): Promise<NexusClient> {
    const identity = createFileSource(this.id("spike/pilot/role/superuser"));
    await identity.ready();
    const transport = createMtlsClient({ identity, serverId: (id) => isNexus(id), timeoutMs: 30_000 });
    this.#clients.push(transport);
    this.#closers.push(() => identity.close());
    return new NexusClient(url, transport);
  }

  readonly #closers: (() => Promise<void>)[] = [];

  async close(): Promise<void> {
    for (const client of this.#clients) client.close();
    await Promise.all(this.#closers.map((close) => close()));
    await Promise.all([...this.#running].map((child) => child.stop()));
    await Promise.all(this.#dbs.map((db) => db.drop()));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** A bounded write loop: one writer per path, each put's value is its own sequence number. */
class WriteLoad {
  /** Puts acknowledged per path (= the version number of the last acknowledged put). */
  readonly acked: number[] = Array(LOAD_PATHS).fill(0);
  #stop = false;
  readonly done: Promise<void>;

  constructor(client: NexusClient) {
    const deadline = Date.now() + 60_000;
    this.done = Promise.all(this.acked.map(async (_, w) => {
      for (let n = 1; n <= MAX_PUTS_PER_PATH && !this.#stop && Date.now() < deadline; n++) {
        await client.putSecret(loadPath(w), { n: String(n), filler: "x".repeat(64) });
        this.acked[w] = n;
      }
    })).then(() => {});
  }

  get total(): number {
    return this.acked.reduce((a, b) => a + b, 0);
  }

  async waitForPuts(count: number): Promise<void> {
    while (this.total < count) {
      if (this.#stop) throw new Error("load stopped early");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.done;
  }
}

const SEED_EXPIRY = "2099-01-01T00:00:00.000Z";
const seedPath = (i: number) => `drill/seed/${String(i).padStart(3, "0")}`;
const loadPath = (w: number) => `drill/load/${w}`;

/** Writes the seeds and a policy, and saves recovery files; resolves the recovery lines. */
async function prepareSource(drill: Drill, source: { url: string; port: number }): Promise<string[]> {
  // Give the source its first root key (as a bootstrap would), then save recovery files from it.
  const shares = splitSecret(generateRootKey(systemRandom), 3, 2);
  await drill.restoreKey(source, shares.map((s) => formatRecoveryShard(s.index, s.value) + "\n"));
  exits(await runSpike(["operator", "recover"], { env: drill.pilot("recover", source.url) }), 0, "operator recover");
  const lines = await Promise.all(
    [1, 2, 3].map((i) => Deno.readTextFile(join(drill.dir, "recover", `spike.recovery.${i}.txt`))),
  );
  const client = await drill.client(source.url);
  for (let i = 0; i < SEEDS; i++) await client.putSecret(seedPath(i), { value: `seed-${i}`, i: String(i) });
  // The key-value extensions' columns travel too: sealed custom metadata, an expiry, a destroyed version.
  await client.putSecretMetadata(seedPath(0), { customMetadata: { owner: "drill" }, expiresAt: SEED_EXPIRY });
  await client.putSecret(seedPath(1), { value: "seed-1", i: "1" }, { versionExpiresAt: SEED_EXPIRY });
  await client.destroySecret(seedPath(1), [1]);
  await client.putPolicy({
    name: "drill-readers",
    spiffeidPattern: "^spiffe://spike\\.ist/app/reader$",
    pathPattern: "^drill/seed/.*$",
    permissions: ["read"],
  });
  return lines;
}

/** Runs `spike operator backup` with `args` while the load runs; resolves the manifest and the acks at launch. */
async function backupUnderLoad(
  load: WriteLoad,
  store: Record<string, string>,
  args: string[],
): Promise<{ manifest: BackupManifest; ackedAtStart: number[] }> {
  const ackedAtStart = [...load.acked];
  const before = load.total;
  const result = exits(
    await runSpike(["operator", "backup", ...args, "-f", "json"], { env: store, denoFlags: SPIKE_PERMISSIONS }),
    0,
    "backup",
  );
  // The load went on while the backup ran: this was a copy of a store being written.
  assert.ok(load.total > before, "no put completed while the backup ran");
  return { manifest: JSON.parse(result.stdout) as BackupManifest, ackedAtStart };
}

/** Every secret of the backup reads back from the restored Nexus, consistent with what was written. */
async function readEverythingBack(
  client: NexusClient,
  backup: { manifest: BackupManifest; ackedAtStart: number[] },
): Promise<void> {
  const paths = await client.listSecrets();
  assert.equal(paths.length, backup.manifest.counts.secrets);
  assert.equal(backup.manifest.counts.secrets, SEEDS + LOAD_PATHS);
  for (let i = 0; i < SEEDS; i++) {
    assert.deepEqual(await client.getSecret(seedPath(i)), { value: `seed-${i}`, i: String(i) });
  }
  const [first, second] = [await client.getSecretMetadata(seedPath(0)), await client.getSecretMetadata(seedPath(1))];
  assert.deepEqual(first.metadata.customMetadata, { owner: "drill" }, "custom metadata restored, and it opens");
  assert.equal(first.metadata.expiresAt, SEED_EXPIRY);
  assert.equal(second.versions["1"]!.destroyed, true);
  assert.equal(second.versions["2"]!.expiresAt, SEED_EXPIRY);
  for (let w = 0; w < LOAD_PATHS; w++) {
    const values = await client.getSecret(loadPath(w));
    const n = Number(values.n);
    const meta = await client.getSecretMetadata(loadPath(w));
    // One snapshot: the record and its newest version agree, and nothing acknowledged before it is missing.
    assert.equal(meta.metadata.currentVersion, n, `${loadPath(w)}: version and value disagree`);
    assert.ok(n >= backup.ackedAtStart[w]!, `${loadPath(w)}: v${n} is older than v${backup.ackedAtStart[w]}`);
    assert.ok(n <= MAX_PUTS_PER_PATH);
  }
  const policies = await client.listPolicies();
  assert.deepEqual(policies.map((p) => p.name), ["drill-readers"]);
}

Deno.test("backup drill, SQLite source: sqlite kind into SQLite, jsonl kind into Postgres, under write load", async () => {
  const drill = await Drill.create("spike_backup_sqlite_");
  try {
    const sourceStore = { SPIKE_NEXUS_BACKEND_STORE: "sqlite", SPIKE_NEXUS_DATA_DIR: join(drill.dir, "source") };
    const source = await drill.nexus(sourceStore);
    const recoveryLines = await prepareSource(drill, source);
    const load = new WriteLoad(await drill.client(source.url));
    let sqliteBackup, jsonlBackup;
    try {
      await load.waitForPuts(40);
      sqliteBackup = await backupUnderLoad(load, sourceStore, ["--out", join(drill.dir, "b.sqlite")]);
      jsonlBackup = await backupUnderLoad(load, sourceStore, ["--kind", "jsonl", "--out", join(drill.dir, "b.jsonl")]);
    } finally {
      await load.stop();
    }
    assert.equal(sqliteBackup.manifest.kind, "sqlite");
    assert.equal(jsonlBackup.manifest.kind, "jsonl");
    assert.ok(sqliteBackup.manifest.keyCheck !== null);
    assert.equal(jsonlBackup.manifest.keyCheck, sqliteBackup.manifest.keyCheck);

    // Into a fresh SQLite data directory, named by flag.
    const restoredDir = join(drill.dir, "restored");
    const restore = exits(
      await runSpike(["operator", "restore-backup", "--in", join(drill.dir, "b.sqlite"), "--data-dir", restoredDir], {
        denoFlags: SPIKE_PERMISSIONS,
      }),
      0,
      "restore-backup into SQLite",
    );
    assert.match(restore.stdout, new RegExp(`restored .* into the SQLite store in .*: ${SEEDS + LOAD_PATHS} secrets`));
    assert.match(restore.stderr, /spike operator restore/);
    // Into a fresh Postgres database, named by Nexus's own settings.
    const postgres = await drill.database();
    exits(
      await runSpike(["operator", "restore-backup", "--in", join(drill.dir, "b.jsonl")], {
        env: postgres,
        denoFlags: SPIKE_PERMISSIONS,
      }),
      0,
      "restore-backup into Postgres",
    );
    // A second restore into a store that now holds data is refused.
    const again = exits(
      await runSpike(["operator", "restore-backup", "--in", join(drill.dir, "b.jsonl"), "--data-dir", restoredDir]),
      1,
      "restore-backup into a non-empty store",
    );
    assert.match(again.stderr, /not empty/);

    for (
      const [store, backup] of [
        [{ SPIKE_NEXUS_BACKEND_STORE: "sqlite", SPIKE_NEXUS_DATA_DIR: restoredDir }, sqliteBackup],
        [postgres, jsonlBackup],
      ] as const
    ) {
      const nexus = await drill.nexus(store);
      await drill.restoreKey(nexus, recoveryLines);
      await readEverythingBack(await drill.client(nexus.url), backup);
    }
  } finally {
    await drill.close();
  }
});

Deno.test("backup drill, Postgres source: jsonl kind into SQLite, under write load", async () => {
  const drill = await Drill.create("spike_backup_postgres_");
  try {
    const sourceStore = await drill.database();
    const source = await drill.nexus(sourceStore);
    const recoveryLines = await prepareSource(drill, source);
    const load = new WriteLoad(await drill.client(source.url));
    let backup;
    try {
      await load.waitForPuts(40);
      // The default kind for Postgres is the logical export.
      backup = await backupUnderLoad(load, sourceStore, ["--out", join(drill.dir, "pg.jsonl")]);
    } finally {
      await load.stop();
    }
    assert.deepEqual([backup.manifest.kind, backup.manifest.source.store], ["jsonl", "postgres"]);
    const sqliteKind = exits(
      await runSpike(["operator", "backup", "--kind", "sqlite", "--out", join(drill.dir, "pg.sqlite")], {
        env: sourceStore,
      }),
      1,
      "a sqlite-kind backup of Postgres",
    );
    assert.match(sqliteKind.stderr, /jsonl/);

    const restoredDir = join(drill.dir, "restored");
    exits(
      await runSpike(["operator", "restore-backup", "--in", join(drill.dir, "pg.jsonl"), "--data-dir", restoredDir]),
      0,
      "restore-backup into SQLite",
    );
    const nexus = await drill.nexus({ SPIKE_NEXUS_BACKEND_STORE: "sqlite", SPIKE_NEXUS_DATA_DIR: restoredDir });
    await drill.restoreKey(nexus, recoveryLines);
    await readEverythingBack(await drill.client(nexus.url), backup);
  } finally {
    await drill.close();
  }
});

Deno.test("backup and restore-backup: usage and refusals exit with clear messages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_backup_cli_" });
  try {
    const run = (args: string[], env: Record<string, string> = {}) => runSpike(["operator", ...args], { env });
    assert.match(exits(await run(["backup"]), 2, "no --out").stderr, /--out is required/);
    assert.match(exits(await run(["restore-backup"]), 2, "no --in").stderr, /--in is required/);
    assert.match(
      exits(await run(["backup", "--out", join(dir, "x"), "--kind", "zip", "--data-dir", dir]), 2, "bad kind").stderr,
      /unknown backup kind 'zip'/,
    );
    assert.match(
      exits(
        await run(["backup", "--out", join(dir, "x"), "--data-dir", dir, "--postgres-url", "postgres://h/d"]),
        2,
        "both",
      )
        .stderr,
      /either --data-dir or --postgres-url/,
    );
    assert.match(
      exits(await run(["backup", "--out", join(dir, "x")], { SPIKE_NEXUS_BACKEND_STORE: "memory" }), 1, "memory")
        .stderr,
      /nothing is kept on disk/,
    );
    assert.match(
      exits(await run(["backup", "--out", join(dir, "x"), "--data-dir", join(dir, "none")]), 1, "no database").stderr,
      /no database at/,
    );
    assert.match(
      exits(await run(["restore-backup", "--in", join(dir, "absent"), "--data-dir", dir]), 1, "no backup").stderr,
      /no backup at/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
