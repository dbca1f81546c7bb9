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
import { join } from "node:path";
import { MAX_RECORD_LINE } from "../audit/chain_format.ts";
import { localMacChecker, readInputLines, verifyLines } from "../audit/verify_run.ts";
import { memoryAuditSink, type SweepRecord } from "./audit.ts";
import { deriveAuditKey, rootKeyAuditKeys } from "./audit_key.ts";
import { openLineTarget } from "./audit_output.ts";
import { AuditTrail } from "./audit_trail.ts";
import { RootKeyState } from "./root_key_state.ts";
import { groupsWithin, sweepDoneRecords } from "./sweep_audit.ts";
import { ExpirySweeper, type ExpirySweeperDeps, type SweepReport } from "./expiry_sweeper.ts";
import { isDestroyed } from "./secret_state.ts";
import { createTestNexus, manualClock, peer, type TestNexus, testRootKey } from "./testing.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");
const HOUR = 3_600_000;

async function call(nexus: TestNexus, path: string, action: string, body: unknown, status = 200): Promise<unknown> {
  const response = await nexus.call(SUPERUSER, path, action, body);
  assert.equal(response.status, status, `${path}?action=${action} → ${JSON.stringify(response.body)}`);
  return response.body;
}

/** A sweeper of `store` on `clock`: batches of 10, silent, audited in memory, unless `options` says otherwise. */
function sweeperOn(
  store: Store,
  clock: { now: () => Date },
  options: Partial<ExpirySweeperDeps> = {},
): ExpirySweeper {
  return new ExpirySweeper({
    store,
    clock: clock.now,
    log: silentLogger,
    batchSize: 10,
    audit: memoryAuditSink(),
    ...options,
  });
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
    const audit = memoryAuditSink();
    const sweeper = sweeperOn(store, clock, { onPass: (r) => reports.push(r), audit });

    assert.deepEqual(pick(await sweeper.sweep()), { ran: true, removedSecrets: 0, destroyedVersions: 0 }, name);
    assert.equal(audit.sweeps.length, 0, "a pass with nothing expired leaves no record");
    clock.advance(HOUR);
    const metaBefore = await call(nexus, PATHS.secretsMetadata, "get", { path: "a/versions" });
    const readBefore = await call(nexus, PATHS.secrets, "get", { path: "a/versions" });
    assert.deepEqual(pick(await sweeper.sweep()), { ran: true, removedSecrets: 1, destroyedVersions: 1 }, name);
    assert.equal(await store.readSecret("a/whole"), undefined, "the expired secret's record is gone");
    const record = (await store.readSecret("a/versions"))!;
    assert.ok(isDestroyed(record.versions.get(2)!), "the expired version's bytes are gone");
    assert.equal(record.versions.get(2)!.expiresAt, undefined, "and it is not found again");
    assert.equal(record.versions.get(2)!.deletedTime!.getTime(), clock.now().getTime(), "deleted when it expired");
    // Audited: the intent named both paths, the outcome says what happened to each, under one trail id.
    const [intent, done] = audit.sweeps;
    assert.equal(audit.sweeps.length, 2);
    assert.ok(intent?.phase === "intent");
    assert.deepEqual(
      [intent.time, intent.type, intent.paths.toSorted()],
      [clock.now().toISOString(), "audit-sweep", ["a/versions", "a/whole"]],
    );
    assert.deepEqual(done, {
      time: clock.now().toISOString(),
      type: "audit-sweep",
      trail: intent!.trail,
      phase: "done",
      removed: ["a/whole"],
      destroyed: [{ path: "a/versions", versions: [2] }],
      skipped: [],
    });
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
  const audit = memoryAuditSink();
  const sweeper = sweeperOn(store, clock, { maxBatches: 4, audit });
  const first = await sweeper.sweep();
  assert.equal(first.batches, 4);
  assert.equal(first.removedSecrets, 40, "four full batches of ten");
  const second = await sweeper.sweep();
  assert.deepEqual([second.batches, second.removedSecrets], [4, 40]);
  const third = await sweeper.sweep();
  assert.deepEqual([third.batches, third.removedSecrets], [2, 15], "the short batch ends the pass");
  assert.deepEqual(await store.listSecretPaths(), []);
  // One intent and one outcome per batch: 4 + 4 + 2 batches.
  const removed = audit.sweeps.flatMap((r) => r.phase === "done" ? r.removed : []);
  assert.equal(audit.sweeps.filter((r) => r.phase === "intent").length, 10);
  assert.equal(audit.sweeps.filter((r) => r.phase === "done").length, 10);
  assert.deepEqual(removed.toSorted(), Array.from({ length: 95 }, (_, i) => `bulk/${String(i).padStart(3, "0")}`));
});

