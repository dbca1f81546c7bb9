/**
 * Root key rotation in process, against real Keepers over mTLS and real
 * stores: every record re-sealed while reads and writes go on, the key
 * check, retirement and Keeper hand-over; a second Nexus on the same store
 * following without a restart (and its stale writes refused, then
 * retried); a rotation given up when too few Keepers keep versions apart; a
 * rotation whose driver stopped, taken over; retired shards refused by a
 * restore. Process kills are in `tests/rotation_test.ts`.
 */
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { join } from "node:path";
import { systemRandom } from "../crypto/random.ts";
import { splitSecret } from "../crypto/shamir.ts";
import {
  createTestPki,
  localUrl,
  recordingLog,
  startSpikeLikeKeeper,
  startTestKeeper,
  testClient,
  type TestPki,
  waitUntil,
} from "../keeper/testing.ts";
import type { RunningKeeper } from "../keeper/server.ts";
import { isKeeper, trustRoots } from "../spiffe/roles.ts";
import type { MtlsClient } from "../spiffe/mtls_client.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import { createSqliteStore } from "../store/sqlite_store.ts";
import type { Store } from "../store/types.ts";
import { KeyManager } from "./key_manager.ts";
import { keyCheckMetaKey } from "./key_check.ts";
import { installRootKey } from "./key_installer.ts";
import { type KeeperSync, startKeeperSync } from "./keeper_sync.ts";
import { KeyRotation, type KeyRotationOptions } from "./key_rotation.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import { retiredAt } from "./key_versions.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";
import { RootKeyState } from "./root_key_state.ts";
import { SecretService } from "./secret_service.ts";
import { storePolicy, testRootKey } from "./testing.ts";

const WEB = "spiffe://spike.ist/app/web";

/** One Nexus's key management over a shared store and Keepers. */
interface Member {
  readonly keys: RootKeyState;
  readonly sync: KeeperSync;
  readonly rotation: KeyRotation;
  readonly secrets: SecretService;
  readonly policies: PolicySnapshot;
  readonly log: ReturnType<typeof recordingLog>;
  close(): Promise<void>;
}

async function member(
  pki: TestPki,
  store: Store,
  keepers: readonly (RunningKeeper | number)[],
  options: Partial<KeyRotationOptions> = {},
  pollMs = 50,
): Promise<Member> {
  const keys = new RootKeyState();
  const log = recordingLog();
  const client: MtlsClient = await testClient(pki, "spike/nexus", (id) => isKeeper(id, trustRoots()));
  const clock = () => new Date();
  const deps = { store, keys, random: systemRandom, log, clock };
  const sync = startKeeperSync(deps, client, {
    peers: keepers.map((k) => localUrl(typeof k === "number" ? k : k.port)),
    threshold: 2,
    pushIntervalMs: 60_000,
    keyStatePollMs: pollMs,
    initialBackoffMs: 10,
    maxBackoffMs: 50,
  });
  const rotation = new KeyRotation(deps, sync, { threshold: 2, batchSize: 16, leaseMs: 2_000, ...options });
  const manager = new KeyManager();
  manager.attach(sync, rotation);
  const secrets = new SecretService({
    store,
    keys,
    clock,
    random: systemRandom,
    maxVersions: 10,
    keyCatchUp: manager,
    writes: new KeyedQueue(),
  });
  const policies = new PolicySnapshot({ log, keys });
  return {
    keys,
    sync,
    rotation,
    secrets,
    policies,
    log,
    async close() {
      await rotation.stop();
      const stopping = sync.stop();
      client.close();
      await stopping;
      keys.clear();
    },
  };
}

/** Three Keepers holding the test key's shards as version 1 (as Bootstrap leaves them). */
async function keepersWithKey(pki: TestPki): Promise<RunningKeeper[]> {
  const shares = splitSecret(testRootKey(), 3, 2);
  return await Promise.all(shares.map(async (share) => {
    const keeper = await startTestKeeper(pki);
    keeper.shard.set(share.value, 1);
    return keeper;
  }));
}

async function seed(m: Member, store: Store, paths: number, versions: number): Promise<void> {
  for (let p = 0; p < paths; p++) {
    for (let v = 1; v <= versions; v++) await m.secrets.put(`app/s${p}`, { value: `${p}-${v}` });
  }
  // Custom metadata is sealed on its own (not per version): the rotation must re-seal it too.
  for (let p = 0; p < Math.min(paths, 5); p++) {
    await m.secrets.putMetadata(`app/s${p}`, { customMetadata: { owner: `team-${p}` } });
  }
  // A destroyed version has no sealed bytes left: the rotation relabels it and keeps it.
  // (On a path of its own: the rotation tests' load writes app/s*, and pruning could drop it.)
  if (versions > 1) {
    await m.secrets.put("app/destroyed", { value: "gone" });
    await m.secrets.put("app/destroyed", { value: "kept" });
    await m.secrets.destroy("app/destroyed", [1]);
  }
  await storePolicy({ store, keys: m.keys, random: systemRandom }, {
    name: "web",
    spiffeIdPattern: `^${WEB.replaceAll(".", "\\.")}$`,
    pathPattern: "^app/",
    permissions: ["read"],
    createdAt: new Date(1_000),
    updatedAt: new Date(1_000),
  });
}

