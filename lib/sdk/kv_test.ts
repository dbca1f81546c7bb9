/**
 * The SDK's key-value calls [ours] against a real Nexus over mTLS (memory
 * store): check-and-set, patch, destroy, custom metadata, expiry, scoped
 * listing, move and batch read, with the typed errors a workload sees.
 */
import assert from "node:assert/strict";
import { resolveNexusConfig } from "../config/spike_config.ts";
import { silentLogger } from "../log/logger.ts";
import { memoryAuditSink } from "../nexus/audit.ts";
import { installRootKey } from "../nexus/key_installer.ts";
import { type RunningNexus, startNexus } from "../nexus/server.ts";
import { testRootKey } from "../nexus/testing.ts";
import { createDevCa, type DevCa } from "../spiffe/dev_ca.ts";
import { createStaticSource } from "../spiffe/static_source.ts";
import { BadRequestError, ConflictError, connect, NotFoundError, type SpikeClient, UnauthorizedError } from "./mod.ts";

const SUPERUSER = "spiffe://spike.ist/spike/pilot/role/superuser";
const WEB = "spiffe://spike.ist/app/web";

let pki: Promise<DevCa> | undefined;

/** Runs `use` with a Nexus (memory store, key installed) and SDK clients as the superuser and as WEB. */
async function withNexus(
  use: (admin: SpikeClient, web: SpikeClient, nexus: RunningNexus) => Promise<void>,
): Promise<void> {
  const ca = await (pki ??= createDevCa());
  const nexus = await startNexus({
    config: resolveNexusConfig({ SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0", SPIKE_NEXUS_BACKEND_STORE: "memory", HOME: "/" }),
    identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/nexus")),
    log: silentLogger,
    audit: memoryAuditSink(),
  });
  const clients: SpikeClient[] = [];
  try {
    await installRootKey(nexus.deps, testRootKey());
    const nexusUrl = `https://127.0.0.1:${nexus.port}`;
    for (const id of [SUPERUSER, WEB]) {
      clients.push(await connect({ nexusUrl, identity: createStaticSource(await ca.issue(id)), attempts: 1 }));
    }
    await use(clients[0]!, clients[1]!, nexus);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await nexus.close();
  }
}

Deno.test("sdk: putSecret with cas writes over the expected version only, else ConflictError", async () => {
  await withNexus(async (admin) => {
    await admin.putSecret("app/db", { pass: "one" }, { cas: 0 });
    await assert.rejects(admin.putSecret("app/db", { pass: "x" }, { cas: 0 }), (e) => {
      assert.ok(e instanceof ConflictError);
      assert.equal(e.status, 409);
      assert.equal(e.code, "api_conflict");
      return true;
    });
    await admin.putSecret("app/db", { pass: "two" }, { cas: 1 });
    assert.deepEqual(await admin.getSecret("app/db"), { pass: "two" });
  });
});

Deno.test("sdk: patchSecret merges and removes keys atomically; NotFoundError without a current version", async () => {
  await withNexus(async (admin) => {
    await admin.putSecret("app/db", { user: "u", pass: "one" });
    await Promise.all([
      admin.patchSecret("app/db", { pass: "two" }),
      admin.patchSecret("app/db", { port: "5432" }),
      admin.patchSecret("app/db", { user: null, role: "ro" }),
    ]);
    assert.deepEqual(await admin.getSecret("app/db"), { pass: "two", port: "5432", role: "ro" });
    await assert.rejects(admin.patchSecret("app/none", { a: "b" }), NotFoundError);
    await assert.rejects(admin.patchSecret("app/db", { a: "b" }, { cas: 1 }), ConflictError);
  });
});

Deno.test("sdk: destroySecret and deleteMetadata remove values for good", async () => {
  await withNexus(async (admin) => {
    await admin.putSecret("app/db", { v: "1" });
    await admin.putSecret("app/db", { v: "2" });
    await admin.destroySecret("app/db", [1]);
    const meta = await admin.getMetadata("app/db");
    assert.equal(meta.versions["1"]!.destroyed, true);
    await assert.rejects(admin.getSecret("app/db", { version: 1 }), NotFoundError);
    await admin.deleteMetadata("app/db");
    await assert.rejects(admin.getMetadata("app/db"), NotFoundError);
    await assert.rejects(admin.deleteMetadata("app/db"), NotFoundError);
  });
});

Deno.test("sdk: putMetadata sets custom metadata; getMetadata shows it", async () => {
  await withNexus(async (admin, web) => {
    await admin.putSecret("app/db", { v: "1" });
    await admin.putMetadata("app/db", { customMetadata: { owner: "team-a" } });
    assert.deepEqual((await admin.getMetadata("app/db")).metadata.customMetadata, { owner: "team-a" });
    await assert.rejects(web.putMetadata("app/db", { customMetadata: {} }), UnauthorizedError);
    await assert.rejects(admin.putMetadata("app/db", { customMetadata: { k: "v".repeat(600) } }), BadRequestError);
  });
});

Deno.test("sdk: expiry options on put, patch and putMetadata; getMetadata shows the times", async () => {
  await withNexus(async (admin) => {
    const at = new Date(Date.now() + 3_600_000);
    await admin.putSecret("app/db", { v: "1" }, { expiresAt: at, versionTtl: "2h" });
    let meta = await admin.getMetadata("app/db");
    assert.equal(meta.metadata.expiresAt, at.toISOString());
    assert.ok(Date.parse(meta.versions["1"]!.expiresAt!) > Date.now() + 3_500_000);
    await admin.patchSecret("app/db", { w: "2" }, { ttl: 60 });
    meta = await admin.getMetadata("app/db");
    assert.ok(Date.parse(meta.metadata.expiresAt!) <= Date.now() + 60_000);
    await admin.putMetadata("app/db", { expiresAt: null });
    assert.equal((await admin.getMetadata("app/db")).metadata.expiresAt, undefined);
    await assert.rejects(admin.putSecret("app/db", { v: "x" }, { ttl: "soon" }), BadRequestError);
  });
});

Deno.test("sdk: listSecretsPage and iterateSecrets list what the workload may read, page by page", async () => {
  await withNexus(async (admin, web) => {
    for (let i = 0; i < 25; i++) await admin.putSecret(`app/${String(i).padStart(2, "0")}`, { v: "1" });
    await admin.putSecret("other/x", { v: "1" });
    await admin.putPolicy({
      name: "web",
      spiffeIdPattern: "^spiffe://spike\\.ist/app/web$",
      pathPattern: "^app/1",
      permissions: ["read"],
    });
    const first = await admin.listSecretsPage({ limit: 10 });
    assert.equal(first.keys.length, 10);
    assert.ok(first.cursor);
    const second = await admin.listSecretsPage({ limit: 10, cursor: first.cursor! });
    assert.equal(second.keys[0], "app/10");
    const everything: string[] = [];
    for await (const path of admin.iterateSecrets("", { pageSize: 7 })) everything.push(path);
    assert.equal(everything.length, 26);
    const mine: string[] = [];
    for await (const path of web.iterateSecrets()) mine.push(path);
    assert.deepEqual(mine, Array.from({ length: 10 }, (_, i) => `app/1${i}`));
    assert.deepEqual((await web.listSecretsPage({ prefix: "other/" })).keys, []);
  });
});

Deno.test("sdk: moveSecret moves every version; ConflictError onto an existing path", async () => {
  await withNexus(async (admin) => {
    await admin.putSecret("app/a", { v: "1" });
    await admin.putSecret("app/a", { v: "2" });
    await admin.putSecret("app/taken", { v: "x" });
    await admin.moveSecret("app/a", "app/b");
    assert.deepEqual(await admin.getSecret("app/b", { version: 1 }), { v: "1" });
    await assert.rejects(admin.getSecret("app/a"), NotFoundError);
    await assert.rejects(admin.moveSecret("app/b", "app/taken"), ConflictError);
    await assert.rejects(admin.moveSecret("app/none", "app/c"), NotFoundError);
  });
});

Deno.test("sdk: getSecrets reads several paths, each authorized on its own", async () => {
  await withNexus(async (admin, web) => {
    await admin.putSecret("app/a", { v: "a" });
    await admin.putSecret("other/b", { v: "b" });
    await admin.putPolicy({
      name: "web",
      spiffeIdPattern: "^spiffe://spike\\.ist/app/web$",
      pathPattern: "^app/",
      permissions: ["read"],
    });
    assert.deepEqual(await web.getSecrets(["app/a", "app/none", "other/b"]), {
      "app/a": { data: { v: "a" } },
      "app/none": { err: "api_not_found" },
      "other/b": { err: "access_unauthorized" },
    });
    await assert.rejects(web.getSecrets([]), BadRequestError);
  });
});
