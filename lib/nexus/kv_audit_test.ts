/**
 * The key-value writes [ours] under the audit guarantees, in process: with
 * an audit table, every one of them (put with check-and-set, patch,
 * destroy, move, metadata put, metadata delete) hands its intent's row to
 * the store call that changes state (the Postgres store inserts it in that
 * statement or transaction: `lib/store/postgres_audit_test.ts`, and a real
 * Nexus in `tests/audit_table_test.ts`); fail-closed on a full disk, every
 * one is refused with 503 and changes nothing. The trail, with the
 * multi-path records of move and batch read, verifies.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PATHS } from "../api/paths.ts";
import { localMacChecker, readInputLines, verifyLines } from "../audit/verify_run.ts";
import { silentLogger } from "../log/logger.ts";
import type { AuditRow } from "../store/audit_row.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { Store } from "../store/types.ts";
import { deriveAuditKey, rootKeyAuditKeys } from "./audit_key.ts";
import { openLineTarget } from "./audit_output.ts";
import { AuditTrail } from "./audit_trail.ts";
import { RootKeyState } from "./root_key_state.ts";
import { createTestNexus, FIXED_TIME, peer, type TestNexus, testRootKey } from "./testing.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");
const VALUE = "kv-audit-marker-5d1e";

/** The new write requests, each against its own path so they do not depend on one another. */
const WRITES: ReadonlyArray<{ name: string; route: string; action: string; body: Record<string, unknown> }> = [
  { name: "put with cas", route: PATHS.secrets, action: "", body: { path: "w/cas", values: { k: VALUE }, cas: 1 } },
  {
    name: "put with ttl",
    route: PATHS.secrets,
    action: "",
    body: { path: "w/ttl", values: { k: VALUE }, ttl: "1h", versionTtl: "30m" },
  },
  { name: "patch", route: PATHS.secrets, action: "patch", body: { path: "w/patch", values: { k: null, n: VALUE } } },
  { name: "destroy", route: PATHS.secrets, action: "destroy", body: { path: "w/destroy", versions: [1] } },
  { name: "move", route: PATHS.secrets, action: "move", body: { from: "w/move", to: "w/moved" } },
  {
    name: "metadata put",
    route: PATHS.secretsMetadata,
    action: "",
    body: { path: "w/meta", customMetadata: { owner: VALUE }, ttl: "2h" },
  },
  { name: "metadata delete", route: PATHS.secretsMetadata, action: "delete", body: { path: "w/remove" } },
];

/** Seeds each write's path: one version (two at `w/patch`, so the patch keeps a key). */
async function seed(nexus: TestNexus): Promise<void> {
  for (const path of ["w/cas", "w/ttl", "w/patch", "w/destroy", "w/move", "w/meta", "w/remove"]) {
    const values = path === "w/patch" ? { k: "1", j: "2" } : { k: "1" };
    const response = await nexus.call(SUPERUSER, PATHS.secrets, "", { path, values });
    assert.equal(response.status, 200, path);
  }
}

/** `store` with the audit rows its writes were handed, by store method. */
function rowCapturing(store: Store): { store: Store; rows: Array<[string, AuditRow | undefined]> } {
  const rows: Array<[string, AuditRow | undefined]> = [];
  return {
    rows,
    store: {
      ...store,
      writeSecret(path, expected, next, options) {
        rows.push(["writeSecret", options?.audit]);
        return store.writeSecret(path, expected, next, options);
      },
      deleteSecret(path, expected, options) {
        rows.push(["deleteSecret", options?.audit]);
        return store.deleteSecret(path, expected, options);
      },
      moveSecret(from, fromRevision, to, toRevision, next, options) {
        rows.push(["moveSecret", options?.audit]);
        return store.moveSecret(from, fromRevision, to, toRevision, next, options);
      },
    },
  };
}

async function keyedTrail(file: string, options: { failClosed: boolean; table?: boolean }) {
  const keys = new RootKeyState();
  await keys.install(testRootKey());
  const tableRows: AuditRow[] = [];
  const trail = new AuditTrail({
    target: openLineTarget(file),
    log: silentLogger,
    clock: () => FIXED_TIME,
    failClosed: options.failClosed,
    keys: rootKeyAuditKeys(keys),
    ...(options.table
      ? { table: { insert: (rows: readonly AuditRow[]) => Promise.resolve(void tableRows.push(...rows)) } }
      : {}),
  });
  await trail.start();
  return { trail, tableRows };
}

async function parsedLines(file: string): Promise<Array<Record<string, unknown>>> {
  return (await Deno.readTextFile(file)).trimEnd().split("\n").map((line) => JSON.parse(line));
}