async function rotated(rotation: KeyRotation, to: number): Promise<void> {
  await waitUntil(
    async () => {
      const status = await rotation.status();
      return status.phase === "idle" && status.keyVersion === to && !rotation.running;
    },
    `the rotation to version ${to} finished`,
    60_000,
  );
}

for (
  const [kind, open] of [
    ["memory", () => Promise.resolve({ store: createMemoryStore(), cleanup: async () => {} })],
    ["sqlite", async () => {
      const dir = await Deno.makeTempDir({ prefix: "spike_rotation_" });
      return {
        store: createSqliteStore({ dataDir: join(dir, "data") }),
        cleanup: () => Deno.remove(dir, { recursive: true }),
      };
    }],
  ] as const
) {
  Deno.test(`rotation (${kind}): every record re-sealed while reads and writes go on; old key gone`, async () => {
    const pki = await createTestPki();
    const { store, cleanup } = await open();
    const keepers = await keepersWithKey(pki);
    // Reads finished while records were being re-sealed (between the first batch and the end).
    let sealing = false;
    let readsWhileSealing = 0;
    const m = await member(pki, store, keepers, {
      at: (step) => {
        if (step === "batch") sealing = true;
        if (step === "finished") sealing = false;
        return Promise.resolve();
      },
    });
    try {
      await m.sync.recovered;
      assert.equal(m.keys.writeVersion, 1);
      await seed(m, store, 60, 3);
      assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 182, customMetadata: 5, policies: 1 });

      // Readers and writers run all through the rotation.
      let stop = false;
      const errors: unknown[] = [];
      const load = Array.from({ length: 4 }, async (_, w) => {
        let i = 0;
        while (!stop) {
          // Each read is a task of its own, as requests arriving over the
          // network are: on the memory store, with small records opened by
          // synchronous node:crypto, a loop of awaits alone never lets the
          // rotation's timers and Keeper traffic run.
          await new Promise((resolve) => setImmediate(resolve));
          const p = (w * 7 + i++) % 60;
          try {
            const got = await m.secrets.get(`app/s${p}`, 0);
            assert.match(got.value!, new RegExp(`^${p}-`));
            if (sealing) readsWhileSealing++;
            if (i % 5 === 0) await m.secrets.put(`app/s${p}`, { value: `${p}-w${w}` });
          } catch (error) {
            errors.push(error);
          }
        }
      });
      assert.deepEqual(await m.rotation.start(), { from: 1, to: 2 });
      await assert.rejects(m.rotation.start(), /already in progress/);
      await rotated(m.rotation, 2);
      stop = true;
      await Promise.all(load);
      assert.deepEqual(errors, [], "no read or write failed during the rotation");
      assert.ok(readsWhileSealing > 0, "reads were served between batches, not only after the rotation");

      assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 0, customMetadata: 0, policies: 0 });
      assert.deepEqual(m.keys.heldVersions(), [2], "the old key is dropped from memory");
      assert.equal(m.keys.writeVersion, 2);
      for (let p = 0; p < 60; p++) {
        const record = (await store.readSecret(`app/s${p}`))!;
        assert.ok([...record.versions.values()].every((v) => v.keyVersion === 2));
        for (const [v, sealed] of record.versions) if (sealed.sealed.length > 0) await m.secrets.get(`app/s${p}`, v);
        if (p < 5) {
          assert.equal(record.customMetadata?.keyVersion, 2, "custom metadata re-sealed");
          const view = await m.secrets.metadata(`app/s${p}`, 0);
          assert.deepEqual(view.metadata.customMetadata, { owner: `team-${p}` });
        }
      }
      const destroyed = (await store.readSecret("app/destroyed"))!;
      assert.deepEqual(
        [...destroyed.versions.values()].map((v) => [v.version, v.sealed.length === 0, v.keyVersion]),
        [[1, true, 2], [2, false, 2]],
        "the destroyed version is still there, still destroyed, relabelled",
      );
      const generation = await m.policies.generation(store);
      assert.equal(generation.set.grants(WEB, "app/s1", ["read"], { strict: false }), true);
      assert.deepEqual(generation.tampered, []);
      assert.ok(await store.getMeta(keyCheckMetaKey(2)), "the new version's check value is stored");
      assert.ok(await retiredAt(store, 1), "the retirement of version 1 is recorded");
      assert.deepEqual(keepers.map((k) => k.shard.versions()), [[2], [2], [2]], "Keepers dropped version 1");
      // At least the seeded records (writes before sealing began added more under version 1).
      assert.ok((await m.rotation.status()).resealedHere >= 181);
      assert.ok(m.log.count("root key rotation finished") === 1);
    } finally {
      await m.close();
      await Promise.all(keepers.map((k) => k.close()));
      await store.close();
      await cleanup();
    }
  });
}

