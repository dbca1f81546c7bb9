/**
 * Nexus ↔ Keepers over real mTLS: recovery of the root key from the Keepers
 * at start (3/3, 2/3, waiting at 1/3), the key check that refuses shards of
 * another key, and the periodic push that re-seeds a restarted Keeper.
 */
import assert from "node:assert/strict";
import { type Share, splitSecret } from "../crypto/shamir.ts";
import { systemRandom } from "../crypto/random.ts";
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
import type { RunningKeeper } from "../keeper/server.ts";
import { isKeeper, trustRoots } from "../spiffe/roles.ts";
import type { MtlsClient } from "../spiffe/mtls_client.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { Store } from "../store/types.ts";
import { checkRootKey, writeRootKeyCheck } from "./key_check.ts";
import { installRootKey } from "./key_installer.ts";
import { type KeeperSync, type KeeperSyncOptions, startKeeperSync } from "./keeper_sync.ts";
import { KeeperStatus } from "./keeper_status.ts";
import { RootKeyState } from "./root_key_state.ts";
import { testRootKey } from "./testing.ts";

const KEY = testRootKey();
const SHARES = splitSecret(KEY, 3, 2);
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 13 + 5) & 0x7f);
const OTHER_SHARES = splitSecret(OTHER_KEY, 3, 2);

/** Three Keepers (some may be left unstarted) and a Nexus side wired to them. */
interface Fixture {
  readonly pki: TestPki;
  readonly keepers: (RunningKeeper | undefined)[];
  readonly ports: number[];
  readonly store: Store;
  readonly keys: RootKeyState;
  readonly log: ReturnType<typeof recordingLog>;
  readonly client: MtlsClient;
  start(options?: Partial<KeeperSyncOptions>): KeeperSync;
  close(): Promise<void>;
}

/** `holding[i]`: the share Keeper i starts with; `null` = Keeper not running. */
async function fixture(holding: (Share | undefined | null)[], callTimeoutMs = 2000): Promise<Fixture> {
  const pki = await createTestPki();
  const keepers = await Promise.all(holding.map(async (share) => {
    if (share === null) return undefined;
    const keeper = await startTestKeeper(pki);
    if (share) keeper.shard.set(share.value);
    return keeper;
  }));
  const ports = keepers.map((k) => k?.port ?? closedPort());
  const client = await testClient(pki, "spike/nexus", (id) => isKeeper(id, trustRoots()), callTimeoutMs);
  const store = createMemoryStore();
  const keys = new RootKeyState();
  const log = recordingLog();
  let sync: KeeperSync | undefined;
  return {
    pki,
    keepers,
    ports,
    store,
    keys,
    log,
    client,
    start(options = {}) {
      sync = startKeeperSync({ store, keys, random: systemRandom, log }, client, {
        peers: ports.map(localUrl),
        threshold: 2,
        pushIntervalMs: 60_000,
        initialBackoffMs: 10,
        maxBackoffMs: 40,
        ...options,
      });
      return sync;
    },
    async close() {
      const stopping = sync?.stop();
      client.close();
      await stopping;
      await Promise.all(keepers.map((k) => k?.close()));
      keys.clear();
      await store.close();
    },
  };
}

function rootKeyOf(keys: RootKeyState): Uint8Array {
  return keys.withRootKey((root) => root.slice());
}

Deno.test("recovery with 3 of 3 Keepers rebuilds the key and records its check value", async () => {
  const f = await fixture([SHARES[0], SHARES[1], SHARES[2]]);
  try {
    await f.start().recovered;
    assert.deepEqual(rootKeyOf(f.keys), KEY);
    assert.equal((await checkRootKey(f.store, KEY)).result, "match");
    assert.equal((await checkRootKey(f.store, OTHER_KEY)).result, "mismatch");
    assert.equal(f.log.count("root key rebuilt from keepers"), 1);
  } finally {
    await f.close();
  }
});

Deno.test("recovery with 2 of 3 Keepers (one down) still rebuilds the key", async () => {
  for (const down of [0, 1, 2]) {
    const holding: (Share | null)[] = [SHARES[0]!, SHARES[1]!, SHARES[2]!];
    holding[down] = null;
    const f = await fixture(holding);
    try {
      await f.start().recovered;
      assert.deepEqual(rootKeyOf(f.keys), KEY, `keeper ${down + 1} down`);
    } finally {
      await f.close();
    }
  }
});

