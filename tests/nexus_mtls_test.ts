/**
 * Nexus over real mutual TLS, with the SQLite store on disk and a root key
 * installed by hand: the secret lifecycle through the typed client,
 * identities checked on the wire, version pruning visible in the database
 * file, concurrent writers, and no plaintext value anywhere on disk.
 */
import assert from "node:assert/strict";
import https from "node:https";
import { join } from "node:path";
import { ApiCallError } from "../lib/client/errors.ts";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { generateRootKey } from "../lib/crypto/root_key.ts";
import { splitSecret } from "../lib/crypto/shamir.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { installRootKey } from "../lib/nexus/key_installer.ts";
import { type RunningNexus, startNexus } from "../lib/nexus/server.ts";
import { createDevCa, type DevCa } from "../lib/spiffe/dev_ca.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { SQLITE_FILE_NAME, type SqliteStore } from "../lib/store/sqlite_store.ts";
import type { SqliteWorkerStore } from "../lib/store/sqlite_worker_store.ts";

const WEB_ID = "spiffe://spike.ist/app/web";
const OTHER_ID = "spiffe://spike.ist/app/other";

let pki: Promise<DevCa> | undefined;
/** One CA for the whole file (key generation is the slow part). */
function devCa(): Promise<DevCa> {
  pki ??= createDevCa();
  return pki;
}

/** A running Nexus over SQLite in a fresh temp dir, with a fresh root key installed. */
interface Fixture {
  readonly nexus: RunningNexus;
  readonly dir: string;
  readonly url: string;
  readonly store: SqliteStore;
  /** A client speaking as `spiffeId` (closed by `close`). */
  client(spiffeId: string): Promise<NexusClient>;
  close(): Promise<void>;
}

async function startFixture(env: Record<string, string> = {}, rootKey?: Uint8Array): Promise<Fixture> {
  const ca = await devCa();
  const dir = await Deno.makeTempDir({ prefix: "spike_nexus_mtls_" });
  const config = resolveNexusConfig({
    HOME: dir,
    SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
    SPIKE_NEXUS_BACKEND_STORE: "sqlite",
    SPIKE_NEXUS_DATA_DIR: join(dir, "data"),
    SPIKE_NEXUS_KEEPER_PEERS: "",
    SPIKE_NEXUS_AUDIT_LOG: join(dir, "audit.log"),
    ...env,
  });
  const nexus = await startNexus({
    config,
    identity: createStaticSource(await ca.issue(spikeIdFor("nexus"))),
    log: silentLogger,
  });
  const clients: MtlsClient[] = [];
  const fixture: Fixture = {
    nexus,
    dir,
    url: `https://127.0.0.1:${nexus.port}`,
    store: nexus.deps.store as SqliteStore,
    async client(spiffeId) {
      const transport = createMtlsClient({
        identity: createStaticSource(await ca.issue(spiffeId)),
        serverId: (id) => isNexus(id),
        timeoutMs: 20_000,
      });
      clients.push(transport);
      return new NexusClient(fixture.url, transport);
    },
    async close() {
      for (const c of clients) c.close();
      await nexus.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  try {
    const key = rootKey?.slice() ?? generateRootKey(systemRandom);
    try {
      assert.equal(await installRootKey(nexus.deps, key), "installed");
    } finally {
      key.fill(0);
    }
  } catch (error) {
    await fixture.close();
    throw error;
  }
  return fixture;
}

/** Asserts that `call` fails with HTTP `status`. */
async function rejectsWith(call: () => Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof ApiCallError, String(error));
    assert.equal(error.status, status);
    return true;
  });
}

/** Where `needle` occurs in `haystack`, or -1. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return 0;
  const first = needle[0]!;
  outer: for (
    let i = haystack.indexOf(first);
    i !== -1 && i <= haystack.length - needle.length;
    i = haystack.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The bytes of the database file and its WAL (missing files count as empty). */