Deno.test("rotation: a second Nexus on the same store follows without a restart; its stale write is retried", async () => {
  const pki = await createTestPki();
  const dir = await Deno.makeTempDir({ prefix: "spike_rotation_ha_" });
  const stores = [0, 1, 2].map(() => createSqliteStore({ dataDir: dir }));
  const keepers = await keepersWithKey(pki);
  const a = await member(pki, stores[0]!, keepers);
  const b = await member(pki, stores[1]!, keepers);
  // C never polls the key state: it learns of a rotation only from the store refusing it, or a record it cannot open.
  const c = await member(pki, stores[2]!, keepers, {}, 3_600_000);
  try {
    await Promise.all([a.sync.recovered, b.sync.recovered, c.sync.recovered]);
    await seed(a, stores[0]!, 20, 2);
    await a.rotation.start();
    await rotated(a.rotation, 2);
    // B learns of it by itself (key state poll), without a restart.
    await waitUntil(() => b.keys.writeVersion === 2 && !b.keys.holds(1), "B follows to version 2");
    await b.secrets.put("app/from-b", { v: "1" });
    assert.equal((await stores[1]!.readSecret("app/from-b"))!.versions.get(1)!.keyVersion, 2);
    assert.deepEqual(await a.secrets.get("app/from-b", 0), { v: "1" });

    // C still seals under version 1: the store refuses its write, it catches up and writes again.
    assert.equal(c.keys.writeVersion, 1);
    await c.secrets.put("app/from-c", { v: "1" });
    assert.equal((await stores[2]!.readSecret("app/from-c"))!.versions.get(1)!.keyVersion, 2);
    assert.equal(c.keys.writeVersion, 2);
    assert.deepEqual(c.keys.heldVersions(), [2], "and dropped the retired key");
    assert.deepEqual(await stores[0]!.countSealedBelow(2), { secretVersions: 0, customMetadata: 0, policies: 0 });

    // Another rotation: C reads a record re-sealed under a version it does not hold yet, and catches up for it.
    await a.rotation.start();
    await rotated(a.rotation, 3);
    assert.deepEqual(await c.secrets.get("app/s3", 0), { value: "3-2" });
    assert.equal(c.keys.writeVersion, 3);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
    await Promise.all(keepers.map((k) => k.close()));
    await Promise.all(stores.map((s) => s.close()));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rotation: a Keeper like SPIKE's (one shard, no versions) gets the new shard only once the rotation finished", async () => {
  const pki = await createTestPki();
  const store = createMemoryStore();
  const shares = splitSecret(testRootKey(), 3, 2);
  const ours = await Promise.all(
    shares.slice(0, 2).map(async (share) => {
      const keeper = await startTestKeeper(pki);
      keeper.shard.set(share.value, 1);
      return keeper;
    }),
  );
  const spikeLike = await startSpikeLikeKeeper(pki);
  const peers = [...ours.map((k) => k.port), spikeLike.port];
  const whileSealing: (Uint8Array | undefined)[] = [];
  const m = await member(pki, store, peers, {
    at: (step) => {
      if (step === "sealing") whileSealing.push(spikeLike.shard());
      return Promise.resolve();
    },
  });
  try {
    await m.sync.recovered;
    await m.sync.pushNow();
    assert.deepEqual(spikeLike.shard(), shares[2]!.value, "it holds its share of version 1");
    await seed(m, store, 5, 1);
    await m.rotation.start();
    await rotated(m.rotation, 2);
    assert.deepEqual(
      whileSealing,
      [shares[2]!.value],
      "while sealing it still held version 1's share, not the new one",
    );
    const newShare = m.keys.withRootKey((root) => splitSecret(root, 3, 2)[2]!.value, 2);
    assert.deepEqual(spikeLike.shard(), newShare, "after the rotation it holds the new key's share");
    assert.deepEqual(m.sync.keepers().map((k) => k.versioned), [true, true, false]);
    // A Nexus starting now rebuilds version 2 from any two of the three, the SPIKE-like one included.
    await ours[0]!.close();
    const fresh = await member(pki, store, peers);
    try {
      await fresh.sync.recovered;
      assert.equal(fresh.keys.writeVersion, 2);
    } finally {
      await fresh.close();
    }
  } finally {
    await m.close();
    await ours[1]!.close();
    await spikeLike.close();
  }
});

Deno.test("rotation: with too few Keepers that keep versions apart it is given up, nothing sealed under the new key", async () => {
  const pki = await createTestPki();
  const store = createMemoryStore();
  // One Keeper keeps versions apart; the two others are like SPIKE's.
  const shares = splitSecret(testRootKey(), 3, 2);
  const ours = await startTestKeeper(pki);
  ours.shard.set(shares[0]!.value, 1);
  const spikeLike = await Promise.all([startSpikeLikeKeeper(pki), startSpikeLikeKeeper(pki)]);
  const m = await member(pki, store, [ours.port, ...spikeLike.map((k) => k.port)], { distributeTimeoutMs: 300 });
  try {
    // The SPIKE-like Keepers hold nothing yet: the key arrives as a restore would bring it.
    await installRootKey({ store, keys: m.keys, random: systemRandom, log: m.log }, testRootKey());
    await m.sync.recovered;
    await m.sync.pushNow();
    await seed(m, store, 3, 1);
    await m.rotation.start();
    await waitUntil(async () => (await m.rotation.status()).lastError !== undefined, "the rotation was given up");
    const status = await m.rotation.status();
    assert.equal(status.phase, "idle");
    assert.equal(status.keyVersion, 1);
    assert.match(status.lastError!, /only 1 Keeper/);
    assert.deepEqual(m.keys.heldVersions(), [1]);
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 3, customMetadata: 3, policies: 1 });
    await m.secrets.put("app/s0", { value: "after" });
    assert.equal((await store.readSecret("app/s0"))!.versions.get(2)!.keyVersion, 1);
    assert.deepEqual(
      spikeLike.map((k) => k.shard()),
      [shares[1]!.value, shares[2]!.value],
      "their one shard is intact",
    );
  } finally {
    await m.close();
    await ours.close();
    await Promise.all(spikeLike.map((k) => k.close()));
  }
});

