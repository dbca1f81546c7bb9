import assert from "node:assert/strict";
import { Hono } from "hono";
import { createDevCa, type DevCa, writeSvidFiles } from "./dev_ca.ts";
import type { X509Identity } from "./identity.ts";
import { createMtlsServer, type MtlsEnv, type MtlsServer, type Peer, serveHono } from "./mtls_server.ts";
import { createStaticSource } from "./static_source.ts";
import { isPilotSuperuser, spikeIdFor } from "./roles.ts";
import { rawRequest } from "./testing/raw_https.ts";
import * as x509 from "./x509.ts";

const NEXUS = spikeIdFor("nexus");
const SUPERUSER = spikeIdFor("pilot_superuser");

interface Pki {
  ca: DevCa;
  server: X509Identity;
  client: X509Identity;
  bad: Record<string, { identity?: X509Identity; reason: string }>;
}

let pki: Promise<Pki> | undefined;
function testPki(): Promise<Pki> {
  pki ??= (async () => {
    const ca = await createDevCa();
    const other = await createDevCa();
    const now = Date.now();
    return {
      ca,
      server: await ca.issue(NEXUS),
      client: await ca.issue(SUPERUSER),
      bad: {
        "no client certificate": { reason: "no_certificate" },
        "a certificate from another CA": { identity: await other.issue(SUPERUSER), reason: "untrusted_chain" },
        "an expired certificate": {
          identity: await ca.issue(SUPERUSER, { notBefore: new Date(now - 7200e3), notAfter: new Date(now - 3600e3) }),
          reason: "expired",
        },
        "a certificate with two URI SANs": {
          identity: await ca.issue(SUPERUSER, { extraUriSans: ["spiffe://spike.ist/spike/nexus"] }),
          reason: "uri_san_count",
        },
        "a CA certificate used as a leaf": {
          identity: await ca.issue(SUPERUSER, { isCa: true }),
          reason: "leaf_is_ca",
        },
        "a valid SVID whose ID fails the predicate": {
          identity: await ca.issue("spiffe://spike.ist/app/web"),
          reason: "id_not_allowed",
        },
      },
    };
  })();
  return pki;
}

/** Runs `fn` against a listening server and always closes it. */
async function withServer(server: MtlsServer, fn: (port: number) => Promise<void>): Promise<void> {
  try {
    await fn(await server.listen(0, "127.0.0.1"));
  } finally {
    await server.close();
  }
}

function echoPeerServer(identity: X509Identity): Promise<MtlsServer> {
  return createMtlsServer({
    identity: createStaticSource(identity),
    authorizePeer: (id) => isPilotSuperuser(id),
    handler: (_req, res, peer) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(peer));
    },
  });
}

/** A small app; `seen` records the content-length of each request that reached it. */
function honoApp(seen: Array<string | undefined> = []) {
  const app = new Hono<{ Bindings: MtlsEnv }>();
  app.onError((_err, c) => c.json({ err: "api_internal_error" }, 500));
  app.use("*", (c, next) => {
    seen.push(c.req.header("content-length"));
    return next();
  });
  app.get("/health", (c) => c.json({ ok: true }));
  app.use("/v1/*", async (c, next) => {
    if (!c.env.peer.ok) return c.json({ err: "access_unauthorized" }, 401);
    return await next();
  });
  app.post("/v1/echo", async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    return c.json({ peer: c.env.peer.ok ? c.env.peer.spiffeId : null, bytes: body.length });
  });
  app.get("/boom", () => {
    throw new Error("boom");
  });
  return app;
}

Deno.test("a valid client SVID is accepted and its SPIFFE ID reaches the handler", async () => {
  const { server, client } = await testPki();
  await withServer(await echoPeerServer(server), async (port) => {
    const res = await rawRequest(port, "/", { identity: client });
    const peer = JSON.parse(res.text) as Peer;
    assert.equal(peer.ok, true);
    assert.equal(peer.ok && peer.spiffeId, SUPERUSER);
    assert.equal(res.serverSan, `URI:${NEXUS}`);
  });
});

Deno.test("invalid client SVIDs reach the handler as a PeerError with a distinct reason", async () => {
  const { server, bad } = await testPki();
  await withServer(await echoPeerServer(server), async (port) => {
    const reasons = new Set<string>();
    for (const [name, { identity, reason }] of Object.entries(bad)) {
      const res = await rawRequest(port, "/", { identity });
      const peer = JSON.parse(res.text) as Peer;
      assert.equal(peer.ok, false, name);
      assert.equal(!peer.ok && peer.reason, reason, name);
      assert.ok(!peer.ok && peer.message.length > 0);
      reasons.add(reason);
    }
    assert.equal(reasons.size, Object.keys(bad).length);
  });
});