async function databaseFiles(fixture: Fixture): Promise<Array<{ name: string; bytes: Uint8Array }>> {
  const out = [];
  for (const suffix of ["", "-wal"]) {
    const name = join(fixture.dir, "data", SQLITE_FILE_NAME + suffix);
    try {
      out.push({ name, bytes: await Deno.readFile(name) });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return out;
}

/** Raw HTTPS POST without a client certificate; resolves with status and body. */
function postWithoutCert(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request({
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      rejectUnauthorized: false,
      headers: { "content-type": "application/json" },
      timeout: 10_000,
    }, (response) => {
      const chunks: Uint8Array[] = [];
      response.on("data", (c: Uint8Array) => chunks.push(c));
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          body: new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c]))),
        }));
    });
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.end("{}");
  });
}

Deno.test("mTLS + sqlite: the full secret lifecycle, identities checked on the wire", async () => {
  const fixture = await startFixture();
  try {
    const admin = await fixture.client(spikeIdFor("pilot_superuser"));
    await admin.putSecret("app/db", { user: "admin", pass: "v1-pass" });
    await admin.putSecret("app/db", { user: "admin", pass: "v2-pass" });
    await admin.putSecret("app/other", { token: "t" });
    assert.deepEqual(await admin.getSecret("app/db"), { user: "admin", pass: "v2-pass" });
    assert.deepEqual(await admin.getSecret("app/db", 1), { user: "admin", pass: "v1-pass" });
    assert.deepEqual(await admin.listSecrets(), ["app/db", "app/other"]);

    let meta = await admin.getSecretMetadata("app/db");
    assert.deepEqual(Object.keys(meta.versions), ["1", "2"]);
    assert.equal(meta.metadata.currentVersion, 2);
    assert.equal(meta.metadata.oldestVersion, 1);
    assert.equal(meta.metadata.maxVersions, 10);
    assert.equal(meta.versions["2"]!.deletedTime, null);
    assert.ok(!Number.isNaN(Date.parse(meta.metadata.createdTime)));

    // Soft delete of the current version: current moves down, the version is 404.
    await admin.deleteSecret("app/db", [2]);
    assert.deepEqual(await admin.getSecret("app/db"), { user: "admin", pass: "v1-pass" });
    await rejectsWith(() => admin.getSecret("app/db", 2), 404);
    meta = await admin.getSecretMetadata("app/db");
    assert.equal(meta.metadata.currentVersion, 1);
    assert.ok(!Number.isNaN(Date.parse(meta.versions["2"]!.deletedTime!)));

    // Undelete names versions; 0 (SPIKE's pilot default) and [] mean the
    // current version, which is never deleted: 404, and nothing changes.
    await rejectsWith(() => admin.undeleteSecret("app/db", [0]), 404);
    await rejectsWith(() => admin.undeleteSecret("app/db", []), 404);
    await rejectsWith(() => admin.undeleteSecret("app/db", [7, 1]), 404);
    assert.deepEqual(await admin.getSecret("app/db"), { user: "admin", pass: "v1-pass" });
    await admin.undeleteSecret("app/db", [2, 7]);
    assert.deepEqual(await admin.getSecret("app/db"), { user: "admin", pass: "v2-pass" });
    assert.equal((await admin.getSecretMetadata("app/db")).versions["2"]!.deletedTime, null);

    // Delete everything: the path stays listed and its metadata says so
    // (current version 0); reads are 404. [] then restores the newest one.
    await admin.deleteSecret("app/db", [1, 2]);
    await rejectsWith(() => admin.getSecret("app/db"), 404);
    await rejectsWith(() => admin.getSecretMetadata("app/db", 2), 404);
    assert.deepEqual(await admin.listSecrets(), ["app/db", "app/other"]);
    meta = await admin.getSecretMetadata("app/db");
    assert.equal(meta.metadata.currentVersion, 0);
    assert.ok(Object.values(meta.versions).every((v) => v.deletedTime !== null));
    await rejectsWith(() => admin.undeleteSecret("app/db", [0]), 404);
    await admin.undeleteSecret("app/db", []);
    assert.deepEqual(await admin.getSecret("app/db"), { user: "admin", pass: "v2-pass" });
    await admin.undeleteSecret("app/db", [1]);
    assert.deepEqual(await admin.getSecret("app/db", 1), { user: "admin", pass: "v1-pass" });
    await rejectsWith(() => admin.undeleteSecret("app/missing", []), 404);
    await rejectsWith(() => admin.getSecret("app/missing"), 404);
    await rejectsWith(() => admin.deleteSecret("app/missing"), 404);

    // A workload: nothing without a policy, exactly what the policy says with one.
    const web = await fixture.client(WEB_ID);
    const other = await fixture.client(OTHER_ID);
    await rejectsWith(() => web.getSecret("app/db"), 401);
    await admin.putPolicy({
      name: "web",
      spiffeidPattern: "^spiffe://spike\\.ist/app/web$",
      pathPattern: "^app/db$",
      permissions: ["read"],
    });
    assert.deepEqual(await web.getSecret("app/db"), { user: "admin", pass: "v2-pass" });
    await rejectsWith(() => web.getSecret("app/other"), 401);
    await rejectsWith(() => web.putSecret("app/db", { pass: "stolen" }), 401);
    await rejectsWith(() => web.listSecrets(), 401);
    await rejectsWith(() => other.getSecret("app/db"), 401);
    assert.deepEqual(await admin.listPolicies(), [{ id: "web", name: "web" }]);
    assert.equal((await admin.getPolicy("web")).spiffiedPattern, "^spiffe://spike\\.ist/app/web$");
    await admin.deletePolicy("web");
    await rejectsWith(() => web.getSecret("app/db"), 401);

    // The cipher API over the wire, both modes.
    const sealed = await admin.encryptBytes(new Uint8Array([1, 2, 3, 250]));
    assert.deepEqual(await admin.decryptBytes(sealed), new Uint8Array([1, 2, 3, 250]));
    const envelope = await admin.encryptJson(btoa("json mode"));
    assert.equal(await admin.decryptJson(envelope), btoa("json mode"));

    // Without a client certificate: 401 on the API, 200 on /health.
    const bare = await postWithoutCert(fixture.nexus.port, "/v1/store/secrets?action=list");
    assert.equal(bare.status, 401);
    assert.deepEqual(JSON.parse(bare.body), { err: "access_unauthorized" });

    // The audit file: one line per API call, each outcome as it happened, no secret in any line.
    const auditFile = join(fixture.dir, "audit.log");
    assert.equal((await Deno.stat(auditFile)).mode! & 0o777, 0o600);
    const lines = (await Deno.readTextFile(auditFile)).trimEnd().split("\n").map((line) => JSON.parse(line));
    // Besides the request records, the chain's own: its start and the arrival of the audit key.
    assert.deepEqual(lines.filter((r) => r.type === "audit-chain").map((r) => r.event), ["start", "key"]);
    const audit = lines.filter((r) => r.type === "audit");
    assert.equal(audit.length, 47);
    assert.equal(lines.length, 49);
    const stolen = audit.find((r) => r.spiffeId === WEB_ID && r.permissions?.[0] === "write");
    assert.deepEqual(
      [stolen?.route, stolen?.resource, stolen?.status, stolen?.outcome],
      ["/v1/store/secrets", "app/db", 401, "denied"],
    );
    assert.deepEqual(
      [audit.at(-1).spiffeId, audit.at(-1).action, audit.at(-1).outcome],
      [null, "list", "denied"],
    );
    const text = await Deno.readTextFile(auditFile);
    for (const secret of ["v1-pass", "v2-pass", "stolen", btoa("json mode"), "admin"]) {
      assert.ok(!text.includes(secret), `audit holds ${secret}`);
    }
  } finally {
    await fixture.close();
  }
});

