/**
 * `SPIKE_NEXUS_AUDIT_FAIL_CLOSED=true` on a real `spike nexus`, with a real
 * write failure: the audit path is a symlink, rotated (SIGHUP) onto
 * `/dev/full`, where every write fails with ENOSPC. While records cannot be
 * written, a put, a move and a metadata delete are refused with 503 and
 * write nothing (read back after the disk "recovers"), reads are refused
 * too, and the expiry sweep holds back (the expired secret stays in the
 * SQLite file until the disk is back, then the sweep removes it, audited);
 * the records Nexus could not write are declared in the chain once it can
 * write again, so the trail still verifies. A Nexus that cannot write its
 * first record does not start.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SQLITE_FILE_NAME } from "../lib/store/sqlite_store.ts";
import { exits, type RestoredNexus, startRestoredNexus } from "./support/restored_nexus.ts";
import { eventually, freePort, runSpike } from "./support/process.ts";

Deno.test("fail-closed audit on a real Nexus: a full disk refuses requests and changes nothing", async () => {
  const logs = await Deno.makeTempDir({ prefix: "spike_audit_full_" });
  const path = join(logs, "audit.log");
  const point = async (target: string) => {
    await Deno.remove(path).catch(() => {});
    await Deno.symlink(target, path);
  };
  await point(join(logs, "first.log"));
  let nexus: RestoredNexus | undefined;
  try {
    nexus = await startRestoredNexus("spike_audit_fail_closed_", {
      nexusEnv: () => ({
        SPIKE_NEXUS_AUDIT_LOG: path,
        SPIKE_NEXUS_AUDIT_FAIL_CLOSED: "true",
        SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "200ms",
      }),
    });
    exits(await nexus.admin(["secret", "put", "app/db", "pass=before"]), 0, "put while the disk works");
    exits(await nexus.admin(["secret", "put", "app/keep", "pass=kept"]), 0, "put while the disk works");
    // Expires while the disk is full: the sweep must hold back until it can audit the removal.
    exits(await nexus.admin(["secret", "put", "app/tmp", "pass=brief", "--ttl", "3s"]), 0, "put with a ttl");
    const file = join(nexus.dir, "data", SQLITE_FILE_NAME);
    const stored = (secretPath: string) => {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        return db.prepare("SELECT count(*) AS n FROM secrets WHERE path = ?").get(secretPath)?.n === 1;
      } finally {
        db.close();
      }
    };

    // Log rotation onto a full disk.
    await point("/dev/full");
    Deno.kill(nexus.process.pid, "SIGHUP");
    await nexus.process.waitFor(/audit output failing: records are not being stored; requests are refused \(503\)/);
    const put = await nexus.admin(["secret", "put", "app/db", "pass=during"]);
    assert.equal(put.code, 1, put.stdout);
    assert.match(put.stderr, /Nexus is not ready: .* or it cannot write its audit trail/);
    const get = await nexus.admin(["secret", "get", "app/db"]);
    assert.equal(get.code, 1, "an unaudited read is refused too");
    assert.doesNotMatch(get.stdout, /before/);
    for (
      const args of [["secret", "move", "app/keep", "app/moved"], ["secret", "metadata", "delete", "app/keep", "--yes"]]
    ) {
      const refused = await nexus.admin(args);
      assert.equal(refused.code, 1, `${args.join(" ")}: ${refused.stdout}`);
      assert.match(refused.stderr, /Nexus is not ready/);
    }
    await nexus.process.waitFor(/expiry sweep held back: its audit record could not be stored/);
    assert.ok(stored("app/tmp"), "the expired secret was not swept unaudited");
    assert.ok(stored("app/keep") && !stored("app/moved"), "the refused move and delete changed nothing");

    // The disk is back: the refused put changed nothing.
    await point(join(logs, "second.log"));
    Deno.kill(nexus.process.pid, "SIGHUP");
    await nexus.process.waitFor(/records were not stored; declaring them/);
    const after = exits(await nexus.admin(["secret", "get", "app/db", "pass"]), 0, "get after recovery");
    assert.equal(after.stdout.trim(), "before");
    const metadata = exits(
      await nexus.admin(["secret", "metadata", "get", "app/db", "--format", "json"]),
      0,
      "metadata",
    );
    assert.equal(JSON.parse(metadata.stdout).metadata.currentVersion, 1);
    await eventually(() => Promise.resolve(!stored("app/tmp")), "the sweep removed the expired secret");
    const sweepRecords = async () =>
      (await Deno.readTextFile(join(logs, "second.log"))).trimEnd().split("\n").map((l) => JSON.parse(l));
    // The outcome is written once the batch is done, just after the removal.
    await eventually(
      async () => (await sweepRecords()).some((r) => r.type === "audit-sweep" && r.phase === "done"),
      "the sweep's outcome is written",
    );
    const second = await sweepRecords();
    const sweepIntent = second.findIndex((r) => r.type === "audit-sweep" && r.phase === "intent");
    const sweepDone = second.findIndex((r) =>
      r.type === "audit-sweep" && r.phase === "done" && r.trail === second[sweepIntent]?.trail
    );
    assert.ok(sweepIntent >= 0 && sweepDone > sweepIntent, "the sweep's intent, then its outcome");
    assert.deepEqual([second[sweepIntent].paths, second[sweepDone].removed], [["app/tmp"], ["app/tmp"]]);

    // The first put's intent was written (and synced) before its change.
    const first = (await Deno.readTextFile(join(logs, "first.log"))).trimEnd().split("\n").map((l) => JSON.parse(l));
    const intent = first.findIndex((r) => r.type === "audit-intent" && r.resource === "app/db");
    const outcome = first.findIndex((r) => r.type === "audit" && r.trail === first[intent]?.trail);
    assert.ok(intent >= 0 && outcome > intent, "intent before the request's record");

    const verified = exits(
      await nexus.admin(["audit", "verify", join(logs, "first.log"), join(logs, "second.log")]),
      0,
      "verify",
    );
    // Segment 1 lived on the full disk: none of its records exist, and the chain says so.
    assert.match(verified.stdout, /^OK \d+ records \(2 segments, 1 instance; MACs checked by Nexus\)/);
    assert.match(verified.stderr, /Nexus declared \d+ record\(s\) unwritten to its file \(last error: No space left/);
  } finally {
    await nexus?.close();
    await Deno.remove(logs, { recursive: true });
  }
});

Deno.test("fail-closed audit: a Nexus that cannot write its first record does not start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_audit_nostart_" });
  try {
    const ids = join(dir, "ids");
    exits(
      await runSpike(["dev", "identity", "spiffe://spike.ist/spike/nexus", "--dir", join(dir, "ca"), "--out", ids]),
      0,
      "identity",
    );
    const nexus = await runSpike(["nexus"], {
      env: {
        SPIKE_SVID_DIR: ids,
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${freePort()}`,
        SPIKE_NEXUS_BACKEND_STORE: "memory",
        SPIKE_NEXUS_AUDIT_LOG: "/dev/full",
        SPIKE_NEXUS_AUDIT_FAIL_CLOSED: "true",
      },
      timeoutMs: 30_000,
    });
    assert.equal(nexus.code, 1, nexus.stderr);
    assert.match(nexus.stderr, /cannot write the audit trail to \/dev\/full \(SPIKE_NEXUS_AUDIT_FAIL_CLOSED is on\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
