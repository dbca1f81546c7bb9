import assert from "node:assert/strict";
import { createDevCa, type DevCa } from "./dev_ca.ts";
import { MtlsError, type MtlsErrorReason } from "./errors.ts";
import type { X509Identity } from "./identity.ts";
import { createMtlsClient } from "./mtls_client.ts";
import { createMtlsServer, type MtlsServer, type Peer } from "./mtls_server.ts";
import { isNexus, spikeIdFor } from "./roles.ts";
import { createStaticSource } from "./static_source.ts";

const NEXUS = spikeIdFor("nexus");
const SUPERUSER = spikeIdFor("pilot_superuser");

let shared: Promise<{ ca: DevCa; other: DevCa; client: X509Identity }> | undefined;
function testPki() {
  shared ??= (async () => {
    const ca = await createDevCa();
    return { ca, other: await createDevCa(), client: await ca.issue(SUPERUSER) };
  })();
  return shared;
}

interface Recorder {
  server: MtlsServer;
  port: number;
  peers: string[];
  connections: () => number;
}

/** A server answering `{peer, body}`; records every client ID it saw. */
async function startServer(identity: X509Identity, hold = false): Promise<Recorder> {
  const peers: string[] = [];
  let connections = 0;
  const server = await createMtlsServer({
    identity: createStaticSource(identity),
    handler: (req, res, peer: Peer) => {
      peers.push(peer.ok ? peer.spiffeId : `!${peer.reason}`);
      const chunks: Uint8Array[] = [];
      req.on("data", (c: Uint8Array) => chunks.push(c));
      req.on("end", () => {
        if (hold) return;
        res.writeHead(200, { "content-type": "application/json", "x-test": "yes" });
        res.end(
          JSON.stringify({ peer: peer.ok ? peer.spiffeId : null, body: new TextDecoder().decode(concat(chunks)) }),
        );
      });
    },
  });
  server.server.on("secureConnection", () => connections++);
  const port = await server.listen(0, "127.0.0.1");
  return { server, port, peers, connections: () => connections };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function rejectsWith(promise: Promise<unknown>, reason: MtlsErrorReason, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof MtlsError, `expected MtlsError, got ${err}`);
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

Deno.test("the client presents its SVID, checks the server's, and reuses the connection", async () => {
  const { ca, client } = await testPki();
  const srv = await startServer(await ca.issue(NEXUS));
  const http = createMtlsClient({ identity: createStaticSource(client), serverId: isNexus, timeoutMs: 10_000 });
  try {
    const url = `https://127.0.0.1:${srv.port}/v1/store/secrets?action=get`;
    for (let i = 0; i < 3; i++) {
      const res = await http.post(url, `{"n":${i}}`, { "content-type": "application/json" });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-test"], "yes");
      assert.deepEqual(JSON.parse(new TextDecoder().decode(res.body)), { peer: SUPERUSER, body: `{"n":${i}}` });
    }
    const bytes = await http.post(url, new Uint8Array([104, 105]));
    assert.equal(JSON.parse(new TextDecoder().decode(bytes.body)).body, "hi");
    assert.deepEqual(srv.peers, [SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER]);
    assert.equal(srv.connections(), 1, "keep-alive");
  } finally {
    http.close();
    await srv.server.close();
  }
});

Deno.test("a server whose SPIFFE ID fails the predicate never receives the request", async () => {
  const { ca, client } = await testPki();
  const srv = await startServer(await ca.issue(spikeIdFor("keeper")));
  const http = createMtlsClient({ identity: createStaticSource(client), serverId: isNexus, timeoutMs: 10_000 });
  try {
    await rejectsWith(
      http.post(`https://127.0.0.1:${srv.port}/x`, "{}"),
      "server_id_not_allowed",
      /server SPIFFE ID spiffe:\/\/spike\.ist\/spike\/keeper is not allowed/,
    );
    assert.deepEqual(srv.peers, []);
  } finally {
    http.close();
    await srv.server.close();
  }
});

Deno.test("a server with an SVID from another CA, or an expired one, is refused", async () => {
  const { ca, other, client } = await testPki();
  const now = Date.now();
  const servers = [
    { srv: await startServer(await other.issue(NEXUS)), message: /does not verify to a trusted CA/ },
    {
      srv: await startServer(
        await ca.issue(NEXUS, { notBefore: new Date(now - 7200e3), notAfter: new Date(now - 3600e3) }),
      ),
      message: /expired/,
    },
  ];
  const http = createMtlsClient({ identity: createStaticSource(client), serverId: isNexus, timeoutMs: 10_000 });
  try {
    for (const { srv, message } of servers) {
      await rejectsWith(http.post(`https://127.0.0.1:${srv.port}/x`, "{}"), "server_svid_invalid", message);
      assert.deepEqual(srv.peers, []);
    }
  } finally {
    http.close();
    for (const { srv } of servers) await srv.server.close();
  }
});

Deno.test("connection refused is reported with the address", async () => {
  const { ca, client } = await testPki();
  const srv = await startServer(await ca.issue(NEXUS));
  const port = srv.port;
  await srv.server.close();
  const http = createMtlsClient({ identity: createStaticSource(client), serverId: isNexus, timeoutMs: 10_000 });
  try {
    await rejectsWith(
      http.post(`https://127.0.0.1:${port}/x`, "{}"),
      "connect_failed",
      new RegExp(`connection refused to https://127\\.0\\.0\\.1:${port}`),
    );
  } finally {
    http.close();
  }
});

Deno.test("after the client's SVID rotates, the next call uses it on a new connection", async () => {
  const { ca, client } = await testPki();
  const srv = await startServer(await ca.issue(NEXUS));
  const source = createStaticSource(client);
  const http = createMtlsClient({ identity: source, serverId: isNexus, timeoutMs: 10_000 });
  try {
    const url = `https://127.0.0.1:${srv.port}/`;
    await http.post(url, "a");
    source.set(await ca.issue(`${SUPERUSER}/rotated`));
    await http.post(url, "b");
    await http.post(url, "c");
    assert.deepEqual(srv.peers, [SUPERUSER, `${SUPERUSER}/rotated`, `${SUPERUSER}/rotated`]);
    assert.equal(srv.connections(), 2);
  } finally {
    http.close();
    await srv.server.close();
  }
});

Deno.test("a server that never answers times out", async () => {
  const { ca, client } = await testPki();
  const srv = await startServer(await ca.issue(NEXUS), true);
  const http = createMtlsClient({ identity: createStaticSource(client), serverId: isNexus, timeoutMs: 300 });
  try {
    await rejectsWith(http.post(`https://127.0.0.1:${srv.port}/slow`, "{}"), "timeout", /timed out after 300 ms/);
  } finally {
    http.close();
    await srv.server.close();
  }
});

Deno.test("oversized responses, non-https URLs and calls after close are refused", async () => {
  const { ca, client } = await testPki();
  const srv = await startServer(await ca.issue(NEXUS));
  const http = createMtlsClient({
    identity: createStaticSource(client),
    serverId: isNexus,
    timeoutMs: 10_000,
    maxResponseBytes: 10,
  });
  try {
    await rejectsWith(http.post(`https://127.0.0.1:${srv.port}/`, "x".repeat(100)), "protocol", /exceeds 10 bytes/);
    await rejectsWith(http.post(`http://127.0.0.1:${srv.port}/`, "{}"), "protocol", /not an https URL/);
  } finally {
    http.close();
    http.close();
    await srv.server.close();
  }
  await rejectsWith(http.post(`https://127.0.0.1:${srv.port}/`, "{}"), "closed");
});

Deno.test("close() fails calls still stuck in a TLS handshake at once", async () => {
  const { client } = await testPki();
  // Accepts TCP and never speaks TLS.
  const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of hole) accepted.push(conn);
  })();
  const http = createMtlsClient({ identity: createStaticSource(client), serverId: isNexus, timeoutMs: 3_600_000 });
  try {
    const call = http.post(`https://127.0.0.1:${(hole.addr as Deno.NetAddr).port}/x`, "{}");
    while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    http.close();
    // Without close() cutting it, this call would wait out its hour.
    await rejectsWith(call, "closed", /closed/);
  } finally {
    http.close();
    hole.close();
    for (const conn of accepted) conn.close();
    await accepting.catch(() => {});
  }
});