Deno.test("sweep: a put that lands after the expiry is kept (the sweep rewrites through compare-and-swap)", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const store = nexus.deps.store!;
  await call(nexus, PATHS.secrets, "", { path: "p", values: { v: "old" }, ttl: "1h" });
  clock.advance(HOUR);
  // Expired and not yet swept: a put makes a fresh secret in its place.
  await call(nexus, PATHS.secrets, "", { path: "p", values: { v: "new" } });
  const audit = memoryAuditSink();
  const sweeper = sweeperOn(store, clock, { audit });
  assert.equal((await sweeper.sweep()).removedSecrets, 0);
  assert.equal(audit.sweeps.length, 0, "the put left nothing expired to find");
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
  const sweeper = sweeperOn(store, clock, { onPass: (r) => reports.push(r) });
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

Deno.test("sweep audit: the intent is stored before any change; a refused intent changes nothing and ends the pass", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const store = nexus.deps.store!;
  for (const path of ["x/1", "x/2", "x/3"]) {
    await call(nexus, PATHS.secrets, "", { path, values: { v: "secret-value-91f3" }, ttl: "1s" });
  }
  clock.advance(1000);
  const seen: SweepRecord[] = [];
  let refuse = true;
  const audit = {
    async sweep(record: SweepRecord) {
      seen.push(record);
      if (record.phase === "intent") {
        // Nothing of the batch has changed yet when its intent is written.
        for (const path of record.paths) assert.ok(await store.readSecret(path), `${path} is still there`);
        return !refuse;
      }
      return true;
    },
  };
  const sweeper = sweeperOn(store, clock, { batchSize: 2, audit });
  const held = await sweeper.sweep();
  assert.deepEqual([held.auditRefused, held.removedSecrets, held.batches], [true, 0, 1]);
  assert.deepEqual(await store.listSecretPaths(), ["x/1", "x/2", "x/3"], "a refused batch changed nothing");
  assert.equal(seen.length, 1, "no outcome for a batch that never ran");

  refuse = false;
  const ran = await sweeper.sweep();
  assert.deepEqual([ran.auditRefused, ran.removedSecrets, ran.batches], [false, 3, 2]);
  assert.deepEqual(await store.listSecretPaths(), []);
  const intents = seen.filter((r) => r.phase === "intent");
  const done = seen.filter((r) => r.phase === "done");
  assert.deepEqual(seen.map((r) => r.phase), ["intent", "intent", "done", "intent", "done"]);
  assert.deepEqual(
    done.map((r) => r.trail),
    intents.slice(1).map((r) => r.trail),
    "each outcome shares its intent's trail",
  );
  assert.deepEqual(done.flatMap((r) => r.removed).toSorted(), ["x/1", "x/2", "x/3"]);
  assert.ok(!JSON.stringify(seen).includes("secret-value-91f3"), "never a value");
});

Deno.test("sweep audit: a write that fails mid-batch is recorded: what was done, the failed path and those not started skipped; the pass fails", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const inner = nexus.deps.store!;
  // More paths than one round of concurrent sweeps (32): the second round never starts.
  const paths = Array.from({ length: 40 }, (_, i) => `f/${String(i).padStart(2, "0")}`);
  for (const path of paths) {
    await call(nexus, PATHS.secrets, "", { path, values: { v: "1" }, ttl: "1s" });
  }
  clock.advance(1000);
  const order = await inner.listExpired(clock.now(), 100);
  assert.equal(order.length, 40);
  const failing = order[1]!;
  const store: Store = {
    ...inner,
    deleteSecret: (path, revision, row) =>
      path === failing ? Promise.reject(new Error("disk on fire")) : inner.deleteSecret(path, revision, row),
  };
  const audit = memoryAuditSink();
  const sweeper = sweeperOn(store, clock, { batchSize: 100, audit });
  await assert.rejects(sweeper.sweep(), /disk on fire/);
  const [intent, done] = audit.sweeps;
  assert.ok(intent?.phase === "intent" && done?.phase === "done");
  assert.deepEqual(intent.paths, order);
  const swept = order.slice(0, 32).filter((p) => p !== failing);
  const left = [failing, ...order.slice(32)];
  assert.deepEqual([done.removed, done.skipped], [swept, left]);
  assert.deepEqual((await inner.listSecretPaths()).toSorted(), left.toSorted());
});

