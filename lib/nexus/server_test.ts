/**
 * `startNexus` lifecycle: closing while the Keeper exchange is still
 * waiting, and a busy port.
 */
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { resolveNexusConfig } from "../config/spike_config.ts";
import { createTestPki, localUrl, recordingLog, waitUntil } from "../keeper/testing.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import { startNexus } from "./server.ts";
import { memoryAuditSink } from "./audit.ts";

function config(port: number, peers: string[]) {
  return resolveNexusConfig({
    SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
    SPIKE_NEXUS_BACKEND_STORE: "memory",
    SPIKE_NEXUS_KEEPER_PEERS: peers.join(","),
    SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "1s",
    HOME: "/nonexistent",
  });
}

Deno.test("close() ends a recovery stuck on Keepers that never answer", async () => {
  const sockets = new Set<Socket>();
  const blackHole = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
  const hole = localUrl((blackHole.address() as { port: number }).port);
  try {
    const pki = await createTestPki();
    const nexus = await startNexus({
      // Three distinct URLs (duplicates are refused) that all lead to the hole.
      config: config(0, [`${hole}/a`, `${hole}/b`, `${hole}/c`]),
      identity: await pki.source("spike/nexus"),
      log: recordingLog(),
      audit: memoryAuditSink(),
      keeperTimeoutMs: 3_600_000,
    });
    await waitUntil(() => sockets.size >= 1, "nexus is asking the keepers");
    let closed = false;
    const closing = nexus.close().then(() => closed = true);
    // Without cutting the calls in flight, close() would wait out the hour.
    await waitUntil(() => closed, "close() resolved", 5000);
    await closing;
    assert.equal(nexus.deps.keys.ready, false);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
  }
});

Deno.test("a busy port: startNexus rejects with EADDRINUSE and closes the store it opened", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const store = createMemoryStore();
  let storeClosed = false;
  const close = store.close.bind(store);
  store.close = () => {
    storeClosed = true;
    return close();
  };
  try {
    const pki = await createTestPki();
    await assert.rejects(
      startNexus({
        config: config((busy.addr as Deno.NetAddr).port, []),
        identity: await pki.source("spike/nexus"),
        log: recordingLog(),
        audit: memoryAuditSink(),
        store,
      }),
      (error: Error & { code?: string }) => error.code === "EADDRINUSE",
    );
    assert.equal(storeClosed, true);
  } finally {
    busy.close();
  }
});
