/**
 * The key-value features [ours] over real mutual TLS, through the typed
 * client, on SQLite and on Postgres with two Nexus sharing one database:
 * check-and-set and patch under concurrent writers, destroy, custom
 * metadata, expiry with a real short TTL and the sweep, scoped and paged
 * listing (100,000 paths), move and batch read, with their denials.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { ApiCallError } from "../lib/client/errors.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { openSqliteDatabase } from "../lib/store/sqlite_database.ts";
import { SQLITE_FILE_NAME, type SqliteStore } from "../lib/store/sqlite_store.ts";
import { createTestDatabase } from "./support/postgres_db.ts";
import type { SweepReport } from "../lib/nexus/expiry_sweeper.ts";
import { type MtlsNexus, sharedCa, startMtlsNexus } from "./support/mtls_nexus.ts";

const SUPERUSER = "spiffe://spike.ist/spike/pilot/role/superuser";
const devCa = sharedCa();

/** Asserts that `call` fails with HTTP `status` (and wire code `code`, when given). */
async function rejectsWith(call: Promise<unknown>, status: number, code?: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof ApiCallError, String(error));
    assert.equal(error.status, status);
    if (code !== undefined) assert.equal(error.code, code);
    return true;
  });
}

/** Runs `use` with one SQLite Nexus. */
async function withSqlite(use: (fixture: MtlsNexus) => Promise<void>, env: Record<string, string> = {}) {
  const fixture = await startMtlsNexus(await devCa(), { backend: "sqlite", env });
  try {
    await use(fixture);
  } finally {
    await fixture.close();
  }
}

/** Runs `use` with two Nexus on one fresh Postgres database, sharing the root key. */
async function withTwoOnPostgres(use: (a: MtlsNexus, b: MtlsNexus) => Promise<void>, env: Record<string, string> = {}) {
  const db = await createTestDatabase();
  const ca = await devCa();
  const started: MtlsNexus[] = [];
  try {
    started.push(await startMtlsNexus(ca, { backend: "postgres", postgresUrl: db.url, env }));
    started.push(await startMtlsNexus(ca, { backend: "postgres", postgresUrl: db.url, env }));
    await use(started[0]!, started[1]!);
  } finally {
    await Promise.all(started.map((f) => f.close()));
    await db.drop();
  }
}

/**
 * `writers` clients each read the current version and put with it as `cas`,
 * all at once, for `rounds` rounds; resolves how many writes landed and how
 * many got 409.
 */
async function casRace(clients: NexusClient[], path: string, rounds: number): Promise<{ ok: number; lost: number }> {
  let ok = 0;
  let lost = 0;
  for (let round = 0; round < rounds; round++) {
    const seen = await Promise.all(
      clients.map((c) => c.getSecretMetadata(path).then((m) => m.metadata.currentVersion, () => 0)),
    );
    const results = await Promise.allSettled(
      clients.map((c, i) => c.putSecret(path, { writer: String(i), round: String(round) }, { cas: seen[i]! })),
    );
    for (const result of results) {
      if (result.status === "fulfilled") ok++;
      else {
        assert.ok(result.reason instanceof ApiCallError && result.reason.status === 409, String(result.reason));
        lost++;
      }
    }
  }
  return { ok, lost };
}

Deno.test("mTLS + sqlite: check-and-set — concurrent writers with the same expected version, one wins each round", async () => {
  await withSqlite(async (fixture) => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => fixture.client(SUPERUSER)));
    const rounds = 5;
    const { ok, lost } = await casRace(clients, "race/cas", rounds);
    assert.equal(ok, rounds, "exactly one write per round");
    assert.equal(lost, rounds * 7);
    const meta = await clients[0]!.getSecretMetadata("race/cas");
    assert.equal(meta.metadata.currentVersion, rounds);
    await rejectsWith(clients[0]!.putSecret("race/cas", { k: "v" }, { cas: 0 }), 409, "api_conflict");
    const conflicts = fixture.audit.filter((r) => r.err === "api_conflict");
    assert.equal(conflicts.length, lost + 1, "every conflict is audited");
  });
});