Deno.test("a Hono app behind the server answers 401 to every invalid client, and /health to anyone", async () => {
  const { server, client, bad } = await testPki();
  const mtls = await serveHono(honoApp(), {
    identity: createStaticSource(server),
    authorizePeer: (id) => isPilotSuperuser(id),
    maxBodyBytes: 1024,
  });
  await withServer(mtls, async (port) => {
    for (const [name, { identity }] of Object.entries(bad)) {
      const res = await rawRequest(port, "/v1/echo", { identity, method: "POST", body: "{}" });
      assert.equal(res.status, 401, name);
      assert.deepEqual(JSON.parse(res.text), { err: "access_unauthorized" }, name);
    }
    const health = await rawRequest(port, "/health");
    assert.equal(health.status, 200);
    const ok = await rawRequest(port, "/v1/echo", { identity: client, method: "POST", body: "hello" });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.text), { peer: SUPERUSER, bytes: 5 });
  });
});

Deno.test("after a rotation new connections get the new server SVID without a restart", async () => {
  const { ca, server, client } = await testPki();
  const source = createStaticSource(server);
  const rotating = await createMtlsServer({
    identity: source,
    handler: (_req, res, peer) => res.end(JSON.stringify(peer)),
  });
  await withServer(rotating, async (port) => {
    const before = await rawRequest(port, "/", { identity: client });
    const expectedSerial = new x509.X509Certificate(server.certChainPem).serialNumber.toUpperCase();
    assert.equal(before.serverSerial.toUpperCase().replace(/^0+/, ""), expectedSerial.replace(/^0+/, ""));

    const next = await ca.issue(`${NEXUS}/rotated`);
    source.set(next);
    const after = await rawRequest(port, "/", { identity: client });
    assert.equal(after.serverSan, `URI:${NEXUS}/rotated`);
    assert.notEqual(after.serverSerial, before.serverSerial);
    assert.equal(rotating.port, port);
    assert.equal((JSON.parse(after.text) as Peer).ok, true);
  });
});

Deno.test("request bodies over the limit get 413, declared or streamed", async () => {
  const { server, client } = await testPki();
  const seen: Array<string | undefined> = [];
  const mtls = await serveHono(honoApp(seen), { identity: createStaticSource(server), maxBodyBytes: 1024 });
  await withServer(mtls, async (port) => {
    const declared = await rawRequest(port, "/v1/echo", { identity: client, method: "POST", body: "x".repeat(5000) });
    assert.equal(declared.status, 413);
    assert.deepEqual(JSON.parse(declared.text), { err: "api_payload_too_large" });
    assert.equal(declared.headers["cache-control"], "no-store, no-cache, must-revalidate, private");
    assert.deepEqual(seen, [], "a declared oversize body is refused before the app runs");

    const streamed = await rawRequest(port, "/v1/echo", {
      identity: client,
      method: "POST",
      body: "y".repeat(5000),
      headers: { "transfer-encoding": "chunked" },
    });
    assert.equal(streamed.status, 413);
    assert.deepEqual(JSON.parse(streamed.text), { err: "api_payload_too_large" });
    assert.deepEqual(seen, [undefined], "a chunked body is cut off while the app reads it");

    const atLimit = await rawRequest(port, "/v1/echo", { identity: client, method: "POST", body: "z".repeat(1024) });
    assert.equal(atLimit.status, 200);
    assert.equal(JSON.parse(atLimit.text).bytes, 1024);
  });
});

Deno.test("an app or handler failure becomes an opaque 500", async () => {
  const { server } = await testPki();
  const errors: Error[] = [];
  const app = await serveHono(honoApp(), {
    identity: createStaticSource(server),
    maxBodyBytes: 1024,
    onError: (e) => errors.push(e),
  });
  await withServer(app, async (port) => {
    const res = await rawRequest(port, "/boom");
    assert.equal(res.status, 500);
    assert.doesNotMatch(res.text, /boom/);
  });
  const raw = await createMtlsServer({
    identity: createStaticSource(server),
    handler: () => Promise.reject(new Error("secret detail")),
    onError: (e) => errors.push(e),
  });
  await withServer(raw, async (port) => {
    const res = await rawRequest(port, "/");
    assert.equal(res.status, 500);
    assert.deepEqual(JSON.parse(res.text), { err: "api_internal_error" });
  });
  assert.ok(errors.some((e) => e.message === "secret detail"));
});

Deno.test("port is only known after listen; close is idempotent", async () => {
  const { server } = await testPki();
  const mtls = await createMtlsServer({ identity: createStaticSource(server), handler: (_q, res) => res.end() });
  assert.throws(() => mtls.port, /not listening/);
  const port = await mtls.listen(0, "127.0.0.1");
  assert.ok(port > 0);
  assert.equal(mtls.port, port);
  await mtls.close();
  await mtls.close();
  await assert.rejects(rawRequest(port, "/"));
});

