/**
 * Bootstrap against an in-process Nexus and real Keepers, all over mTLS:
 * the happy path, the refusals (a Nexus that already has a key or data), the
 * force path, retries while a Keeper is down, and clear errors on timeout.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { combineShares } from "../crypto/shamir.ts";
import { systemRandom } from "../crypto/random.ts";
import { resolveNexusConfig } from "../config/spike_config.ts";
import type { RunningKeeper } from "../keeper/server.ts";
import {
  closedPort,
  createTestPki,
  localUrl,
  recordingLog,
  startTestKeeper,
  testClient,
  type TestPki,
  waitUntil,
} from "../keeper/testing.ts";
import { writeRootKeyCheck } from "../nexus/key_check.ts";
import { type RunningNexus, startNexus } from "../nexus/server.ts";
import { isKeeper, isNexus, trustRoots } from "../spiffe/roles.ts";
import type { MtlsClient } from "../spiffe/mtls_client.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { Store } from "../store/types.ts";
import { BootstrapError, type BootstrapOptions, type BootstrapOutcome, runBootstrap } from "./bootstrap.ts";
import { memoryAuditSink } from "../nexus/audit.ts";

const OLD_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 13 + 5) & 0x7f);

/** A Nexus, three Keeper ports, and Bootstrap's two clients. */
interface Fixture {
  readonly pki: TestPki;
  readonly keeperPorts: number[];
  readonly keepers: (RunningKeeper | undefined)[];
  nexus: RunningNexus | undefined;
  readonly nexusPort: number;
  readonly nexusLog: ReturnType<typeof recordingLog>;
  readonly bootLog: ReturnType<typeof recordingLog>;
  /** Starts (or restarts) Nexus on its port with `store` (default: a fresh memory store). */
  startNexus(store?: Store): Promise<RunningNexus>;
  /** Starts Keeper i on its port. */
  startKeeper(i: number): Promise<RunningKeeper>;
  /** Runs Bootstrap with these overrides. */
  bootstrap(overrides?: Partial<BootstrapOptions>): Promise<BootstrapOutcome>;
  /** The root key Nexus holds now. */
  nexusKey(): Uint8Array;
  /** The key the Keepers' shards rebuild (from Keepers 1 and 2). */
  keepersKey(): Uint8Array;
  close(): Promise<void>;
}

/** `up[i]`: whether Keeper i starts right away (default all). */
async function fixture(options: { up?: boolean[]; nexusStore?: Store } = {}): Promise<Fixture> {
  const pki = await createTestPki();
  const up = options.up ?? [true, true, true];
  const keeperPorts = up.map(() => closedPort());
  const keepers: (RunningKeeper | undefined)[] = [undefined, undefined, undefined];
  const nexusPort = closedPort();
  const nexusLog = recordingLog();
  const bootLog = recordingLog();
  const clients: MtlsClient[] = [];
  const client = async (serverId: (id: string) => boolean) => {
    const c = await testClient(pki, "spike/bootstrap", serverId, 1000);
    clients.push(c);
    return c;
  };
  const nexusClient = await client((id) => isNexus(id, trustRoots()));
  const keeperClient = await client((id) => isKeeper(id, trustRoots()));
  const config = resolveNexusConfig({
    SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
    SPIKE_NEXUS_BACKEND_STORE: "memory",
    SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map(localUrl).join(","),
    SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "200ms",
    HOME: "/nonexistent",
  });

  const f: Fixture = {
    pki,
    keeperPorts,
    keepers,
    nexus: undefined,
    nexusPort,
    nexusLog,
    bootLog,
    async startNexus(store) {
      f.nexus = await startNexus({
        config,
        identity: await pki.source("spike/nexus"),
        log: nexusLog,
        audit: memoryAuditSink(),
        store: store ?? createMemoryStore(),
        keeperBackoff: { initialMs: 10, maxMs: 50 },
        keeperTimeoutMs: 1000,
      });
      return f.nexus;
    },
    async startKeeper(i) {
      keepers[i] = await startTestKeeper(pki, keeperPorts[i]);
      return keepers[i]!;
    },
    bootstrap(overrides = {}) {
      return runBootstrap({
        nexusUrl: localUrl(nexusPort),
        keeperPeers: keeperPorts.map(localUrl),
        threshold: 2,
        force: false,
        nexus: nexusClient,
        keepers: keeperClient,
        random: systemRandom,
        log: bootLog,
        timeoutMs: 10_000,
        initialBackoffMs: 20,
        ...overrides,
      });
    },
    nexusKey: () => f.nexus!.deps.keys.withRootKey((root) => root.slice()),
    keepersKey: () =>
      combineShares([
        { index: 1, value: keepers[0]!.shard.get()! },
        { index: 2, value: keepers[1]!.shard.get()! },
      ]),
    async close() {
      for (const c of clients) c.close();
      await f.nexus?.close();
      await Promise.all(keepers.map((k) => k?.close()));
    },
  };
  await Promise.all(up.map((on, i) => on ? f.startKeeper(i) : undefined));
  await f.startNexus(options.nexusStore);
  return f;
}

