import assert from "node:assert/strict";
import { join } from "node:path";
import { PATHS } from "../api/paths.ts";
import { ApiError } from "../api/errors.ts";
import type { VerifyReport } from "../audit/verifier.ts";
import { localMacChecker, readInputLines, verifyLines } from "../audit/verify_run.ts";
import { silentLogger } from "../log/logger.ts";
import type { AuditRow } from "../store/audit_row.ts";
import type { AuditIntent, AuditRecord, SweepDoneRecord, SweepIntentRecord } from "./audit.ts";
import { deriveAuditKey, rootKeyAuditKeys } from "./audit_key.ts";
import { type LineTarget, openLineTarget } from "./audit_output.ts";
import { AuditTrail } from "./audit_trail.ts";
import { RootKeyState } from "./root_key_state.ts";
import { createTestNexus, FIXED_TIME, peer, testRootKey } from "./testing.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");

function record(n: number, status = 200): AuditRecord {
  return {
    time: FIXED_TIME.toISOString(),
    type: "audit",
    trail: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    spiffeId: "spiffe://spike.ist/app/web",
    route: PATHS.secrets,
    action: "get",
    resource: "app/db",
    permissions: ["read"],
    status,
    err: status === 200 ? null : "state_not_ready",
    outcome: status === 200 ? "ok" : "unavailable",
    durationMs: 0.25,
  };
}

function intent(n: number): AuditIntent {
  const { time, trail, spiffeId, route, action, resource, permissions } = record(n);
  return { time, type: "audit-intent", trail, spiffeId, route, action, resource, permissions };
}

function verify(files: string[]): Promise<VerifyReport> {
  return verifyLines(readInputLines(files), localMacChecker([deriveAuditKey(testRootKey(), 1)]));
}

async function lines(file: string): Promise<Array<Record<string, unknown>>> {
  return (await Deno.readTextFile(file)).trimEnd().split("\n").map((line) => JSON.parse(line));
}

/** Runs `test` with a fresh temporary directory, removed afterwards whatever happens. */
async function inTempDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spike_trail_" });
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A trail on `path` whose audit key follows `keys`, as `startNexus` wires it. */
async function startTrail(path: string, keys: RootKeyState, options: { failClosed?: boolean } = {}) {
  const trail = new AuditTrail({
    target: openLineTarget(path),
    log: silentLogger,
    clock: () => FIXED_TIME,
    failClosed: options.failClosed ?? false,
    keys: rootKeyAuditKeys(keys),
  });
  keys.onInstall(() => trail.keyChanged());
  await trail.start();
  return trail;
}

Deno.test("audit trail: unkeyed until the key arrives, then keyed; rotation starts a linked segment; stop ends it", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "audit.log");
    const keys = new RootKeyState();
    const trail = await startTrail(file, keys);
    trail.record(record(1, 503));
    await keys.install(testRootKey());
    trail.record(record(2));
    await Deno.rename(file, `${file}.1`);
    trail.reopen();
    trail.record(record(3));
    await trail.close();

    const first = await lines(`${file}.1`);
    assert.deepEqual(first.map((r) => [r.event ?? r.type, r.seq, r.keyVersion, r.segment]), [
      ["start", 1, null, 0],
      ["audit", 2, null, 0],
      ["key", 3, 1, 0],
      ["audit", 4, 1, 0],
      ["reopen", 5, 1, 0],
    ]);
    const second = await lines(file);
    assert.deepEqual(second.map((r) => [r.event ?? r.type, r.seq, r.segment]), [
      ["segment", 6, 1],
      ["audit", 7, 1],
      ["stop", 8, 1],
    ]);
    assert.ok([...first, ...second].every((r) => r.instance === trail.instance));
    const report = await verify([`${file}.1`, file]);
    assert.deepEqual([report.ok, report.records, report.segments, report.notes], [true, 8, 2, []]);
  });
});

