import assert from "node:assert/strict";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { createDevCa } from "./dev_ca.ts";
import type { X509Identity } from "./identity.ts";
import { IdentitySourceError } from "./identity_check.ts";
import { createMtlsServer } from "./mtls_server.ts";
import { pemToDerList } from "./pem.ts";
import { createWorkloadApiSource, parseWorkloadApiEndpoint } from "./workload_api_source.ts";
import { startWorkloadApiServer } from "./workload_api_server.ts";
import type { Logger } from "../log/logger.ts";

const TD = "spike.ist";

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function nextChange(source: { onChange(l: (i: X509Identity) => void): () => void }): Promise<X509Identity> {
  return new Promise((resolve) => {
    const off = source.onChange((identity) => {
      off();
      resolve(identity);
    });
  });
}

function certDer(identity: X509Identity): Uint8Array[] {
  return pemToDerList(identity.certChainPem, "CERTIFICATE");
}

/** A logger that can wait for the next warning's `error` field. */
function spyLogger(): Logger & { nextWarn(message: string): Promise<string> } {
  let waiter: { message: string; resolve: (e: string) => void } | undefined;
  return {
    debug() {},
    info() {},
    warn(message, fields) {
      if (waiter?.message !== message) return;
      waiter.resolve(String(fields?.error));
      waiter = undefined;
    },
    error() {},
    nextWarn: (message) => new Promise((resolve) => waiter = { message, resolve }),
  };
}

async function setup() {
  const ca = await createDevCa({ trustDomain: TD });
  const dir = await Deno.makeTempDir({ prefix: "spike_wlsrc_" });
  return { ca, dir, socketPath: join(dir, "api.sock") };
}