Deno.test("bootstrap hands out a new key and returns once Nexus proves it holds it", async () => {
  const f = await fixture();
  try {
    assert.equal(f.nexus!.deps.keys.ready, false);
    await f.bootstrap();
    assert.equal(f.nexus!.deps.keys.ready, true);
    assert.deepEqual(f.nexusKey(), f.keepersKey());
    // Every Keeper holds a shard, and Keeper 3's agrees with the others.
    const third = combineShares([
      { index: 1, value: f.keepers[0]!.shard.get()! },
      { index: 3, value: f.keepers[2]!.shard.get()! },
    ]);
    assert.deepEqual(third, f.nexusKey());
    assert.equal(f.bootLog.count("bootstrap complete"), 1);
    const needle = Array.from(f.keepers[0]!.shard.get()!.slice(0, 6)).join(",");
    for (const line of [...f.bootLog.lines, ...f.nexusLog.lines]) assert.ok(!line.includes(needle), line);
  } finally {
    await f.close();
  }
});

Deno.test("bootstrap refuses a Nexus that already runs with a key, force or not, and leaves the Keepers alone", async () => {
  const f = await fixture();
  try {
    await f.bootstrap();
    const before = f.keepers.map((k) => k!.shard.get()!);
    const key = f.nexusKey();
    await assert.rejects(
      f.bootstrap(),
      (e: Error) => e instanceof BootstrapError && /already running with a root key/.test(e.message),
    );
    await assert.rejects(
      f.bootstrap({ force: true }),
      (e: Error) => e instanceof BootstrapError && /SPIKE_BOOTSTRAP_FORCE does not change that/.test(e.message),
    );
    assert.deepEqual(f.keepers.map((k) => k!.shard.get()!), before);
    assert.deepEqual(f.nexusKey(), key);
  } finally {
    await f.close();
  }
});

Deno.test("bootstrap refuses a Nexus that keeps data under another key unless forced; forced, it waits for the wipe", async () => {
  const store = createMemoryStore();
  await writeRootKeyCheck(store, OLD_KEY, systemRandom);
  const f = await fixture({ nexusStore: store });
  try {
    await assert.rejects(
      f.bootstrap(),
      (e: Error) =>
        e instanceof BootstrapError && /already keeps data/.test(e.message) && /operator restore/.test(e.message),
    );
    assert.ok(f.keepers.every((k) => !k!.shard.held), "nothing was handed out");

    // Forced, with nobody wiping the data: Nexus refuses the key, Bootstrap says why.
    await assert.rejects(
      f.bootstrap({ force: true, timeoutMs: 1500 }),
      (e: Error) => e instanceof BootstrapError && /keeps data sealed under another key/.test(e.message),
    );
    assert.ok(f.keepers.every((k) => k!.shard.held), "the forced run handed out shards");
    assert.equal(f.nexus!.deps.keys.ready, false, "Nexus never took a key that does not open its data");

    // Forced again, and the operator wipes Nexus's data meanwhile: verified.
    const run = f.bootstrap({ force: true });
    const before = f.keepers[0]!.shard.get()!;
    await waitUntil(
      () => f.keepers[0]!.shard.get()!.some((b, i) => b !== before[i]),
      "the second forced run handed out its shards",
    );
    await f.nexus!.close();
    await f.startNexus(createMemoryStore());
    await run;
    assert.deepEqual(f.nexusKey(), f.keepersKey());
  } finally {
    await f.close();
  }
});