Deno.test("mTLS + postgres, two Nexus: check-and-set holds across instances", async () => {
  await withTwoOnPostgres(async (a, b) => {
    const clients = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).client(SUPERUSER)),
    );
    const rounds = 5;
    const { ok } = await casRace(clients, "race/cas", rounds);
    assert.equal(ok, rounds, "exactly one write per round over both instances");
    assert.equal((await clients[1]!.getSecretMetadata("race/cas")).metadata.currentVersion, rounds);
  });
});

/** Each client patches its own keys into `path` `rounds` times, all at once; checks that every key landed. */
async function patchStorm(clients: NexusClient[], path: string, rounds: number): Promise<void> {
  await clients[0]!.putSecret(path, { base: "0" });
  await Promise.all(
    clients.map(async (c, i) => {
      for (let round = 0; round < rounds; round++) await c.patchSecret(path, { [`w${i}r${round}`]: `${i}.${round}` });
    }),
  );
  const values = await clients[0]!.getSecret(path);
  assert.equal(Object.keys(values).length, 1 + clients.length * rounds, "no patch lost another's key");
  for (let i = 0; i < clients.length; i++) {
    for (let round = 0; round < rounds; round++) assert.equal(values[`w${i}r${round}`], `${i}.${round}`);
  }
  const meta = await clients[0]!.getSecretMetadata(path);
  assert.equal(meta.metadata.currentVersion, 1 + clients.length * rounds, "one version per patch");
}

Deno.test("mTLS + sqlite: patch — concurrent patches of one secret never lose a key", async () => {
  await withSqlite(async (fixture) => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => fixture.client(SUPERUSER)));
    await patchStorm(clients, "race/patch", 4);
  }, { SPIKE_NEXUS_MAX_SECRET_VERSIONS: "100" });
});

Deno.test("mTLS + postgres, two Nexus: concurrent patches through both instances never lose a key", async () => {
  await withTwoOnPostgres(async (a, b) => {
    const clients = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).client(SUPERUSER)),
    );
    await patchStorm(clients, "race/patch", 4);
  }, { SPIKE_NEXUS_MAX_SECRET_VERSIONS: "100" });
});

/** Whether `needle` occurs in `haystack`. */
function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = haystack.indexOf(needle[0]!); i !== -1; i = haystack.indexOf(needle[0]!, i + 1)) {
    if (i > haystack.length - needle.length) return false;
    for (let j = 1; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** The database file and its WAL, concatenated (a missing WAL counts as empty). */
async function sqliteBytes(fixture: MtlsNexus): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const suffix of ["", "-wal"]) {
    parts.push(await Deno.readFile(join(fixture.dir, "data", SQLITE_FILE_NAME + suffix)).catch(() => new Uint8Array()));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) out.set(part, (at += part.length) - part.length);
  return out;
}

Deno.test("mTLS + sqlite: destroy and metadata delete leave no sealed byte of theirs in the file", async () => {
  await withSqlite(async (fixture) => {
    const admin = await fixture.client(SUPERUSER);
    const store = fixture.nexus.deps.store as SqliteStore;
    await admin.putSecret("gone/one", { v: "first" });
    await admin.putSecret("gone/one", { v: "second" });
    await admin.putSecret("gone/all", { v: "whole" });
    const before = await store.readSecret("gone/one");
    const destroyed = before!.versions.get(1)!.sealed.slice(-24);
    const kept = before!.versions.get(2)!.sealed.slice(-24);
    const removed = (await store.readSecret("gone/all"))!.versions.get(1)!.sealed.slice(-24);
    assert.ok(await store.checkpoint());
    let bytes = await sqliteBytes(fixture);
    for (const needle of [destroyed, kept, removed]) assert.ok(containsBytes(bytes, needle), "sealed bytes on disk");

    await admin.destroySecret("gone/one", [1]);
    await admin.deleteSecretMetadata("gone/all");
    await rejectsWith(admin.getSecret("gone/one", 1), 404, "api_not_found");
    await rejectsWith(admin.getSecretMetadata("gone/all"), 404, "api_not_found");
    assert.deepEqual(await admin.getSecret("gone/one"), { v: "second" });
    const meta = await admin.getSecretMetadata("gone/one");
    assert.equal(meta.versions["1"]!.destroyed, true);
    assert.ok(await store.checkpoint());
    bytes = await sqliteBytes(fixture);
    assert.ok(!containsBytes(bytes, destroyed), "the destroyed version's bytes are overwritten");
    assert.ok(!containsBytes(bytes, removed), "the removed path's bytes are overwritten");
    assert.ok(containsBytes(bytes, kept), "the other version is still there");
  });
});

