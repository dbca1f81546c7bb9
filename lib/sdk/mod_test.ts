/**
 * The SDK against a real Nexus over mTLS: a workload reads the secrets its
 * policy grants, is refused the rest, and uses the cipher API.
 */
import assert from "node:assert/strict";
import { resolveNexusConfig } from "../config/spike_config.ts";
import { silentLogger } from "../log/logger.ts";
import { installRootKey } from "../nexus/key_installer.ts";
import { startNexus } from "../nexus/server.ts";
import { testRootKey } from "../nexus/testing.ts";
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
    await nexus.deps.store!.upsertPolicy({
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