/** A server answering each request with the verdict on its peer, on a clock the test moves. */
async function clockedServer(identity: X509Identity, clock: { now: number }) {
  const source = createStaticSource(identity);
  const server = await createMtlsServer({
    identity: source,
    now: () => new Date(clock.now),
    authorizePeer: (id) => isPilotSuperuser(id),
    handler: (_req, res, peer) => res.end(JSON.stringify(peer)),
  });
  return { server, source };
}

Deno.test("a client known from an earlier connection is checked again: its expiry, the ID predicate, a new trust bundle", async () => {
  const { ca, server } = await testPki();
  const clock = { now: Date.now() };
  const client = await ca.issue(SUPERUSER, { notAfter: new Date(clock.now + 600e3) });
  const web = await ca.issue("spiffe://spike.ist/app/web");
  const { server: mtls, source } = await clockedServer(server, clock);
  await withServer(mtls, async (port) => {
    const verdict = async (identity: X509Identity) =>
      JSON.parse((await rawRequest(port, "/", { identity })).text) as Peer;
    // Known after the first connection, still itself on the second.
    for (let i = 0; i < 2; i++) assert.equal((await verdict(client)).ok, true);
    // A valid SVID the predicate refuses stays refused when it comes back.
    for (let i = 0; i < 2; i++) assert.equal((await verdict(web) as { reason?: string }).reason, "id_not_allowed");
    // Past its notAfter the known leaf is expired, not remembered as good.
    clock.now += 601e3;
    assert.equal((await verdict(client) as { reason?: string }).reason, "expired");
    clock.now -= 601e3;
    assert.equal((await verdict(client)).ok, true);
    // A bundle without its CA: the verdict of the old bundle does not carry over.
    const other = await createDevCa();
    source.set(await other.issue(NEXUS));
    assert.equal((await verdict(client) as { reason?: string }).reason, "untrusted_chain");
  });
});

/**
 * One request over `openssl s_client` presenting `dir`'s SVID files, saving
 * the TLS session to `session` or resuming it from there. Returns whether the
 * session was resumed and the handler's answer.
 */
async function opensslRequest(
  port: number,
  dir: string,
  session: { out?: string; in?: string },
): Promise<{ resumed: boolean; body: string }> {
  const child = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-cert",
      `${dir}/svid.pem`,
      "-key",
      `${dir}/svid_key.pem`,
      "-ign_eof",
      ...(session.out ? ["-sess_out", session.out] : []),
      ...(session.in ? ["-sess_in", session.in] : []),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: nexus\r\nconnection: close\r\n\r\n"));
  await writer.close();
  const output = await child.output();
  const text = new TextDecoder().decode(output.stdout);
  const state = /^(New|Reused), TLSv1\.[23]/m.exec(text)?.[1];
  assert.ok(state, `openssl s_client printed no session state:\n${text}\n${new TextDecoder().decode(output.stderr)}`);
  // The answer's JSON, whatever framing and s_client chatter surround it.
  // The verdict's JSON (flat: it ends at its first brace), whatever s_client prints around it.
  const body = text.slice(text.indexOf("\r\n\r\n") + 4);
  const start = body.indexOf("{");
  return { resumed: state === "Reused", body: body.slice(start, body.indexOf("}", start) + 1) };
}

Deno.test("a resumed TLS session is authenticated like a new connection: its ID arrives, and expiry and bundle still apply", async () => {
  const { ca, server } = await testPki();
  const dir = await Deno.makeTempDir({ prefix: "spike_resume_" });
  try {
    const clock = { now: Date.now() };
    await writeSvidFiles(dir, await ca.issue(SUPERUSER, { notAfter: new Date(clock.now + 600e3) }));
    const session = `${dir}/session.pem`;
    const { server: mtls, source } = await clockedServer(server, clock);
    await withServer(mtls, async (port) => {
      const first = await opensslRequest(port, dir, { out: session });
      assert.equal(first.resumed, false);
      assert.equal((JSON.parse(first.body) as Peer).ok, true);
      // Deno's TLS server resumes sessions; the certificate of the first handshake comes with it.
      const resumed = await opensslRequest(port, dir, { in: session });
      assert.equal(resumed.resumed, true, "the server resumed the session");
      const peer = JSON.parse(resumed.body) as Peer;
      assert.equal(peer.ok && peer.spiffeId, SUPERUSER);
      // Resumed past the certificate's notAfter: refused.
      clock.now += 601e3;
      const late = await opensslRequest(port, dir, { in: session });
      assert.equal((JSON.parse(late.body) as { reason?: string }).reason, "expired");
      clock.now -= 601e3;
      // After the trust bundle changes to one without the client's CA: refused, resumed or not.
      source.set(await (await createDevCa()).issue(NEXUS));
      const after = await opensslRequest(port, dir, { in: session });
      assert.equal((JSON.parse(after.body) as { reason?: string }).reason, "untrusted_chain");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