Deno.test("mTLS + postgres: destroy and metadata delete remove the rows' sealed bytes", async () => {
  await withTwoOnPostgres(async (a, b) => {
    const [admin, other] = [await a.client(SUPERUSER), await b.client(SUPERUSER)];
    await admin.putSecret("gone/one", { v: "first" });
    await admin.putSecret("gone/one", { v: "second" });
    await admin.putSecret("gone/all", { v: "whole" });
    await other.destroySecret("gone/one", [1]);
    await other.deleteSecretMetadata("gone/all");
    assert.equal((await admin.getSecretMetadata("gone/one")).versions["1"]!.destroyed, true);
    await rejectsWith(admin.getSecretMetadata("gone/all"), 404);
    const sql = postgres(a.postgresUrl!, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`SELECT path, version, length(sealed) AS n FROM secret_versions ORDER BY path, version`;
      assert.deepEqual(rows.map((r) => [r.path, r.version, r.n > 0]), [["gone/one", 1, false], ["gone/one", 2, true]]);
    } finally {
      await sql.end();
    }
  });
});

Deno.test("mTLS + sqlite and postgres: custom metadata round-trips and is sealed at rest", async () => {
  const check = async (client: NexusClient, reader: NexusClient) => {
    await client.putSecret("meta/db", { pass: "x" });
    await client.putSecretMetadata("meta/db", { customMetadata: { owner: "owner-label-7f3a", rotation: "90d" } });
    const meta = await reader.getSecretMetadata("meta/db");
    assert.deepEqual(meta.metadata.customMetadata, { owner: "owner-label-7f3a", rotation: "90d" });
    assert.equal(meta.metadata.currentVersion, 1);
    await rejectsWith(client.putSecretMetadata("meta/db", { customMetadata: { k: "v".repeat(513) } }), 400);
    await rejectsWith(client.putSecretMetadata("meta/none", { customMetadata: { k: "v" } }), 404);
  };
  await withSqlite(async (fixture) => {
    const admin = await fixture.client(SUPERUSER);
    await check(admin, admin);
    assert.ok(await (fixture.nexus.deps.store as SqliteStore).checkpoint());
    const bytes = await sqliteBytes(fixture);
    assert.ok(!containsBytes(bytes, new TextEncoder().encode("owner-label-7f3a")), "no plaintext label on disk");
  });
  await withTwoOnPostgres(async (a, b) => {
    await check(await a.client(SUPERUSER), await b.client(SUPERUSER));
    const sql = postgres(a.postgresUrl!, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`SELECT custom_metadata FROM secrets WHERE path = 'meta/db'`;
      const text = new TextDecoder("latin1").decode(row!.custom_metadata as Uint8Array);
      assert.ok(text.length > 0 && !text.includes("owner-label-7f3a"));
    } finally {
      await sql.end();
    }
  });
});