Deno.test("audit trail: records a full disk swallowed are declared in a MAC'd lost record once writing works again", async () => {
  await inTempDir(async (dir) => {
    // The audit path is a symlink: pointed at /dev/full, every write fails with ENOSPC.
    const path = join(dir, "audit.log");
    const real = join(dir, "real.log");
    await Deno.symlink(real, path);
    const keys = new RootKeyState();
    await keys.install(testRootKey());
    const trail = await startTrail(path, keys, { failClosed: true });
    assert.equal(await trail.record(record(1)), true);

    await Deno.remove(path);
    await Deno.symlink("/dev/full", path);
    trail.reopen();
    assert.equal(await trail.record(record(2)), false, "fail-closed: the record was not written");
    await assert.rejects(
      () => trail.intent!(intent(3)),
      (error: unknown) => error instanceof ApiError && error.status === 503,
    );

    await Deno.remove(path);
    await Deno.symlink(join(dir, "after.log"), path);
    trail.reopen();
    assert.equal(await trail.record(record(4)), true);
    await trail.close();

    const after = await lines(join(dir, "after.log"));
    const lost = after.find((r) => r.event === "lost")!;
    assert.equal(lost.sink, "file");
    assert.match(String(lost.error), /No space left on device/);
    // The segment record for /dev/full, records 2 and 3's intent, the reopen record away from it.
    assert.equal((lost.seqs as number[][]).reduce((n, [a, b]) => n + b! - a! + 1, 0), 4);
    const report = await verify([real, join(dir, "after.log")]);
    assert.equal(report.ok, true, report.finding?.message ?? "");
    assert.match(report.notes.join("\n"), /declared 4 record\(s\) unwritten to its file \(last error: No space left/);
  });
});

Deno.test("audit trail: fail-closed refuses to start on an output it cannot write", async () => {
  await assert.rejects(
    () => startTrail("/dev/full", new RootKeyState(), { failClosed: true }),
    /cannot write the audit trail to \/dev\/full \(SPIKE_NEXUS_AUDIT_FAIL_CLOSED is on\): No space left/,
  );
  // Not fail-closed, it starts and logs (records are declared lost later).
  const trail = await startTrail("/dev/full", new RootKeyState());
  await trail.close();
});

Deno.test("audit trail: table rows carry the exact lines; rows the table refused are declared lost there", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "audit.log");
    const rows: AuditRow[] = [];
    let refuse = false;
    const keys = new RootKeyState();
    await keys.install(testRootKey());
    const trail = new AuditTrail({
      target: openLineTarget(file),
      log: silentLogger,
      clock: () => FIXED_TIME,
      failClosed: false,
      keys: rootKeyAuditKeys(keys),
      // A stand-in for the Postgres table (tests/audit_table_test.ts runs the real one).
      table: {
        insert(batch) {
          if (refuse) return Promise.reject(new Error("database is away"));
          rows.push(...batch);
          return Promise.resolve();
        },
      },
    });
    await trail.start();
    trail.record(record(1));
    const ticket = await trail.intent!(intent(2));
    assert.equal(ticket.row?.type, "audit-intent", "the intent's row is handed to the change, not queued");
    ticket.settle(false); // the change did not commit: the intent is stored on its own
    await new Promise((resolve) => setTimeout(resolve, 10));
    refuse = true;
    trail.record(record(3));
    await new Promise((resolve) => setTimeout(resolve, 10));
    refuse = false;
    trail.record(record(4));
    await trail.close();

    const fileLines = (await Deno.readTextFile(file)).trimEnd().split("\n");
    const byLine = new Map(rows.map((row) => [row.line, row]));
    assert.equal(rows.length, fileLines.length - 1, "every record but the one refused");
    for (const row of rows) assert.ok(fileLines.includes(row.line));
    const lost = rows.find((row) => row.event === "lost")!;
    assert.match(lost.line, /"sink":"table","seqs":\[\[5,5\]\],"error":"database is away"/);
    const intentRow = [...byLine.values()].find((row) => row.type === "audit-intent")!;
    assert.deepEqual([intentRow.trail, intentRow.status, intentRow.resource], [record(2).trail, null, "app/db"]);
    const sorted = rows.toSorted((a, b) => a.seq - b.seq).map((row) => row.line);
    const tableFile = join(dir, "table.txt");
    await Deno.writeTextFile(tableFile, sorted.join("\n") + "\n");
    const report = await verify([tableFile]);
    assert.equal(report.ok, true, report.finding?.message ?? "");
    assert.match(report.notes.join("\n"), /declared 1 record\(s\) unwritten to its table/);
  });
});