Deno.test("skipIfInitialized: a fresh deployment is bootstrapped; an initialized one is left alone, exit success", async () => {
  const f = await fixture();
  try {
    assert.equal(await f.bootstrap({ skipIfInitialized: true }), "bootstrapped");
    const shards = f.keepers.map((k) => k!.shard.get()!);
    const key = f.nexusKey();
    assert.equal(await f.bootstrap({ skipIfInitialized: true }), "already-initialized");
    assert.equal(f.bootLog.count("nothing to bootstrap"), 1);
    assert.deepEqual(f.keepers.map((k) => k!.shard.get()!), shards, "no new shard went out");
    assert.deepEqual(f.nexusKey(), key);
    await assert.rejects(
      f.bootstrap({ skipIfInitialized: true, force: true }),
      (e: Error) => e instanceof BootstrapError && /contradict/.test(e.message),
    );
  } finally {
    await f.close();
  }
});

Deno.test("SPIKE's Nexus with a key answers the probe 500: refused, or success with skipIfInitialized; nothing handed out", async () => {
  const f = await fixture();
  // What SPIKE v0.8.2's Nexus answers a verify call whose ciphertext does not
  // open under its loaded key (tests/spike_interop_test.ts runs the real one).
  const probes: string[] = [];
  const spikeNexus: MtlsClient = {
    post(url) {
      probes.push(String(url));
      return Promise.resolve({
        status: 500,
        headers: { "content-type": "application/json" },
        body: new TextEncoder().encode('{"err":"api_internal_error"}'),
      });
    },
    request() {
      return Promise.reject(new Error("bootstrap only POSTs"));
    },
    close() {},
  };
  try {
    assert.equal(await f.bootstrap({ nexus: spikeNexus, skipIfInitialized: true }), "already-initialized");
    await assert.rejects(
      f.bootstrap({ nexus: spikeNexus }),
      (e: Error) => e instanceof BootstrapError && /already running with a root key/.test(e.message),
    );
    assert.equal(probes.length, 2, "one probe each");
    assert.ok(probes.every((url) => url.endsWith("/v1/bootstrap/verify")));
    assert.ok(f.keepers.every((k) => !k!.shard.held), "nothing was handed out");
  } finally {
    await f.close();
  }
});

Deno.test("skipIfInitialized: a Nexus with data but no key is waited for, never given a new key", async () => {
  const store = createMemoryStore();
  await writeRootKeyCheck(store, OLD_KEY, systemRandom);
  const f = await fixture({ nexusStore: store });
  try {
    // Nobody brings the key back: the deadline ends it, pointing at restore; nothing handed out.
    await assert.rejects(
      f.bootstrap({ skipIfInitialized: true, timeoutMs: 800 }),
      (e: Error) =>
        e instanceof BootstrapError && /has not loaded that key before the deadline/.test(e.message) &&
        /operator restore/.test(e.message),
    );
    assert.ok(f.keepers.every((k) => !k!.shard.held), "nothing was handed out");

    // The key comes back while bootstrap waits (here: installed as a restore would): success.
    const run = f.bootstrap({ skipIfInitialized: true });
    await waitUntil(
      () => f.bootLog.lines.some((l) => l.includes("waiting for Nexus to load its existing root key")),
      "bootstrap waits",
    );
    await f.nexus!.deps.keys.install(OLD_KEY.slice());
    assert.equal(await run, "already-initialized");
    assert.deepEqual(f.nexusKey(), OLD_KEY);
  } finally {
    await f.close();
  }
});

