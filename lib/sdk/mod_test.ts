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
import { ApiCallError, connectSpike } from "./mod.ts";
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