Deno.test("fail-closed app: on a full disk a put is refused with 503 and changes nothing; reads are refused too", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.symlink(join(dir, "real.log"), path);
    const keys = new RootKeyState();
    await keys.install(testRootKey());
    const trail = await startTrail(path, keys, { failClosed: true });
    const nexus = await createTestNexus({ auditSink: trail });
    const put = (value: string) =>
      nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { pass: value } });
    const get = () => nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "app/db" });
    assert.equal((await put("before")).status, 200);

    await Deno.remove(path);
    await Deno.symlink("/dev/full", path);
    trail.reopen();
    const refused = await put("during");
    assert.deepEqual([refused.status, refused.body], [503, { err: "state_not_ready" }]);
    assert.deepEqual([(await get()).status, (await get()).body], [503, { err: "state_not_ready" }]);
    const record = await nexus.deps.store!.readSecret("app/db");
    assert.equal(record?.currentVersion, 1, "the refused put wrote nothing");

    await Deno.remove(path);
    await Deno.symlink(join(dir, "after.log"), path);
    trail.reopen();
    const read = await get();
    assert.deepEqual([read.status, read.body], [200, { data: { pass: "before" } }]);
    await trail.close();
    const after = await lines(join(dir, "after.log"));
    // The intent of the refused put was declared lost, never silently dropped.
    assert.ok(after.some((r) => r.event === "lost"));
    const types = (await lines(join(dir, "real.log"))).map((r) => r.event ?? `${r.type}:${r.action}`);
    assert.deepEqual(types, ["start", "key", "audit-intent:", "audit:", "reopen"]);
  });
});

/** A line target in memory that counts its writes and fails while `full` is set. */
function memoryTarget(): LineTarget & { writes: string[]; full: boolean } {
  const target = {
    name: "memory",
    isFile: false,
    writes: [] as string[],
    full: false,
    append(text: string) {
      if (target.full) throw new Error("No space left on device (os error 28)");
      target.writes.push(text);
    },
    sync: () => Promise.resolve(),
    reopen: () => target,
    close: () => Promise.resolve(),
  };
  return target;
}

Deno.test("audit trail: lines sealed in one turn go out in one write, before the request's answer; a failed write is declared", async () => {
  const target = memoryTarget();
  const keys = new RootKeyState();
  await keys.install(testRootKey());
  const trail = new AuditTrail({
    target,
    log: silentLogger,
    clock: () => FIXED_TIME,
    failClosed: false,
    keys: rootKeyAuditKeys(keys),
  });
  await trail.start();
  trail.keyChanged();
  await Promise.resolve();
  const before = target.writes.length;
  for (let n = 1; n <= 3; n++) trail.record(record(n));
  assert.equal(target.writes.length, before, "nothing written within the turn");
  await Promise.resolve();
  assert.equal(target.writes.length, before + 1, "three records, one write");
  assert.equal(target.writes.at(-1)!.split("\n").length, 3);

  // Through the app: by the time the answer is back, its record was written.
  const nexus = await createTestNexus({ auditSink: trail });
  const written = target.writes.length;
  const answer = await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "nothing/here" });
  assert.equal(answer.status, 404);
  assert.match(target.writes.slice(written).join("\n"), /"route":"\/v1\/store\/secrets","action":"get"/);

  // A write that fails loses its whole turn; the next write that works declares it, MAC'd.
  target.full = true;
  trail.record(record(4));
  trail.record(record(5));
  await Promise.resolve();
  target.full = false;
  trail.record(record(6));
  await trail.close();
  const all = target.writes.join("\n").split("\n").map((line) => JSON.parse(line));
  const lost = all.find((r) => r.event === "lost");
  assert.ok(lost, "a lost record");
  const missing = (lost.seqs as number[][]).flatMap(([a, b]) => Array.from({ length: b! - a! + 1 }, (_, i) => a! + i));
  assert.equal(missing.length, 2);
  assert.ok(missing.every((seq) => !all.some((r) => r.seq === seq)), "the declared records are the missing ones");
  assert.deepEqual(all.filter((r) => r.type === "audit").map((r) => r.trail), [
    record(1).trail,
    record(2).trail,
    record(3).trail,
    all.find((r) => r.route === PATHS.secrets && r.status === 404)!.trail,
    record(6).trail,
  ]);
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, target.writes.join("\n") + "\n");
    const report = await verify([file]);
    assert.equal(report.ok, true, report.finding?.message ?? "");
    assert.match(report.notes.join("\n"), /declared 2 record\(s\) unwritten to its file/);
  } finally {
    await Deno.remove(file);
  }
});