Deno.test("a Keeper that is down at first is retried until it comes up", async () => {
  const f = await fixture({ up: [true, false, true] });
  try {
    const run = f.bootstrap();
    await waitUntil(
      () => f.bootLog.lines.some((l) => l.includes("waiting for peer") && l.includes(`:${f.keeperPorts[1]}`)),
      "bootstrap retried keeper 2",
    );
    await f.startKeeper(1);
    await run;
    assert.ok(f.keepers.every((k) => k!.shard.held));
    assert.deepEqual(f.nexusKey(), f.keepersKey());
  } finally {
    await f.close();
  }
});

Deno.test("one Keeper that never comes up: Nexus is verified from the other two; bootstrap warns and succeeds", async () => {
  const f = await fixture({ up: [true, true, false] });
  try {
    const url = localUrl(f.keeperPorts[2]!);
    await f.bootstrap({ timeoutMs: 600 });
    assert.deepEqual(f.nexusKey(), f.keepersKey());
    const warning = f.bootLog.lines.find((l) => l.includes("not every Keeper took its shard"));
    assert.ok(warning?.includes(url) && warning.includes("connection refused"), warning ?? "no warning");
    // Nexus seeds the late Keeper itself once it is up.
    const late = await f.startKeeper(2);
    await waitUntil(() => late.shard.held, "nexus pushed the late keeper its shard");
    const rebuilt = combineShares([
      { index: 1, value: f.keepers[0]!.shard.get()! },
      { index: 3, value: late.shard.get()! },
    ]);
    assert.deepEqual(rebuilt, f.nexusKey());
  } finally {
    await f.close();
  }
});

Deno.test("fewer Keepers than the threshold: bootstrap ends at the deadline with a clear error", async () => {
  const f = await fixture({ up: [true, false, false] });
  try {
    await assert.rejects(f.bootstrap({ timeoutMs: 600 }), (e: Error) => {
      assert.ok(e instanceof BootstrapError);
      assert.match(e.message, /only 1 of 3 Keepers took their shards, 2 are needed/);
      for (const port of f.keeperPorts.slice(1)) {
        assert.ok(e.message.includes(`could not reach Keeper ${localUrl(port)}`));
      }
      assert.match(e.message, /SPIKE_BOOTSTRAP_TIMEOUT/);
      assert.match(e.message, /connection refused/);
      return true;
    });
    assert.equal(f.nexus!.deps.keys.ready, false);
  } finally {
    await f.close();
  }
});

Deno.test("Keepers that accept connections but never answer hit the per-Keeper timeout", async () => {
  const sockets = new Set<Socket>();
  const blackHole: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
  const port = (blackHole.address() as { port: number }).port;
  const f = await fixture();
  try {
    const peers = [f.keeperPorts[0]!, port, port].map(localUrl);
    await assert.rejects(
      f.bootstrap({ keeperPeers: peers, timeoutMs: 1500 }),
      (e: Error) =>
        e instanceof BootstrapError && e.message.includes(`could not reach Keeper ${localUrl(port)}`) &&
        /timed out after 1000 ms/.test(e.message),
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
    await f.close();
  }
});

Deno.test("an unreachable Nexus ends bootstrap with a clear error before any shard is made", async () => {
  const f = await fixture();
  try {
    const url = localUrl(closedPort());
    await assert.rejects(
      f.bootstrap({ nexusUrl: url, timeoutMs: 500 }),
      (e: Error) => e instanceof BootstrapError && e.message.includes(`could not reach Nexus at ${url}`),
    );
    assert.ok(f.keepers.every((k) => !k!.shard.held));
  } finally {
    await f.close();
  }
});

Deno.test("Keepers that refuse the caller stop bootstrap at once with their answer", async () => {
  const f = await fixture();
  try {
    const notBootstrap = await testClient(f.pki, "spike/pilot/role/superuser", (id) => isKeeper(id, trustRoots()));
    try {
      await assert.rejects(
        f.bootstrap({ keepers: notBootstrap }),
        (e: Error) =>
          e instanceof BootstrapError && /only 0 of 3 Keepers/.test(e.message) &&
          /refused its shard: 401 access_unauthorized/.test(e.message),
      );
    } finally {
      notBootstrap.close();
    }
    assert.equal(f.nexus!.deps.keys.ready, false);
  } finally {
    await f.close();
  }
});