Deno.test("expiry sweep: a path's sweep waits for the Nexus's writers of that path (same write turns)", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const store = nexus.deps.store!;
  await call(nexus, PATHS.secrets, "", { path: "turn/a", values: { v: "1" }, ttl: "1s" });
  clock.advance(1000);
  let release!: () => void;
  const held = nexus.deps.secretWrites.run("turn/a", () => new Promise<void>((resolve) => release = resolve));
  const sweeper = sweeperOn(store, clock, { writes: nexus.deps.secretWrites });
  const pass = sweeper.sweep();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(await store.listSecretPaths(), ["turn/a"], "swept while a writer of the path held its turn");
  release();
  await held;
  assert.equal((await pass).removedSecrets, 1);
  assert.deepEqual(await store.listSecretPaths(), []);
});

Deno.test("sweep audit: long path lists are cut into records a verifier reads, and the chain verifies", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_sweep_audit_" });
  try {
    const clock = manualClock();
    const nexus = await createTestNexus({ clock: clock.now });
    const store = nexus.deps.store!;
    // 300 paths of 480 characters: about 145,000 characters of paths in one batch.
    const paths = Array.from({ length: 300 }, (_, i) => `long/${String(i).padStart(3, "0")}/${"p".repeat(471)}`);
    for (const path of paths) {
      await call(nexus, PATHS.secrets, "", { path, values: { v: "1" } });
      await call(nexus, PATHS.secrets, "", { path, values: { v: "2" }, versionTtl: "1s" });
    }
    await call(nexus, PATHS.secrets, "", { path: paths[0]!, values: { v: "3" }, ttl: "1s" });
    clock.advance(1000);
    const file = join(dir, "audit.log");
    const keys = new RootKeyState();
    await keys.install(testRootKey());
    const trail = new AuditTrail({
      target: openLineTarget(file),
      log: silentLogger,
      clock: clock.now,
      failClosed: true,
      keys: rootKeyAuditKeys(keys),
    });
    await trail.start();
    const sweeper = sweeperOn(store, clock, { batchSize: 500, audit: trail });
    const report = await sweeper.sweep();
    assert.deepEqual([report.removedSecrets, report.destroyedVersions], [1, 299]);
    await trail.close();
    const lines = (await Deno.readTextFile(file)).trimEnd().split("\n");
    for (const line of lines) assert.ok(line.length < MAX_RECORD_LINE, `a line of ${line.length} characters`);
    const records = lines.map((line) => JSON.parse(line)).filter((r) => r.type === "audit-sweep");
    const intents = records.filter((r) => r.phase === "intent");
    assert.ok(intents.length >= 3, `${intents.length} intent records`);
    assert.deepEqual(intents.flatMap((r) => r.paths).toSorted(), paths);
    const done = records.filter((r) => r.phase === "done");
    assert.deepEqual(done.flatMap((r) => r.removed), [paths[0]]);
    assert.deepEqual(
      done.flatMap((r) => r.destroyed).map((d: { path: string; versions: number[] }) => [d.path, d.versions]),
      paths.slice(1).map((path) => [path, [2]]),
    );
    const verified = await verifyLines(readInputLines([file]), localMacChecker([deriveAuditKey(testRootKey(), 1)]));
    assert.equal(verified.ok, true, verified.finding?.message ?? "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep audit records: grouping keeps every entry, in order, each group within the budget", () => {
  const items = Array.from({ length: 50 }, (_, i) => "q".repeat(i * 7));
  const groups = groupsWithin(items, 400);
  assert.deepEqual(groups.flat(), items);
  for (const group of groups) {
    const size = group.reduce((n, item) => n + JSON.stringify(item).length + 1, 0);
    assert.ok(group.length === 1 || size <= 400, `a group of ${size}`);
  }
  assert.deepEqual(groupsWithin([]), []);
  const trail = crypto.randomUUID();
  const records = sweepDoneRecords(trail, new Date(0), {
    removed: ["a", "b"],
    destroyed: [{ path: "c", versions: Array.from({ length: 40 }, (_, i) => i + 1) }],
    skipped: ["d"],
  }, 100);
  assert.ok(records.length > 1);
  assert.ok(records.every((r) => r.trail === trail && r.phase === "done"));
  assert.deepEqual(
    [records.flatMap((r) => r.removed), records.flatMap((r) => r.destroyed).length, records.flatMap((r) => r.skipped)],
    [["a", "b"], 1, ["d"]],
  );
  assert.deepEqual(sweepDoneRecords(trail, new Date(0), { removed: [], destroyed: [], skipped: [] }).length, 1);
});

function pick(report: SweepReport) {
  return { ran: report.ran, removedSecrets: report.removedSecrets, destroyedVersions: report.destroyedVersions };
}