function sweepIntent(paths: string[]): SweepIntentRecord {
  return { time: FIXED_TIME.toISOString(), type: "audit-sweep", trail: crypto.randomUUID(), phase: "intent", paths };
}

Deno.test("audit trail: a sweep intent counts once synced (fail-closed); on a full disk it is refused, then declared", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.symlink(join(dir, "real.log"), path);
    const keys = new RootKeyState();
    await keys.install(testRootKey());
    const trail = await startTrail(path, keys, { failClosed: true });
    assert.equal(await trail.sweep(sweepIntent(["a"])), true);
    await Deno.remove(path);
    await Deno.symlink("/dev/full", path);
    trail.reopen();
    assert.equal(await trail.sweep(sweepIntent(["b"])), false, "not written: the batch must not run");
    await Deno.remove(path);
    await Deno.symlink(join(dir, "after.log"), path);
    trail.reopen();
    assert.equal(await trail.sweep(sweepIntent(["c"])), true);
    await trail.close();
    const report = await verify([join(dir, "real.log"), join(dir, "after.log")]);
    assert.equal(report.ok, true, report.finding?.message ?? "");
    const sweeps = (await lines(join(dir, "real.log"))).concat(await lines(join(dir, "after.log")))
      .filter((r) => r.type === "audit-sweep").map((r) => r.paths);
    assert.deepEqual(sweeps, [["a"], ["c"]]);
  });
});

Deno.test("audit trail: with a table, a sweep intent's row is committed durably before it resolves; a refused row refuses it", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "audit.log");
    const inserts: Array<{ types: string[]; durable: boolean }> = [];
    let refuse = false;
    const trail = new AuditTrail({
      target: openLineTarget(file),
      log: silentLogger,
      clock: () => FIXED_TIME,
      failClosed: false,
      table: {
        insert(batch, options) {
          if (refuse) return Promise.reject(new Error("database is away"));
          inserts.push({ types: batch.map((row) => row.type), durable: options.durable });
          return Promise.resolve();
        },
      },
    });
    await trail.start();
    await new Promise((resolve) => setTimeout(resolve, 10));
    inserts.length = 0;
    assert.equal(await trail.sweep(sweepIntent(["a"])), true);
    assert.deepEqual(inserts, [{ types: ["audit-sweep"], durable: true }], "stored, durably, when it resolves");
    refuse = true;
    assert.equal(await trail.sweep(sweepIntent(["b"])), false, "the table refused it: the batch must not run");
    refuse = false;
    const done: SweepDoneRecord = {
      time: FIXED_TIME.toISOString(),
      type: "audit-sweep",
      trail: crypto.randomUUID(),
      phase: "done",
      removed: ["a"],
      destroyed: [],
      skipped: [],
    };
    assert.equal(await trail.sweep(done), true);
    await trail.close();
    const lost = (await lines(file)).find((r) => r.event === "lost");
    assert.equal(lost?.sink, "table", "the refused intent's row is declared lost in the chain");
  });
});