Deno.test("kv audit, table mode: every new write hands its intent's row to the store call that changes state", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_kv_audit_" });
  try {
    const file = join(dir, "audit.log");
    const { trail } = await keyedTrail(file, { failClosed: false, table: true });
    const captured = rowCapturing(createMemoryStore());
    const nexus = await createTestNexus({ store: captured.store, auditSink: trail });
    await seed(nexus);
    for (const write of WRITES) {
      captured.rows.length = 0;
      const response = await nexus.call(SUPERUSER, write.route, write.action, write.body);
      assert.equal(response.status, 200, `${write.name}: ${JSON.stringify(response.body)}`);
      const changes = captured.rows.filter(([, row]) => row !== undefined);
      assert.equal(changes.length, 1, `${write.name}: one change, carrying its row (${JSON.stringify(captured.rows)})`);
      const [method, row] = changes[0]!;
      assert.equal(row!.type, "audit-intent", write.name);
      assert.equal(row!.route, write.route, write.name);
      assert.equal(row!.action, write.action, write.name);
      const expected = write.name === "move"
        ? "moveSecret"
        : write.name === "metadata delete"
        ? "deleteSecret"
        : "writeSecret";
      assert.equal(method, expected, write.name);
      assert.ok(!row!.line.includes(VALUE), `${write.name}: no value in the row`);
    }
    await trail.close();
    const records = await parsedLines(file);
    // The move's intent names both paths, as authorized, like its record.
    const moveIntent = records.find((r) => r.type === "audit-intent" && r.action === "move")!;
    assert.deepEqual(moveIntent.resources, [
      { path: "w/move", permissions: ["read", "write"], outcome: "ok" },
      { path: "w/moved", permissions: ["write"], outcome: "ok" },
    ]);
    const moveRecord = records.find((r) => r.type === "audit" && r.trail === moveIntent.trail)!;
    assert.deepEqual(moveRecord.resources, moveIntent.resources);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv audit, fail-closed: on a full disk every new write is refused (503) and changes nothing; the trail verifies", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_kv_audit_" });
  try {
    const path = join(dir, "audit.log");
    await Deno.symlink(join(dir, "first.log"), path);
    const { trail } = await keyedTrail(path, { failClosed: true });
    const nexus = await createTestNexus({ auditSink: trail });
    await seed(nexus);
    const store = nexus.deps.store!;
    const snapshot = async () =>
      JSON.stringify(
        await Promise.all((await store.listSecretPaths()).map(async (p) => [p, await store.readSecret(p)])),
        (_, value) => value instanceof Map ? [...value] : value instanceof Uint8Array ? [...value] : value,
      );
    const before = await snapshot();

    await Deno.remove(path);
    await Deno.symlink("/dev/full", path);
    trail.reopen();
    for (const write of WRITES) {
      const response = await nexus.call(SUPERUSER, write.route, write.action, write.body);
      assert.deepEqual([response.status, response.body], [503, { err: "state_not_ready" }], write.name);
    }
    assert.equal(await snapshot(), before, "no write changed anything");

    // The disk is back: each write goes through, after its intent; a batch read lists its paths.
    await Deno.remove(path);
    await Deno.symlink(join(dir, "second.log"), path);
    trail.reopen();
    for (const write of WRITES) {
      const response = await nexus.call(SUPERUSER, write.route, write.action, write.body);
      assert.equal(response.status, 200, `${write.name}: ${JSON.stringify(response.body)}`);
    }
    const many = await nexus.call(SUPERUSER, PATHS.secrets, "getMany", { paths: ["w/cas", "w/none"] });
    assert.equal(many.status, 200);
    await trail.close();

    const second = await parsedLines(join(dir, "second.log"));
    for (const write of WRITES) {
      const intent = second.findIndex((r) =>
        r.type === "audit-intent" && r.route === write.route && r.action === write.action
      );
      const record = second.findIndex((r) => r.type === "audit" && r.trail === second[intent]?.trail);
      assert.ok(intent >= 0 && record > intent, `${write.name}: intent, then the request's record`);
    }
    const batch = second.find((r) => r.type === "audit" && r.action === "getMany")!;
    assert.deepEqual(batch.resources, [
      { path: "w/cas", permissions: ["read"], outcome: "ok" },
      { path: "w/none", permissions: ["read"], outcome: "not_found" },
    ]);
    const text = await Deno.readTextFile(join(dir, "first.log")) + await Deno.readTextFile(join(dir, "second.log"));
    assert.ok(!text.includes(VALUE), "no value in the trail");
    const report = await verifyLines(
      readInputLines([join(dir, "first.log"), join(dir, "second.log")]),
      localMacChecker([deriveAuditKey(testRootKey(), 1)]),
    );
    assert.equal(report.ok, true, report.finding?.message ?? "");
    assert.match(report.notes.join("\n"), /declared \d+ record\(s\) unwritten to its file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