Deno.test("rotation: one whose driver stopped mid-way is taken over once its lease runs out", async () => {
  const pki = await createTestPki();
  const store = createMemoryStore();
  const keepers = await keepersWithKey(pki);
  let paused = false;
  const a = await member(pki, store, keepers, {
    at: async (step) => {
      if (step !== "batch") return;
      paused = true;
      await new Promise<never>(() => {});
    },
  });
  const b = await member(pki, store, keepers, { checkIntervalMs: 100 });
  try {
    await Promise.all([a.sync.recovered, b.sync.recovered]);
    await seed(a, store, 40, 2);
    await a.rotation.start();
    await waitUntil(() => paused, "A stopped after its first batch");
    const midway = await store.countSealedBelow(2);
    assert.ok(midway.secretVersions > 0 && midway.secretVersions < 80, JSON.stringify(midway));
    await waitUntil(() => b.keys.holds(2), "B fetched the new key while sealing");
    b.rotation.watch();
    await rotated(b.rotation, 2);
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 0, customMetadata: 0, policies: 0 });
    assert.ok(b.log.count("taking over a root key rotation") >= 1);
    for (let p = 0; p < 40; p++) assert.deepEqual(await b.secrets.get(`app/s${p}`, 0), { value: `${p}-2` });
  } finally {
    await b.close();
    // A's rotation waits at its hook for ever (as a killed process would); only its Keeper exchange is stopped.
    await Promise.race([a.close(), new Promise((resolve) => setTimeout(resolve, 100))]);
    await a.sync.stop();
    await Promise.all(keepers.map((k) => k.close()));
  }
});

Deno.test("rotation: the shards of the retired key no longer install; the message names the version", async () => {
  const pki = await createTestPki();
  const store = createMemoryStore();
  const keepers = await keepersWithKey(pki);
  const m = await member(pki, store, keepers);
  try {
    await m.sync.recovered;
    await seed(m, store, 2, 1);
    await m.rotation.start();
    await rotated(m.rotation, 2);
    const fresh = new RootKeyState();
    const offer = await installRootKey(
      { store, keys: fresh, random: systemRandom, log: recordingLog() },
      testRootKey(),
    );
    assert.equal(offer, "retired");
    assert.equal(fresh.ready, false);
  } finally {
    await m.close();
    await Promise.all(keepers.map((k) => k.close()));
  }
});