Deno.test("mTLS + sqlite: a client refuses a server that is not Nexus", async () => {
  const fixture = await startFixture();
  try {
    const ca = await devCa();
    const transport = createMtlsClient({
      identity: createStaticSource(await ca.issue(spikeIdFor("pilot_superuser"))),
      serverId: (id) => id === spikeIdFor("keeper"),
    });
    try {
      await assert.rejects(() => new NexusClient(fixture.url, transport).listSecrets(), /not allowed/);
    } finally {
      transport.close();
    }
    // A client certificate from another CA is no identity at all.
    const stranger = await createDevCa();
    const foreign = createMtlsClient({
      identity: createStaticSource(await stranger.issue(spikeIdFor("pilot_superuser"))),
      serverId: () => true,
    });
    try {
      // The stranger's bundle does not hold the Nexus CA either: no connection.
      await assert.rejects(() => new NexusClient(fixture.url, foreign).listSecrets());
    } finally {
      foreign.close();
    }
  } finally {
    await fixture.close();
  }
});

Deno.test("mTLS + sqlite: pruned versions are physically gone from the database file", async () => {
  const fixture = await startFixture({ SPIKE_NEXUS_MAX_SECRET_VERSIONS: "3" });
  try {
    const admin = await fixture.client(spikeIdFor("pilot_superuser"));
    const sealedOf: Uint8Array[] = [];
    for (let i = 1; i <= 5; i++) {
      await admin.putSecret("app/pruned", { value: `version ${i}` });
      const record = await fixture.store.readSecret("app/pruned");
      sealedOf[i] = record!.versions.get(i)!.sealed.slice();
    }
    const meta = await admin.getSecretMetadata("app/pruned");
    assert.deepEqual(Object.keys(meta.versions), ["3", "4", "5"]);
    assert.equal(meta.metadata.oldestVersion, 3);
    assert.equal(meta.metadata.currentVersion, 5);
    await rejectsWith(() => admin.getSecret("app/pruned", 1), 404);
    await rejectsWith(() => admin.getSecret("app/pruned", 2), 404);
    assert.deepEqual(await admin.getSecret("app/pruned", 3), { value: "version 3" });

    assert.equal(await fixture.store.checkpoint(), true);
    const files = await databaseFiles(fixture);
    const db = files.find((f) => f.name.endsWith(SQLITE_FILE_NAME))!;
    for (const { name, bytes } of files) {
      for (const pruned of [1, 2]) {
        assert.equal(indexOfBytes(bytes, sealedOf[pruned]!), -1, `pruned version ${pruned} still in ${name}`);
      }
    }
    // The scan does find what is kept, so the absence above means something.
    for (const kept of [3, 4, 5]) assert.notEqual(indexOfBytes(db.bytes, sealedOf[kept]!), -1, `version ${kept}`);
  } finally {
    await fixture.close();
  }
});