Deno.test("with 1 of 3 shards Nexus waits, and recovers once a second Keeper gets its shard", async () => {
  const f = await fixture([SHARES[0], undefined, undefined]);
  const status = new KeeperStatus(3, 2, () => new Date("2030-01-02T03:04:05.000Z"));
  try {
    assert.deepEqual(status.view(), { configured: 3, threshold: 2, shardsFound: null, lastPush: null });
    const sync = f.start({ status });
    await waitUntil(() => f.log.count("waiting for keeper shards") >= 3, "three rounds found too few shards");
    assert.equal(f.keys.ready, false);
    assert.ok(f.log.lines.some((l) => l.includes('"have":1') && l.includes('"need":2')));
    assert.deepEqual(status.view(), { configured: 3, threshold: 2, shardsFound: 1, lastPush: null });
    f.keepers[1]!.shard.set(SHARES[1]!.value);
    await sync.recovered;
    assert.deepEqual(rootKeyOf(f.keys), KEY);
    // The install itself re-seeds every Keeper, including the one that had nothing.
    await waitUntil(() => f.keepers[2]!.shard.held, "keeper 3 got its shard");
    assert.deepEqual(f.keepers[2]!.shard.get(), SHARES[2]!.value);
    await waitUntil(() => status.view().lastPush !== null, "the push was recorded");
    assert.deepEqual(status.view(), {
      configured: 3,
      threshold: 2,
      shardsFound: 2,
      lastPush: { at: "2030-01-02T03:04:05.000Z", accepted: 3 },
    });
    const pushedAt = new Date("2030-01-02T03:04:05.000Z").getTime();
    assert.deepEqual(status.keepers().map((k) => [k.reachable, k.lastPushOkAt, k.pushes.ok]), [
      [true, pushedAt, 1],
      [true, pushedAt, 1],
      [true, pushedAt, 1],
    ]);
  } finally {
    await f.close();
  }
});

Deno.test("a restarted Keeper gets its shard back from the periodic push", async () => {
  const f = await fixture([SHARES[0], SHARES[1], SHARES[2]]);
  const status = new KeeperStatus(3, 2);
  try {
    const sync = f.start({ pushIntervalMs: 100, status });
    await sync.recovered;
    await waitUntil(() => status.keepers().every((k) => k.lastPushOkAt !== null), "every keeper took a push");
    const port = f.ports[1]!;
    await f.keepers[1]!.close();
    assert.equal(f.keepers[1]!.shard.held, false, "a closed Keeper has zeroed its shard");
    // While it is down, its pushes fail and it shows as unreachable; the others stay up.
    await waitUntil(() => status.keepers()[1]!.pushes.unreachable > 0, "a push to the stopped keeper failed");
    const down = status.keepers();
    assert.equal(down[1]!.reachable, false);
    assert.equal(down[0]!.reachable, true);
    const lastOk = down[1]!.lastPushOkAt;
    assert.ok(lastOk !== null && lastOk <= Date.now());
    const restarted = await startTestKeeper(f.pki, port);
    f.keepers[1] = restarted;
    assert.equal(restarted.shard.held, false);
    await waitUntil(() => restarted.shard.held, "the restarted keeper holds a shard again");
    assert.deepEqual(restarted.shard.get(), SHARES[1]!.value);
    await waitUntil(() => status.keepers()[1]!.reachable === true, "the restarted keeper shows as reachable");
    assert.ok(status.keepers()[1]!.lastPushOkAt! > lastOk);
    // Pushes are the same shard each time: the others never changed.
    assert.deepEqual(f.keepers[0]!.shard.get(), SHARES[0]!.value);
    assert.deepEqual(f.keepers[2]!.shard.get(), SHARES[2]!.value);
    assert.equal(await sync.pushNow(), 3);
  } finally {
    await f.close();
  }
});

Deno.test("shards of another key are refused by the key check: Nexus stays not ready", async () => {
  const f = await fixture([OTHER_SHARES[0], OTHER_SHARES[1], OTHER_SHARES[2]]);
  try {
    await writeRootKeyCheck(f.store, KEY, systemRandom);
    f.start();
    await waitUntil(
      () => f.log.count("do not rebuild the root key of this Nexus's data") >= 3,
      "three rounds were refused",
    );
    assert.equal(f.keys.ready, false);
    assert.equal((await checkRootKey(f.store, KEY)).result, "match", "the check value was not replaced");
    // Nothing was pushed back over the Keepers' shards.
    assert.deepEqual(f.keepers[0]!.shard.get(), OTHER_SHARES[0]!.value);
  } finally {
    await f.close();
  }
});