Deno.test("workload API source receives the SVID and follows rotations", async () => {
  const { ca, dir, socketPath } = await setup();
  const first = await ca.issue(`spiffe://${TD}/w`);
  const second = await ca.issue(`spiffe://${TD}/w`);
  const server = await startWorkloadApiServer({ socketPath, identity: first });
  const source = createWorkloadApiSource({ endpoint: server.endpoint });
  try {
    const identity = await within(source.ready(), 5000, "ready");
    assert.equal(identity.spiffeId, first.spiffeId);
    assert.deepEqual(certDer(identity), certDer(first));
    assert.deepEqual(identity.privateKeyPem, first.privateKeyPem);
    assert.deepEqual(pemToDerList(identity.trustBundlePem), pemToDerList(ca.caCertPem));

    const changed = nextChange(source);
    server.set(second);
    const rotated = await within(changed, 5000, "onChange");
    assert.deepEqual(certDer(rotated), certDer(second));
    assert.deepEqual(rotated.privateKeyPem, second.privateKeyPem);
    assert.deepEqual(certDer(source.current()), certDer(second));
  } finally {
    await source.close();
    await source.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workload API source reconnects after a server restart and keeps the last identity meanwhile", async () => {
  const { ca, dir, socketPath } = await setup();
  const first = await ca.issue(`spiffe://${TD}/w`);
  const second = await ca.issue(`spiffe://${TD}/w`);
  let server = await startWorkloadApiServer({ socketPath, identity: first });
  const log = spyLogger();
  const source = createWorkloadApiSource({ endpoint: server.endpoint, initialBackoffMs: 50, maxBackoffMs: 200, log });
  try {
    await within(source.ready(), 5000, "ready");
    const dropped = log.nextWarn("Workload API stream ended, reconnecting");
    await server.close();
    await within(dropped, 5000, "stream end");
    assert.deepEqual(certDer(source.current()), certDer(first));

    const changed = nextChange(source);
    server = await startWorkloadApiServer({ socketPath, identity: second });
    assert.deepEqual(certDer(await within(changed, 10_000, "onChange after restart")), certDer(second));
  } finally {
    await source.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workload API source skips an SVID whose key does not match", async () => {
  const { ca, dir, socketPath } = await setup();
  const first = await ca.issue(`spiffe://${TD}/a`);
  const other = await ca.issue(`spiffe://${TD}/b`);
  const third = await ca.issue(`spiffe://${TD}/c`);
  const server = await startWorkloadApiServer({ socketPath, identity: first });
  const log = spyLogger();
  const source = createWorkloadApiSource({ endpoint: server.endpoint, log });
  const seen: string[] = [];
  try {
    await within(source.ready(), 5000, "ready");
    source.onChange((identity) => seen.push(identity.spiffeId));
    const warned = log.nextWarn("ignoring Workload API response");
    server.set({ ...first, privateKeyPem: other.privateKeyPem });
    assert.match(await within(warned, 5000, "warning"), /private key does not match the leaf certificate/);
    assert.deepEqual(source.current().privateKeyPem, first.privateKeyPem);

    const changed = nextChange(source);
    server.set(third);
    assert.equal((await within(changed, 5000, "onChange")).spiffeId, third.spiffeId);
    assert.deepEqual(seen, [third.spiffeId]);
  } finally {
    await source.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workload API source ready() times out naming the endpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_wlsrc_" });
  const endpoint = `unix://${join(dir, "nobody.sock")}`;
  const source = createWorkloadApiSource({ endpoint, readyTimeoutMs: 300, initialBackoffMs: 50, maxBackoffMs: 100 });
  try {
    await assert.rejects(
      source.ready(),
      (e) =>
        e instanceof IdentitySourceError && e.reason === "timeout" &&
        e.message.startsWith(`no X.509-SVID from the Workload API at ${endpoint} within 300 ms`),
    );
    assert.throws(() => source.current(), (e) => e instanceof IdentitySourceError && e.reason === "not_ready");
  } finally {
    await source.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseWorkloadApiEndpoint accepts unix and tcp endpoints", () => {
  assert.deepEqual(parseWorkloadApiEndpoint("unix:///tmp/spire-agent/public/api.sock"), {
    kind: "unix",
    grpcTarget: "unix:///tmp/spire-agent/public/api.sock",
  });
  assert.deepEqual(parseWorkloadApiEndpoint("tcp://127.0.0.1:8081"), { kind: "tcp", grpcTarget: "127.0.0.1:8081" });
  assert.deepEqual(parseWorkloadApiEndpoint("tcp://[::1]:8081"), { kind: "tcp", grpcTarget: "[::1]:8081" });
});

Deno.test("parseWorkloadApiEndpoint rejects other forms with a clear message", () => {
  const cases: [string, RegExp][] = [
    ["http://127.0.0.1:8081", /scheme "http" is not supported/],
    ["/tmp/api.sock", /not a URL/],
    ["unix://host/tmp/api.sock", /no host/],
    ["unix:///", /missing socket path/],
    ["unix:///tmp/a.sock?x=1", /query and fragment/],
    ["tcp://localhost:8081", /IP address, not a host name/],
    ["tcp://127.0.0.1", /needs a port/],
    ["tcp://127.0.0.1:8081/path", /no path/],
    ["tcp://user@127.0.0.1:8081", /user info/],
  ];
  for (const [endpoint, message] of cases) {
    assert.throws(
      () => parseWorkloadApiEndpoint(endpoint),
      (e) => e instanceof IdentitySourceError && e.reason === "bad_endpoint" && message.test(e.message),
      endpoint,
    );
  }
  assert.throws(() => createWorkloadApiSource({ endpoint: "http://x" }), /expected unix:\/\/\/path/);
});

/** The leaf certificate (DER) an mTLS server presents to a new connection. */
function servedLeaf(port: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // Only the server's certificate matters here: no verification, no client cert.
    const socket = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const der = new Uint8Array(socket.getPeerCertificate().raw);
      socket.destroy();
      resolve(der);
    });
    socket.once("error", reject);
  });
}

Deno.test("an mTLS server fed by the Workload API presents the rotated SVID to new connections", async () => {
  const { ca, dir, socketPath } = await setup();
  const first = await ca.issue(`spiffe://${TD}/nexus`);
  const second = await ca.issue(`spiffe://${TD}/nexus`);
  const agent = await startWorkloadApiServer({ socketPath, identity: first });
  const source = createWorkloadApiSource({ endpoint: agent.endpoint });
  const server = await createMtlsServer({ identity: source, handler: (_req, res) => res.end() });
  try {
    const port = await server.listen(0, "127.0.0.1");
    assert.deepEqual(await within(servedLeaf(port), 5000, "first handshake"), certDer(first)[0]);

    // The server subscribed first, so it has swapped its context by the time this fires.
    const changed = nextChange(source);
    agent.set(second);
    await within(changed, 5000, "onChange");
    assert.deepEqual(await within(servedLeaf(port), 5000, "second handshake"), certDer(second)[0]);
  } finally {
    await server.close();
    await source.close();
    await agent.close();
    await Deno.remove(dir, { recursive: true });
  }
});