Deno.test("mTLS + sqlite: 30 concurrent clients putting one path make 30 distinct versions", async () => {
  const fixture = await startFixture({ SPIKE_NEXUS_MAX_SECRET_VERSIONS: "50" });
  try {
    const writers = await Promise.all(
      Array.from({ length: 30 }, () => fixture.client(spikeIdFor("pilot_superuser"))),
    );
    await Promise.all(writers.map((client, i) => client.putSecret("app/contended", { writer: String(i) })));
    const admin = writers[0]!;
    const meta = await admin.getSecretMetadata("app/contended");
    assert.deepEqual(Object.keys(meta.versions).map(Number).sort((a, b) => a - b), range(1, 30));
    assert.equal(meta.metadata.currentVersion, 30);
    const seen = await Promise.all(range(1, 30).map((v) => admin.getSecret("app/contended", v)));
    assert.deepEqual(seen.map((s) => Number(s.writer)).sort((a, b) => a - b), range(0, 29));
  } finally {
    await fixture.close();
  }
});

Deno.test("mTLS + sqlite-worker: concurrent clients on the worker-committed store lose nothing", async () => {
  const fixture = await startFixture({
    SPIKE_NEXUS_BACKEND_STORE: "sqlite-worker",
    SPIKE_NEXUS_MAX_SECRET_VERSIONS: "50",
  });
  try {
    const writers = await Promise.all(
      Array.from({ length: 20 }, () => fixture.client(spikeIdFor("pilot_superuser"))),
    );
    await Promise.all(writers.map((client, i) => client.putSecret("app/contended", { writer: String(i) })));
    const meta = await writers[0]!.getSecretMetadata("app/contended");
    assert.deepEqual(Object.keys(meta.versions).map(Number).sort((a, b) => a - b), range(1, 20));
    const seen = await Promise.all(range(1, 20).map((v) => writers[0]!.getSecret("app/contended", v)));
    assert.deepEqual(seen.map((x) => Number(x.writer)).sort((a, b) => a - b), range(0, 19));
    // The writes really went through the worker.
    assert.equal(
      fixture.store.thread,
      "worker",
      "SPIKE_NEXUS_BACKEND_STORE=sqlite-worker did not open the worker store",
    );
    assert.ok((fixture.store as SqliteWorkerStore).stats().writes >= 20);
  } finally {
    await fixture.close();
  }
});

