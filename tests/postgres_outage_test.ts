/**
 * A Nexus on Postgres whose database goes away and comes back: while it is
 * gone, `/ready` says why and API calls fail with the JSON error contract
 * (nothing crashes, nothing hangs); once it is back, the same Nexus serves
 * again without a restart and nothing written before is lost.
 */
import assert from "node:assert/strict";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { getPlain } from "../lib/dev/health.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { installRootKey } from "../lib/nexus/key_installer.ts";
import { startNexus } from "../lib/nexus/server.ts";
import { testRootKey } from "../lib/nexus/testing.ts";
import { createDevCa } from "../lib/spiffe/dev_ca.ts";
import { createMtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { createTestDatabase } from "./support/postgres_db.ts";
import { freePort } from "./support/ports.ts";
import { startTcpRelay } from "./support/tcp_relay.ts";
import { memoryAuditSink } from "../lib/nexus/audit.ts";
import { SPIKE_VERSION } from "../lib/version.ts";

const version = SPIKE_VERSION;
const READY = {
  ready: true,
  rootKey: "loaded",
  store: "ok",
  keyVersion: 1,
  rotation: "idle",
  tampered: false,
  version,
};

/** `GET /ready` without a client certificate: status and JSON body. */
async function ready(port: number): Promise<{ status: number; body: unknown }> {
  const { status, body } = await getPlain(port, "/ready");
  return { status, body: JSON.parse(body) };
}

Deno.test("postgres outage: Nexus reports it, answers with JSON errors, and serves again once the database is back", async () => {
  const db = await createTestDatabase();
  const target = new URL(db.url);
  const relay = startTcpRelay(freePort(), Number(target.port));
  const viaRelay = Object.assign(new URL(db.url), { port: String(relay.port) }).href;
  const ca = await createDevCa();
  const nexus = await startNexus({
    config: resolveNexusConfig({
      SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
      SPIKE_NEXUS_BACKEND_STORE: "postgres",
      SPIKE_NEXUS_POSTGRES_URL: viaRelay,
    }),
    identity: createStaticSource(await ca.issue(spikeIdFor("nexus"))),
    log: silentLogger,
    audit: memoryAuditSink(),
  });
  const transport = createMtlsClient({
    identity: createStaticSource(await ca.issue(spikeIdFor("pilot_superuser"))),
    serverId: (id) => isNexus(id),
    timeoutMs: 20_000,
  });
  const client = new NexusClient(`https://127.0.0.1:${nexus.port}`, transport);
  try {
    const key = testRootKey();
    assert.equal(await installRootKey(nexus.deps, key), "installed");
    key.fill(0);
    await client.putSecret("app/db", { pass: "before" });
    assert.deepEqual(await ready(nexus.port), { status: 200, body: READY });

    await relay.cut();
    assert.deepEqual(await ready(nexus.port), {
      status: 503,
      body: { ready: false, reason: "backend store not answering", rootKey: "loaded", store: "unreachable", version },
    });
    for (const call of [client.getSecret("app/db"), client.putSecret("app/db", { pass: "lost?" })]) {
      await assert.rejects(call, (e: unknown) => e instanceof ApiCallError && e.status === 500 && e.code !== undefined);
    }

    relay.restore();
    assert.deepEqual(await ready(nexus.port), { status: 200, body: READY });
    assert.deepEqual(await client.getSecret("app/db"), { pass: "before" });
    await client.putSecret("app/db", { pass: "after" });
    assert.deepEqual(await client.getSecret("app/db"), { pass: "after" });
    // The put that failed during the outage left no version behind: 1 = before, 2 = after.
    assert.deepEqual(await client.getSecret("app/db", 2), { pass: "after" });
  } finally {
    transport.close();
    await nexus.close();
    await relay.close();
    await db.drop();
  }
});
