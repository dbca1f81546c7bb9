/**
 * The SDK against a real Nexus over mTLS: a workload reads the secrets its
 * policy grants, is refused the rest, and uses the cipher API.
 */
import assert from "node:assert/strict";
import { resolveNexusConfig } from "../config/spike_config.ts";
import { silentLogger } from "../log/logger.ts";
import { installRootKey } from "../nexus/key_installer.ts";
import { startNexus } from "../nexus/server.ts";
import { storePolicy, testRootKey } from "../nexus/testing.ts";
import { createDevCa, writeSvidFiles } from "../spiffe/dev_ca.ts";
import { createStaticSource } from "../spiffe/static_source.ts";
import {
  ApiCallError,
  BadRequestError,
  connect,
  connectSpike,
  IdentitySourceError,
  NotFoundError,
  UnauthorizedError,
} from "./mod.ts";
import { memoryAuditSink } from "../nexus/audit.ts";

Deno.test("a workload reads what its policy grants through the SDK, from SVID files", async () => {
  const ca = await createDevCa();
  const nexus = await startNexus({
    config: resolveNexusConfig({ SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0", SPIKE_NEXUS_BACKEND_STORE: "memory", HOME: "/" }),
    identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/nexus")),
    log: silentLogger,
    audit: memoryAuditSink(),
  });
  const dir = await Deno.makeTempDir();
  try {
    await installRootKey(nexus.deps, testRootKey());
    const url = `https://127.0.0.1:${nexus.port}`;
    const admin = await connectSpike({
      nexusUrl: url,
      identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/pilot/role/superuser")),
    });
    await admin.putSecret("app/db", { user: "u", pass: "p" });
    await admin.putSecret("other/db", { pass: "x" });
    await admin.close();
    await storePolicy(nexus.deps, {
      name: "web",
      spiffeIdPattern: "^spiffe://spike\\.ist/app/web$",
      pathPattern: "^app/",
      permissions: ["read"],
      createdAt: new Date(),
      updatedAt: new Date(),
    });

    // The workload's identity comes from files, as a spiffe-helper would write them.
    await writeSvidFiles(dir, await ca.issue("spiffe://spike.ist/app/web"));
    const web = await connectSpike({ env: { SPIKE_SVID_DIR: dir, SPIKE_NEXUS_API_URL: url } });
    try {
      assert.deepEqual(await web.getSecret("app/db"), { user: "u", pass: "p" });
      assert.equal(await web.getSecretValue("app/db", "pass"), "p");
      await assert.rejects(web.getSecretValue("app/db", "nope"), (e) => e instanceof ApiCallError && e.status === 404);
      await assert.rejects(web.getSecret("other/db"), (e) => e instanceof ApiCallError && e.status === 401);
      await assert.rejects(web.putSecret("app/db", { x: "y" }), (e) => e instanceof ApiCallError && e.status === 401);
      await assert.rejects(web.encrypt(new Uint8Array([1])), (e) => e instanceof ApiCallError && e.status === 401);
    } finally {
      await web.close();
    }

    const lite = await connectSpike({
      nexusUrl: url,
      identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/workload/role/lite")),
    });
    try {
      const sealed = await lite.encrypt(new TextEncoder().encode("hello"));
      assert.equal(new TextDecoder().decode(await lite.decrypt(sealed)), "hello");
    } finally {
      await lite.close();
    }
  } finally {
    await nexus.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connectSpike fails clearly without an identity", async () => {
  await assert.rejects(
    connectSpike({ env: { SPIKE_SVID_DIR: "/nonexistent/svid" } }),
    /\/nonexistent\/svid/,
  );
});

Deno.test("the SDK rides out a Nexus restart: a broken connection, 503s until the key is back, then the read", async () => {
  const ca = await createDevCa();
  const dir = await Deno.makeTempDir({ prefix: "spike_sdk_restart_" });
  const identity = createStaticSource(await ca.issue("spiffe://spike.ist/spike/nexus"));
  const start = (port: number) =>
    startNexus({
      config: resolveNexusConfig({
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
        SPIKE_NEXUS_BACKEND_STORE: "sqlite",
        SPIKE_NEXUS_DATA_DIR: dir,
      }),
      identity,
      log: silentLogger,
      audit: memoryAuditSink(),
    });
  let nexus = await start(0);
  const port = nexus.port;
  const admin = await connectSpike({
    nexusUrl: `https://127.0.0.1:${port}`,
    identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/pilot/role/superuser")),
    attempts: 6,
  });
  let installing: Promise<unknown> | undefined;
  try {
    await installRootKey(nexus.deps, testRootKey());
    await admin.putSecret("app/db", { pass: "p" });
    assert.deepEqual(await admin.getSecret("app/db"), { pass: "p" }, "the client now holds a kept-alive connection");

    await nexus.close();
    nexus = await start(port);
    // The key comes back a moment later, as it would from the Keepers.
    const restarted = nexus;
    installing = new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
      installRootKey(restarted.deps, testRootKey())
    );
    assert.deepEqual(await admin.getSecret("app/db"), { pass: "p" });

    const once = await connectSpike({
      nexusUrl: `https://127.0.0.1:${port}`,
      identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/pilot/role/superuser")),
      attempts: 1,
    });
    try {
      await nexus.close();
      nexus = await start(port);
      await assert.rejects(once.getSecret("app/db"), "attempts: 1 turns retries off");
    } finally {
      await once.close();
    }
  } finally {
    await installing;
    await admin.close();
    await nexus.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Asserts `promise` rejects with an instance of `Class` carrying `status`. */
async function rejectsWith(promise: Promise<unknown>, Class: typeof ApiCallError, status: number): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof Class, `expected ${Class.name}, got ${e}`);
    assert.equal(e.status, status);
    return true;
  });
}

/** Polls `check` every 20 ms until it holds; fails after 10 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("every SDK call against a real Nexus: versions, policies, cipher, typed errors, a watch", async () => {
  const ca = await createDevCa();
  const nexus = await startNexus({
    config: resolveNexusConfig({ SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0", SPIKE_NEXUS_BACKEND_STORE: "memory", HOME: "/" }),
    identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/nexus")),
    log: silentLogger,
    audit: memoryAuditSink(),
  });
  const dir = await Deno.makeTempDir();
  const nexusUrl = `https://127.0.0.1:${nexus.port}`;
  try {
    await installRootKey(nexus.deps, testRootKey());
    await writeSvidFiles(dir, await ca.issue("spiffe://spike.ist/app/web"));
    const admin = await connect({
      nexusUrl,
      identity: createStaticSource(await ca.issue("spiffe://spike.ist/spike/pilot/role/superuser")),
    });
    const web = await connect({ nexusUrl, svidDir: dir });
    try {
      assert.equal(web.spiffeId(), "spiffe://spike.ist/app/web");
      assert.equal(
        typeof await admin.putPolicy({
          name: "web",
          spiffeIdPattern: "^spiffe://spike\\.ist/app/web$",
          pathPattern: "^app/",
          permissions: ["read", "write"],
        }),
        "string",
      );
      const policy = await admin.getPolicy("web");
      assert.equal(policy.spiffeIdPattern, "^spiffe://spike\\.ist/app/web$");
      assert.deepEqual([...policy.permissions].sort(), ["read", "write"]);
      assert.deepEqual((await admin.listPolicies({ pathPattern: "^app/" })).map((p) => p.name), ["web"]);
      assert.deepEqual(await admin.listPolicies({ pathPattern: "^nothing/" }), []);

      // Versions through the workload's own policy.
      await web.putSecret("app/a", { k: "1" });
      await web.putSecret("app/a", { k: "2" });
      assert.equal((await web.getMetadata("app/a")).metadata.currentVersion, 2);
      assert.equal((await web.getMetadata("app/a", { version: 1 })).versions["1"]?.version, 1);
      await web.deleteSecret("app/a");
      assert.deepEqual(await web.getSecret("app/a"), { k: "1" }, "current moved back to 1");
      await rejectsWith(web.getSecret("app/a", { version: 2 }), NotFoundError, 404);
      await web.undeleteSecret("app/a", [2]);
      assert.deepEqual(await web.getSecret("app/a"), { k: "2" });
      await web.deleteSecret("app/a", [1, 2]);
      await rejectsWith(web.getSecret("app/a"), NotFoundError, 404);
      await web.undeleteSecret("app/a", [1]);
      assert.deepEqual(await web.getSecret("app/a"), { k: "1" });
      assert.deepEqual(await admin.listSecrets(), ["app/a"]);

      // What the policy does not grant, and what is malformed.
      await rejectsWith(web.listSecrets(), UnauthorizedError, 401);
      await rejectsWith(web.getSecret("other/x"), UnauthorizedError, 401);
      await rejectsWith(web.deletePolicy("web"), UnauthorizedError, 401);
      await rejectsWith(admin.putSecret("bad path", { k: "v" }), BadRequestError, 400);
      await rejectsWith(admin.getPolicy("nope"), NotFoundError, 404);
      await assert.rejects(web.getSecret("other/x"), (e: unknown) => {
        return e instanceof ApiCallError && e.code === "access_unauthorized" && e.name === "UnauthorizedError";
      });

      const sealed = await admin.encrypt(new TextEncoder().encode("x"));
      assert.deepEqual(await admin.decrypt(sealed), new TextEncoder().encode("x"));

      // The watch delivers the current version, then the next; a missing secret is reported, not thrown.
      const seen: Array<[number, Record<string, string>]> = [];
      const errors: unknown[] = [];
      web.watchSecret("app/w", (values, info) => void seen.push([info.version, values]), {
        intervalMs: 50,
        maxBackoffMs: 100,
        onError: (e) => errors.push(e),
      });
      await until(() => errors.length > 0, "the missing secret reported");
      assert.ok(errors[0] instanceof NotFoundError);
      await admin.putSecret("app/w", { v: "1" });
      await until(() => seen.length === 1, "version 1");
      await admin.putSecret("app/w", { v: "2" });
      await until(() => seen.length === 2, "version 2");
      assert.deepEqual(seen, [[1, { v: "1" }], [2, { v: "2" }]]);
      // Left running on purpose: close() stops it.

      await admin.deletePolicy("web");
      await rejectsWith(web.getSecret("app/a"), UnauthorizedError, 401);
    } finally {
      await web.close();
      await admin.close();
    }
    await assert.rejects(web.getSecret("app/a"), /closed/);
    assert.throws(() => web.watchSecret("app/a", () => {}), /closed/);
    await assert.rejects(connect({ svidDir: "/nonexistent/svid" }), IdentitySourceError);
    await assert.rejects(connect({ nexusUrl: "http://127.0.0.1:1", svidDir: dir }), /SPIKE_NEXUS_API_URL/);
    assert.equal(connectSpike, connect);
  } finally {
    await nexus.close();
    await Deno.remove(dir, { recursive: true });
  }
});