Deno.test("mTLS + sqlite: SPIKE_NEXUS_DB_SYNCHRONOUS reaches the store's connection; puts work at each level", async () => {
  for (const [level, pragma] of [["full", 1], ["normal", 1], ["off", 0]] as const) {
    const fixture = await startFixture(level === "full" ? {} : { SPIKE_NEXUS_DB_SYNCHRONOUS: level });
    try {
      assert.equal(fixture.store.thread, "main");
      assert.equal(fixture.store.synchronous, level);
      // At full the in-thread store runs its connection at NORMAL and fsyncs the WAL itself.
      assert.equal(await fixture.store.synchronousPragma(), pragma);
      const admin = await fixture.client(spikeIdFor("pilot_superuser"));
      await Promise.all(range(0, 9).map((i) => admin.putSecret(`app/level/${i}`, { level })));
      assert.deepEqual(await admin.getSecret("app/level/9"), { level });
      assert.ok(fixture.store.stats().writes >= 10);
    } finally {
      await fixture.close();
    }
  }
});

Deno.test("mTLS + sqlite: no plaintext value reaches the database file or its WAL", async () => {
  const fixture = await startFixture();
  try {
    const admin = await fixture.client(spikeIdFor("pilot_superuser"));
    const marker = (i: number) => `PLAINTEXT-MARKER-${i}-${crypto.randomUUID()}`;
    const values: string[] = [];
    for (let i = 0; i < 12; i++) {
      const value = marker(i);
      values.push(value);
      await admin.putSecret(`app/scan/${i % 3}`, { secret: value, [`k${i}`]: value.toLowerCase() });
    }
    await admin.deleteSecret("app/scan/0", []);
    await admin.undeleteSecret("app/scan/0", [4]);
    // Cipher API payloads are never stored; check anyway.
    const cipherInput = marker(99);
    values.push(cipherInput);
    await admin.encryptJson(btoa(cipherInput));

    const scan = async (when: string) => {
      const files = await databaseFiles(fixture);
      assert.ok(files.length > 0);
      const all = files.map((f) => new TextDecoder("latin1").decode(f.bytes)).join("\n");
      // Paths are stored in the clear by design: finding them shows the scan reads real data.
      assert.ok(all.includes("app/scan/1"), `${when}: the scan sees the stored paths`);
      for (const value of values) {
        assert.ok(!all.includes(value), `${when}: a plaintext value is on disk`);
        assert.ok(!all.includes(value.toLowerCase()), `${when}: a plaintext value is on disk`);
      }
      assert.ok(!all.includes("PLAINTEXT-MARKER"), `${when}: part of a plaintext value is on disk`);
      assert.ok(!all.includes("plaintext-marker"), `${when}: part of a plaintext value is on disk`);
    };
    await scan("before checkpoint");
    assert.equal(await fixture.store.checkpoint(), true);
    await scan("after checkpoint");
  } finally {
    await fixture.close();
  }
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("mTLS + sqlite: SPIKE_NEXUS_RATE_LIMIT answers a caller over its limit with 429, others go on", async () => {
  const fixture = await startFixture({ SPIKE_NEXUS_RATE_LIMIT: "0.05", SPIKE_NEXUS_RATE_LIMIT_BURST: "3" });
  try {
    const admin = await fixture.client(spikeIdFor("pilot_superuser"));
    const web = await fixture.client(WEB_ID);
    for (let i = 0; i < 3; i++) assert.deepEqual(await admin.listSecrets(), []);
    await rejectsWith(() => admin.listSecrets(), 429);
    await rejectsWith(() => web.getSecret("app/db"), 401); // its own bucket: refused by policy, not by rate
  } finally {
    await fixture.close();
  }
});

Deno.test("mTLS + sqlite: SPIKE wire edges — SPIFFE ID patterns, cipher algorithm names, restore with a key held", async () => {
  const rootKey = generateRootKey(systemRandom);
  const fixture = await startFixture({}, rootKey);
  try {
    const admin = await fixture.client(spikeIdFor("pilot_superuser"));
    const restore = await fixture.client(spikeIdFor("pilot_restore"));

    // A SPIFFE ID pattern must describe SPIFFE IDs: 400 for patterns that
    // match anything (.*) or nothing (^x$); nothing is stored.
    const policy = (spiffeidPattern: string) => ({
      name: "p",
      spiffeidPattern,
      pathPattern: "^app/",
      permissions: ["read" as const],
    });
    for (const pattern of [".*", "^x$", "app/web", "^spiffe://$", "^spiffe://Spike\\.ist/app$"]) {
      await rejectsWith(() => admin.putPolicy(policy(pattern)), 400);
    }
    assert.deepEqual(await admin.listPolicies(), []);
    for (const pattern of ["^spiffe://spike\\.ist/app/web$", "spiffe://spike\\.ist/app/", "^spiffe://.*"]) {
      assert.equal(await admin.putPolicy(policy(pattern)), "p");
      assert.equal((await admin.getPolicy("p")).spiffiedPattern, pattern);
    }

    // Cipher JSON mode: every spelling of AES-GCM SPIKE's pilot may send works both ways.
    for (const algorithm of ["AES-GCM", "AES-256-GCM", "aes-256-gcm", "Aes-Gcm"]) {
      const envelope = await admin.encryptJson(btoa("algo"), algorithm);
      assert.equal(await admin.decryptJson(envelope, algorithm), btoa("algo"));
    }
    await rejectsWith(() => admin.encryptJson(btoa("algo"), "ChaCha20-Poly1305"), 400);
    const sealed = await admin.encryptJson(btoa("algo"));
    await rejectsWith(() => admin.decryptJson(sealed, "AES-128-GCM"), 400);

    // Restore on a Nexus that holds its key: a shard of that key is confirmed
    // (nothing collected), any other is refused; the key and data stay.
    await admin.putSecret("app/kept", { k: "v" });
    const shares = splitSecret(rootKey, 3, 2);
    assert.deepEqual(await restore.restore(2, shares[1]!.value), { collected: 0, remaining: 0, restored: true });
    await rejectsWith(() => restore.restore(2, shares[0]!.value), 400);
    const otherKey = splitSecret(generateRootKey(systemRandom), 3, 2);
    await rejectsWith(() => restore.restore(1, otherKey[0]!.value), 400);
    assert.deepEqual(await admin.getSecret("app/kept"), { k: "v" });
  } finally {
    rootKey.fill(0);
    await fixture.close();
  }
});