Deno.test("one Keeper holding a stray shard does not stop recovery from the other two", async () => {
  for (const stray of [0, 1, 2]) {
    const holding = [SHARES[0], SHARES[1], SHARES[2]];
    holding[stray] = OTHER_SHARES[stray];
    const f = await fixture(holding);
    try {
      await writeRootKeyCheck(f.store, KEY, systemRandom);
      const sync = f.start();
      await sync.recovered;
      assert.deepEqual(rootKeyOf(f.keys), KEY, `stray shard at keeper ${stray + 1}`);
      // The stray Keeper is put right by the push that follows the install.
      await waitUntil(
        () => f.keepers[stray]!.shard.get()?.every((b, i) => b === SHARES[stray]!.value[i]) ?? false,
        `keeper ${stray + 1} was re-seeded`,
      );
    } finally {
      await f.close();
    }
  }
});

Deno.test("a shard that is not a valid share value is ignored", async () => {
  const f = await fixture([SHARES[0], { index: 2, value: new Uint8Array(32).fill(0xff) }, SHARES[2]]);
  try {
    await f.start().recovered;
    assert.deepEqual(rootKeyOf(f.keys), KEY);
  } finally {
    await f.close();
  }
});

Deno.test("a key installed by a restore ends recovery at once and re-seeds the Keepers", async () => {
  const f = await fixture([undefined, undefined, null]);
  try {
    // Backoff long enough that only the install can end the wait.
    const sync = f.start({ initialBackoffMs: 3_600_000, maxBackoffMs: 3_600_000 });
    await waitUntil(() => f.log.count("waiting for keeper shards") >= 1, "a first round ran");
    assert.equal(
      await installRootKey({ store: f.store, keys: f.keys, random: systemRandom, log: f.log }, KEY),
      "installed",
    );
    let done = false;
    sync.recovered.then(() => done = true);
    await waitUntil(() => done, "recovery ended");
    await waitUntil(() => f.keepers[0]!.shard.held && f.keepers[1]!.shard.held, "keepers were re-seeded");
    assert.deepEqual(f.keepers[0]!.shard.get(), SHARES[0]!.value);
    assert.deepEqual(f.keepers[1]!.shard.get(), SHARES[1]!.value);
  } finally {
    await f.close();
  }
});

Deno.test("pushNow before a key is loaded sends nothing; stop ends an endless recovery", async () => {
  const f = await fixture([undefined, null, null]);
  try {
    const sync = f.start();
    assert.equal(await sync.pushNow(), 0);
    await waitUntil(() => f.log.count("waiting for keeper shards") >= 2, "two rounds ran");
    await sync.stop();
    await sync.recovered;
    assert.equal(f.keys.ready, false);
    assert.equal(f.keepers[0]!.shard.held, false);
  } finally {
    await f.close();
  }
});

Deno.test("no shard byte reaches the Nexus log during recovery and pushes", async () => {
  const f = await fixture([SHARES[0], SHARES[1], null]);
  try {
    const sync = f.start();
    await sync.recovered;
    await sync.pushNow();
    const needles = SHARES.map((s) => Array.from(s.value.slice(0, 6)).join(","));
    for (const line of f.log.lines) {
      for (const needle of needles) assert.ok(!line.includes(needle), line);
    }
  } finally {
    await f.close();
  }
});

Deno.test("recovery proceeds once the threshold is met, without waiting for a Keeper that never answers", async () => {
  // A listener that accepts connections, reads what it is sent and never answers (a hung Keeper).
  const hung = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of hung) open.push(conn);
  })();
  // Calls give up after a minute, far longer than the wait below: only the threshold can end the round.
  const f = await fixture([SHARES[0], SHARES[1], null], 60_000);
  try {
    f.ports[2] = (hung.addr as Deno.NetAddr).port;
    const sync = f.start();
    await waitUntil(() => open.length > 0, "the hung keeper was asked too");
    await waitUntil(() => f.keys.ready, "the key was rebuilt while the third keeper hangs");
    await sync.recovered;
    assert.deepEqual(rootKeyOf(f.keys), KEY);
  } finally {
    await f.close();
    hung.close();
    for (const conn of open) {
      try {
        conn.close();
      } catch { /* closed by the client */ }
    }
    await accepting.catch(() => {});
  }
});