/** Polls `check` every 50 ms until it holds; fails after `ms`. */
async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("mTLS + sqlite: a real 1s TTL — reads stop at expiry, the sweep then destroys the bytes on disk", async () => {
  await withSqlite(async (fixture) => {
    const admin = await fixture.client(SUPERUSER);
    const store = fixture.nexus.deps.store as SqliteStore;
    await admin.putSecret("ttl/whole", { v: "whole" }, { ttl: "1s" });
    await admin.putSecret("ttl/version", { v: "kept" });
    await admin.putSecret("ttl/version", { v: "short" }, { versionTtl: 1 });
    const meta = await admin.getSecretMetadata("ttl/whole");
    const expiresAt = Date.parse(meta.metadata.expiresAt!);
    assert.ok(expiresAt > Date.now() && expiresAt <= Date.now() + 1000, `expiresAt ${meta.metadata.expiresAt}`);
    assert.ok((await admin.getSecretMetadata("ttl/version")).versions["2"]!.expiresAt);
    const sealedWhole = (await store.readSecret("ttl/whole"))!.versions.get(1)!.sealed.slice(-24);
    const sealedShort = (await store.readSecret("ttl/version"))!.versions.get(2)!.sealed.slice(-24);
    assert.deepEqual(await admin.getSecret("ttl/whole"), { v: "whole" });
    await until(
      () => admin.getSecret("ttl/whole").then(() => false, (e) => e instanceof ApiCallError && e.status === 404),
      "the expired secret reads 404",
    );
    // Written a moment after the other, so it may expire a moment later.
    await until(async () => (await admin.getSecret("ttl/version")).v === "kept", "the expired version is skipped");
    await rejectsWith(admin.getSecret("ttl/version", 2), 404, "api_not_found");
    await until(async () => (await store.readSecret("ttl/whole")) === undefined, "the sweep removes the secret");
    await until(
      async () => (await store.readSecret("ttl/version"))!.versions.get(2)!.sealed.length === 0,
      "the sweep destroys the version",
    );
    assert.equal((await admin.getSecretMetadata("ttl/version")).versions["2"]!.destroyed, true);
    assert.ok(await store.checkpoint());
    const bytes = await sqliteBytes(fixture);
    assert.ok(!containsBytes(bytes, sealedWhole) && !containsBytes(bytes, sealedShort), "no expired bytes on disk");
  }, { SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "200ms" });
});

Deno.test("mTLS + postgres, two Nexus: both sweep, one pass at a time (advisory lock), each expired path once", async () => {
  const reports: Array<SweepReport & { instance: number }> = [];
  const db = await createTestDatabase();
  const ca = await devCa();
  const started: MtlsNexus[] = [];
  try {
    for (const instance of [0, 1]) {
      started.push(
        await startMtlsNexus(ca, {
          backend: "postgres",
          postgresUrl: db.url,
          env: { SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "100ms", SPIKE_NEXUS_EXPIRY_SWEEP_BATCH: "10" },
          onSweep: (report) => reports.push({ ...report, instance }),
        }),
      );
    }
    const [a, b] = [await started[0]!.client(SUPERUSER), await started[1]!.client(SUPERUSER)];
    const count = 120;
    await Promise.all(
      Array.from({ length: count }, (_, i) => (i % 2 ? a : b).putSecret(`exp/${i}`, { v: String(i) }, { ttl: "1s" })),
    );
    await a.putSecret("exp/keep", { v: "kept" });
    await until(async () => (await a.listSecrets()).length === 1, "every expired secret is swept", 20_000);
    assert.deepEqual(await b.listSecrets(), ["exp/keep"]);
    // A pass is reported once its lock's transaction has committed, a round trip after its last removal:
    // stop both sweepers (each waits for its pass in flight) so every report is in.
    await Promise.all(started.map((f) => f.nexus.sweeper?.stop()));
    const ran = reports.filter((r) => r.removedSecrets > 0);
    assert.equal(ran.reduce((n, r) => n + r.removedSecrets, 0), count, "each expired secret removed exactly once");
    // Each removal is in exactly one instance's audit trail, after that batch's intent named it.
    const removed = started.flatMap((f) => f.sweeps.flatMap((r) => r.phase === "done" ? r.removed : []));
    assert.deepEqual(removed.toSorted(), Array.from({ length: count }, (_, i) => `exp/${i}`).toSorted());
    for (const fixture of started) {
      const intents = new Map(fixture.sweeps.flatMap((r) => r.phase === "intent" ? [[r.trail, r.paths]] : []));
      for (const record of fixture.sweeps) {
        if (record.phase !== "done") continue;
        for (const path of record.removed) assert.ok(intents.get(record.trail)?.includes(path), path);
      }
    }
    const sorted = [...reports].sort((x, y) => x.startedMs - y.startedMs);
    for (let i = 1; i < sorted.length; i++) {
      const [prev, next] = [sorted[i - 1]!, sorted[i]!];
      if (prev.instance !== next.instance) {
        assert.ok(
          next.startedMs >= prev.endedMs - 1,
          `passes of the two instances overlap: ${JSON.stringify([prev, next])}`,
        );
      }
    }
  } finally {
    await Promise.all(started.map((f) => f.close()));
    await db.drop();
  }
});

