/**
 * The expiry sweep with a clock moved by hand, on the memory store and on
 * SQLite: expired secrets removed, expired versions destroyed, in bounded
 * batches, reads the same before and after, a put landing meanwhile kept,
 * and one pass at a time.
 */
import assert from "node:assert/strict";
import { PATHS } from "../api/paths.ts";
import { silentLogger } from "../log/logger.ts";
import { createSqliteStore } from "../store/sqlite_store.ts";
import type { Store } from "../store/types.ts";
import { ExpirySweeper, type SweepReport } from "./expiry_sweeper.ts";
import { isDestroyed } from "./secret_state.ts";
import { createTestNexus, manualClock, peer, type TestNexus } from "./testing.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");
const HOUR = 3_600_000;

async function call(nexus: TestNexus, path: string, action: string, body: unknown, status = 200): Promise<unknown> {
  const response = await nexus.call(SUPERUSER, path, action, body);
  assert.equal(response.status, status, `${path}?action=${action} → ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Runs `use` on the memory store and on a SQLite store in a temp dir. */
async function onEachStore(use: (store: Store, name: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spike_sweep_" });
  try {
    for (const [name, store] of [["memory", undefined], ["sqlite", createSqliteStore({ dataDir: dir })]] as const) {
      const nexus = await createTestNexus();
      const chosen = store ?? nexus.deps.store!;
      try {
        await use(chosen, name);
      } finally {
        await chosen.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sweep: removes expired secrets, destroys expired versions, leaves the rest; reads agree before and after", async () => {
  await onEachStore(async (store, name) => {
    const clock = manualClock();
    const nexus = await createTestNexus({ store, clock: clock.now });
    await call(nexus, PATHS.secrets, "", { path: "a/whole", values: { v: "1" }, ttl: "1h" });
    await call(nexus, PATHS.secrets, "", { path: "a/versions", values: { v: "1" } });
    await call(nexus, PATHS.secrets, "", { path: "a/versions", values: { v: "2" }, versionTtl: "1h" });
    await call(nexus, PATHS.secrets, "", { path: "a/versions", values: { v: "3" }, versionTtl: "3h" });
    await call(nexus, PATHS.secrets, "", { path: "a/later", values: { v: "1" }, ttl: "2h" });
    await call(nexus, PATHS.secrets, "", { path: "a/never", values: { v: "1" } });
    const reports: SweepReport[] = [];
    const sweeper = new ExpirySweeper({
      store,
      clock: clock.now,
      log: silentLogger,
      batchSize: 10,
      onPass: (r) => reports.push(r),
    });

    assert.deepEqual(pick(await sweeper.sweep()), { ran: true, removedSecrets: 0, destroyedVersions: 0 }, name);
    clock.advance(HOUR);
    const metaBefore = await call(nexus, PATHS.secretsMetadata, "get", { path: "a/versions" });
    const readBefore = await call(nexus, PATHS.secrets, "get", { path: "a/versions" });
    assert.deepEqual(pick(await sweeper.sweep()), { ran: true, removedSecrets: 1, destroyedVersions: 1 }, name);
    assert.equal(await store.readSecret("a/whole"), undefined, "the expired secret's record is gone");
    const record = (await store.readSecret("a/versions"))!;
    assert.ok(isDestroyed(record.versions.get(2)!), "the expired version's bytes are gone");
    assert.equal(record.versions.get(2)!.expiresAt, undefined, "and it is not found again");
    assert.equal(record.versions.get(2)!.deletedTime!.getTime(), clock.now().getTime(), "deleted when it expired");
    assert.ok(!isDestroyed(record.versions.get(3)!) && !isDestroyed(record.versions.get(1)!));
    assert.deepEqual(await call(nexus, PATHS.secrets, "get", { path: "a/versions" }), readBefore);
    const metaAfter = await call(nexus, PATHS.secretsMetadata, "get", { path: "a/versions" }) as {
      versions: Record<string, Record<string, unknown>>;
      metadata: unknown;
    };
    assert.deepEqual(metaAfter.metadata, (metaBefore as { metadata: unknown }).metadata, "same current version");
    assert.equal(metaAfter.versions["2"]!.destroyed, true);
    assert.deepEqual(
      pick(await sweeper.sweep()),
      { ran: true, removedSecrets: 0, destroyedVersions: 0 },
      "nothing twice",
    );

    clock.advance(2 * HOUR);
    assert.deepEqual(pick(await sweeper.sweep()), { ran: true, removedSecrets: 1, destroyedVersions: 1 }, name);
    assert.deepEqual(await call(nexus, PATHS.secrets, "get", { path: "a/versions" }), { data: { v: "1" } });
    assert.deepEqual(await store.listSecretPaths(), ["a/never", "a/versions"]);
    assert.equal(reports.length, 4);
  });
});

Deno.test("sweep: bounded batches — a mass expiry takes several batches, at most maxBatches per pass", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const store = nexus.deps.store!;
  for (let i = 0; i < 95; i++) {
    await call(nexus, PATHS.secrets, "", { path: `bulk/${String(i).padStart(3, "0")}`, values: { v: "1" }, ttl: "1s" });
  }
  clock.advance(1000);
  const sweeper = new ExpirySweeper({ store, clock: clock.now, log: silentLogger, batchSize: 10, maxBatches: 4 });
  const first = await sweeper.sweep();
  assert.equal(first.batches, 4);
  assert.equal(first.removedSecrets, 40, "four full batches of ten");
  const second = await sweeper.sweep();
  assert.deepEqual([second.batches, second.removedSecrets], [4, 40]);
  const third = await sweeper.sweep();
  assert.deepEqual([third.batches, third.removedSecrets], [2, 15], "the short batch ends the pass");
  assert.deepEqual(await store.listSecretPaths(), []);
});

Deno.test("sweep: a put that lands after the expiry is kept (the sweep rewrites through compare-and-swap)", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const store = nexus.deps.store!;
  await call(nexus, PATHS.secrets, "", { path: "p", values: { v: "old" }, ttl: "1h" });
  clock.advance(HOUR);
  // Expired and not yet swept: a put makes a fresh secret in its place.
  await call(nexus, PATHS.secrets, "", { path: "p", values: { v: "new" } });
  const sweeper = new ExpirySweeper({ store, clock: clock.now, log: silentLogger, batchSize: 10 });
  assert.equal((await sweeper.sweep()).removedSecrets, 0);
  assert.deepEqual(await call(nexus, PATHS.secrets, "get", { path: "p" }), { data: { v: "new" } });
  const meta = await call(nexus, PATHS.secretsMetadata, "get", { path: "p" }) as {
    metadata: { currentVersion: number };
  };
  assert.equal(meta.metadata.currentVersion, 1);
});

Deno.test("sweep: a pass that finds the store's exclusive lock taken does nothing; start/stop run it on an interval", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const store = nexus.deps.store!;
  await call(nexus, PATHS.secrets, "", { path: "p", values: { v: "1" }, ttl: "1s" });
  clock.advance(1000);
  const reports: SweepReport[] = [];
  const sweeper = new ExpirySweeper({
    store,
    clock: clock.now,
    log: silentLogger,
    batchSize: 10,
    onPass: (r) => reports.push(r),
  });
  let release!: () => void;
  const holding = store.tryExclusive(() => new Promise<void>((resolve) => release = resolve));
  assert.deepEqual(pick(await sweeper.sweep()), { ran: false, removedSecrets: 0, destroyedVersions: 0 });
  assert.equal(reports.length, 0, "a skipped pass is not reported as one that ran");
  release();
  await holding;
  sweeper.start(10);
  const deadline = Date.now() + 5000;
  while (await store.readSecret("p") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await sweeper.stop();
  assert.equal(await store.readSecret("p"), undefined, "the interval swept it");
  const passes = reports.length;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(reports.length, passes, "nothing runs after stop");
});

function pick(report: SweepReport) {
  return { ran: report.ran, removedSecrets: report.removedSecrets, destroyedVersions: report.destroyedVersions };
}