/** Writes `count` secrets straight into the SQLite file, in one transaction per 10,000 (seeding, not testing writes). */
function seedSqlite(file: string, paths: (i: number) => string, count: number): void {
  const db = openSqliteDatabase(file);
  try {
    const now = new Date();
    const record = {
      revision: 0,
      currentVersion: 1,
      oldestVersion: 1,
      createdTime: now,
      updatedTime: now,
      maxVersions: 10,
      versions: new Map([[1, {
        version: 1,
        createdTime: now,
        deletedTime: null,
        sealed: new Uint8Array([1, 2, 3]),
        keyVersion: 1,
      }]]),
    };
    for (let start = 0; start < count; start += 10_000) {
      const calls = Array.from({ length: Math.min(10_000, count - start) }, (_, i) => ({
        name: "writeSecret" as const,
        args: [paths(start + i), 0, record] as [string, number, typeof record],
      }));
      for (const outcome of db.writeBatch(calls)) assert.ok(outcome.ok && outcome.value === true);
    }
  } finally {
    db.close();
  }
}

Deno.test("mTLS + sqlite: 100,000 paths listed in pages — each request reads a bounded number of rows", async () => {
  await withSqlite(async (fixture) => {
    const store = fixture.nexus.deps.store as SqliteStore;
    const count = 100_000;
    // Every 1,000th path belongs to team-7; the rest to other teams.
    const pathOf = (i: number) => `teams/${i % 1000 === 7 ? "team-7" : `t${i % 97}`}/${String(i).padStart(6, "0")}`;
    seedSqlite(store.file, pathOf, count);
    // Count the rows the store hands out per request.
    let rowsThisRequest = 0;
    let mostRowsPerRequest = 0;
    const page = store.listSecretPathsPage.bind(store);
    store.listSecretPathsPage = async (query) => {
      const rows = await page(query);
      rowsThisRequest += rows.length;
      return rows;
    };
    const admin = await fixture.client(SUPERUSER);
    const seen = new Set<string>();
    let pages = 0;
    let cursor: string | undefined;
    let previous = "";
    do {
      rowsThisRequest = 0;
      const result = await admin.listSecretsPage({ prefix: "teams/", limit: 1000, ...(cursor ? { cursor } : {}) });
      mostRowsPerRequest = Math.max(mostRowsPerRequest, rowsThisRequest);
      assert.ok(result.keys.length <= 1000);
      for (const key of result.keys) {
        assert.ok(key > previous, "sorted, no repeats across pages");
        previous = key;
        seen.add(key);
      }
      pages++;
      cursor = result.cursor;
    } while (cursor && pages < 200);
    assert.equal(seen.size, count);
    assert.ok(pages >= 100 && pages <= 101, `${pages} pages`);
    assert.ok(mostRowsPerRequest <= 1100, `one request read ${mostRowsPerRequest} rows`);

    // A workload granted one team reads that team's range only: 100 paths, not 100,000 rows.
    await admin.putPolicy({
      name: "team-7",
      spiffeidPattern: "^spiffe://spike\\.ist/team-7/svc$",
      pathPattern: "^teams/team-7/",
      permissions: ["read"],
    });
    const team = await fixture.client("spiffe://spike.ist/team-7/svc");
    rowsThisRequest = 0;
    const own = await team.listSecretsPage({ limit: 1000 });
    assert.equal(own.keys.length, 100);
    assert.equal(own.cursor, undefined);
    assert.ok(rowsThisRequest <= 100, `the scoped list read ${rowsThisRequest} rows`);
    assert.ok(own.keys.every((k) => k.startsWith("teams/team-7/")));
    await rejectsWith(team.listSecrets(), 401, "access_unauthorized");
  });
});

Deno.test("mTLS + sqlite and postgres: move is atomic — of 8 concurrent moves of one secret, one lands", async () => {
  const race = async (clients: NexusClient[]) => {
    await clients[0]!.putSecret("mv/src", { v: "1" });
    await clients[0]!.putSecret("mv/src", { v: "2" });
    await clients[0]!.putSecretMetadata("mv/src", { customMetadata: { owner: "o" } });
    const results = await Promise.allSettled(clients.map((c, i) => c.moveSecret("mv/src", `mv/dst-${i}`)));
    const landed = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(landed.length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof ApiCallError && r.reason.status === 404, String(r.reason));
      }
    }
    const to = `mv/dst-${landed[0]}`;
    assert.deepEqual(await clients[1]!.listSecretsPage({ prefix: "mv/" }), { keys: [to] });
    assert.deepEqual(await clients[1]!.getSecret(to), { v: "2" });
    assert.deepEqual(await clients[1]!.getSecret(to, 1), { v: "1" });
    assert.deepEqual((await clients[1]!.getSecretMetadata(to)).metadata.customMetadata, { owner: "o" });
    await clients[0]!.putSecret("mv/other", { v: "x" });
    await rejectsWith(clients[0]!.moveSecret(to, "mv/other"), 409, "api_conflict");
  };
  await withSqlite(async (fixture) => {
    await race(await Promise.all(Array.from({ length: 8 }, () => fixture.client(SUPERUSER))));
  });
  await withTwoOnPostgres(async (a, b) => {
    await race(await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).client(SUPERUSER))));
  });
});

Deno.test("mTLS + sqlite: getMany reads 100 paths in one request, each authorized on its own", async () => {
  await withSqlite(async (fixture) => {
    const admin = await fixture.client(SUPERUSER);
    for (let i = 0; i < 60; i++) await admin.putSecret(`many/${i < 30 ? "mine" : "theirs"}/${i}`, { n: String(i) });
    await admin.putPolicy({
      name: "mine",
      spiffeidPattern: "^spiffe://spike\\.ist/app/reader$",
      pathPattern: "^many/mine/",
      permissions: ["read"],
    });
    const reader = await fixture.client("spiffe://spike.ist/app/reader");
    const paths = [
      ...Array.from({ length: 60 }, (_, i) => `many/${i < 30 ? "mine" : "theirs"}/${i}`),
      ...Array.from({ length: 40 }, (_, i) => `many/mine/missing-${i}`),
    ];
    const results = await reader.getSecrets(paths);
    assert.equal(Object.keys(results).length, 100);
    for (let i = 0; i < 30; i++) assert.deepEqual(results[`many/mine/${i}`], { data: { n: String(i) } });
    for (let i = 30; i < 60; i++) assert.deepEqual(results[`many/theirs/${i}`], { err: "access_unauthorized" });
    for (let i = 0; i < 40; i++) assert.deepEqual(results[`many/mine/missing-${i}`], { err: "api_not_found" });
    await rejectsWith(reader.getSecrets([...paths, "many/one-too-many"]), 400, "api_bad_request");
    const record = fixture.audit.findLast((r) => r.action === "getMany" && r.status === 200)!;
    assert.equal(record.spiffeId, "spiffe://spike.ist/app/reader");
    assert.equal(record.resources!.length, 100);
    assert.equal(record.resources!.filter((r) => r.outcome === "denied").length, 30);
  });
});
