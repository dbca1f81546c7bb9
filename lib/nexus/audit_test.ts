import assert from "node:assert/strict";
import { join } from "node:path";
import { PATHS } from "../api/paths.ts";
import { splitSecret } from "../crypto/shamir.ts";
import { silentLogger } from "../log/logger.ts";
import { type AuditRecord, outcomeOf } from "./audit.ts";
import { type AuditKeySource, rootKeyAuditKeys } from "./audit_key.ts";
import { openAuditOutput } from "./audit_output.ts";
import { createTestNexus, FIXED_TIME, NO_CERT, peer, testRootKey } from "./testing.ts";

const TD = "spiffe://spike.ist";
const SUPERUSER = peer(`${TD}/spike/pilot/role/superuser`);
const WEB = peer(`${TD}/app/web`);
const RESTORE = peer(`${TD}/spike/pilot/role/restore`);

/** A complete request record. */
const SAMPLE: AuditRecord = {
  time: FIXED_TIME.toISOString(),
  type: "audit",
  trail: "t",
  spiffeId: `${TD}/app/web`,
  route: PATHS.secrets,
  action: "get",
  resource: "app/db",
  permissions: ["read"],
  status: 200,
  err: null,
  outcome: "ok",
  durationMs: 0.5,
};

/** The fields of a record a test can predict (not the trail id or the duration). */
function summary(record: AuditRecord) {
  const { trail: _trail, durationMs: _duration, ...rest } = record;
  return rest;
}

Deno.test("audit: one record per API request, allowed or not, saying who, what and how it ended", async () => {
  const nexus = await createTestNexus();
  const calls = [
    await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { pass: "p" } }),
    await nexus.call(WEB, PATHS.secrets, "get", { path: "app/db" }),
    await nexus.call(NO_CERT, PATHS.secrets, "get", { path: "app/db" }),
    await nexus.call(SUPERUSER, PATHS.secrets, "nonsense", {}),
    await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "app/missing" }),
    await nexus.call(SUPERUSER, PATHS.policy, "list", {}),
  ];
  assert.deepEqual(calls.map((c) => c.status), [200, 401, 401, 400, 404, 200]);
  const base = { time: FIXED_TIME.toISOString(), type: "audit" as const, route: PATHS.secrets };
  assert.deepEqual(nexus.audit.map(summary), [
    {
      ...base,
      spiffeId: `${TD}/spike/pilot/role/superuser`,
      action: "",
      resource: "app/db",
      permissions: ["write"],
      status: 200,
      err: null,
      outcome: "ok",
    },
    {
      ...base,
      spiffeId: `${TD}/app/web`,
      action: "get",
      resource: "app/db",
      permissions: ["read"],
      status: 401,
      err: "access_unauthorized",
      outcome: "denied",
    },
    {
      ...base,
      spiffeId: null,
      action: "get",
      resource: null,
      permissions: null,
      status: 401,
      err: "access_unauthorized",
      outcome: "denied",
    },
    {
      ...base,
      spiffeId: `${TD}/spike/pilot/role/superuser`,
      action: "nonsense",
      resource: null,
      permissions: null,
      status: 400,
      err: "api_bad_request",
      outcome: "invalid",
    },
    {
      ...base,
      spiffeId: `${TD}/spike/pilot/role/superuser`,
      action: "get",
      resource: "app/missing",
      permissions: ["read"],
      status: 404,
      err: "api_not_found",
      outcome: "invalid",
    },
    {
      ...base,
      route: PATHS.policy,
      spiffeId: `${TD}/spike/pilot/role/superuser`,
      action: "list",
      resource: "spike/system/acl",
      permissions: ["list"],
      status: 200,
      err: null,
      outcome: "ok",
    },
  ]);
  assert.equal(new Set(nexus.audit.map((r) => r.trail)).size, nexus.audit.length, "trail ids are unique");
  assert.ok(nexus.audit.every((r) => r.durationMs >= 0));
});

Deno.test("audit: a request before the root key is loaded is recorded as unavailable", async () => {
  const nexus = await createTestNexus({ withKey: false });
  assert.equal((await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "a" })).status, 503);
  assert.deepEqual(nexus.audit.map((r) => [r.status, r.err, r.outcome]), [[503, "state_not_ready", "unavailable"]]);
});

Deno.test("audit: the operational endpoints leave no record", async () => {
  const nexus = await createTestNexus();
  for (const path of ["/health", "/ready", "/metrics"]) {
    assert.equal((await nexus.call(NO_CERT, path, "", undefined, { method: "GET" })).status, 200);
  }
  assert.deepEqual(nexus.audit, []);
});

Deno.test("audit: no secret value, plaintext, ciphertext or shard ever reaches a record", async () => {
  const nexus = await createTestNexus({ withKey: false });
  // Restore with real shards of the test key: the shard bytes must not appear.
  const shares = splitSecret(testRootKey(), 3, 2);
  for (const share of shares.slice(0, 2)) {
    const r = await nexus.call(RESTORE, PATHS.restore, "", { id: share.index, shard: Array.from(share.value) });
    assert.equal(r.status, 200);
  }
  const value = "value-marker-7f3a";
  const plaintext = "plaintext-marker-91bc";
  await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { key: value } });
  await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "app/db" });
  const sealed = await nexus.call(SUPERUSER, PATHS.encrypt, "", { plaintext: btoa(plaintext) });
  const { ciphertext } = sealed.body as { ciphertext: string };
  await nexus.call(SUPERUSER, PATHS.decrypt, "", sealed.body);
  const trail = JSON.stringify(nexus.audit);
  assert.equal(nexus.audit.length, 6);
  for (const marker of [value, btoa(value), plaintext, btoa(plaintext), ciphertext]) {
    assert.ok(!trail.includes(marker), `audit holds ${marker}`);
  }
  for (const share of shares) {
    assert.ok(!trail.includes(Array.from(share.value).join(",")), "audit holds a shard");
    assert.ok(!trail.includes(Array.from(share.value, (b) => b.toString(16).padStart(2, "0")).join("")));
  }
});

Deno.test("audit: the chained trail, intents included, holds no secret value, plaintext, ciphertext or shard", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_audit_" });
  try {
    const file = join(dir, "audit.log");
    // The trail follows the test Nexus's key, which exists only once the Nexus does.
    // deno-lint-ignore prefer-const -- assigned once the Nexus exists; the closure below reads it later
    let source: AuditKeySource | undefined;
    const keys: AuditKeySource = { currentVersion: () => source?.currentVersion(), key: (v) => source?.key(v) };
    // Fail-closed, so every change also writes an intent record.
    const output = await openAuditOutput(file, silentLogger, { keys, failClosed: true });
    const nexus = await createTestNexus({ withKey: false, auditSink: output.sink });
    source = rootKeyAuditKeys(nexus.deps.keys);
    nexus.deps.keys.onInstall(() => output.sink.keyChanged());
    const shares = splitSecret(testRootKey(), 3, 2);
    for (const share of shares.slice(0, 2)) {
      const r = await nexus.call(RESTORE, PATHS.restore, "", { id: share.index, shard: Array.from(share.value) });
      assert.equal(r.status, 200);
    }
    const value = "value-marker-2b8e";
    const plaintext = "plaintext-marker-c04d";
    assert.equal(
      (await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { k: value } })).status,
      200,
    );
    await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "app/db" });
    const sealed = await nexus.call(SUPERUSER, PATHS.encrypt, "", { plaintext: btoa(plaintext) });
    await nexus.call(SUPERUSER, PATHS.decrypt, "", sealed.body);
    await output.close();
    const text = await Deno.readTextFile(file);
    assert.match(text, /"event":"key"/, "the trail was keyed after the restore");
    assert.equal(text.split("\n").filter((line) => line.includes('"type":"audit-intent"')).length, 3);
    for (
      const marker of [
        value,
        btoa(value),
        plaintext,
        btoa(plaintext),
        (sealed.body as { ciphertext: string }).ciphertext,
      ]
    ) {
      assert.ok(!text.includes(marker), `audit holds ${marker}`);
    }
    for (const share of shares) {
      assert.ok(!text.includes(Array.from(share.value).join(",")), "audit holds a shard");
      assert.ok(!text.includes(Array.from(share.value, (b) => b.toString(16).padStart(2, "0")).join("")));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("audit: outcome classes", () => {
  assert.deepEqual([200, 401, 403, 429, 400, 404, 413, 499, 503, 500].map(outcomeOf), [
    "ok",
    "denied",
    "denied",
    "limited",
    "invalid",
    "invalid",
    "invalid",
    "aborted",
    "unavailable",
    "error",
  ]);
});

Deno.test("audit output: a file is created 0600 and appended to, one chain per run; an unwritable path fails at start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_audit_" });
  try {
    const file = join(dir, "audit.log");
    for (const trail of ["one", "two"]) {
      const output = await openAuditOutput(file, silentLogger);
      output.sink.record({ ...SAMPLE, trail });
      await output.close();
    }
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const records = (await Deno.readTextFile(file)).trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(records.filter((r) => r.type === "audit").map((r) => r.trail), ["one", "two"]);
    assert.deepEqual(records.map((r) => r.event ?? r.type), ["start", "audit", "stop", "start", "audit", "stop"]);
    assert.equal(new Set(records.map((r) => r.instance)).size, 2, "each run is a chain of its own");
    await assert.rejects(
      () => openAuditOutput(join(dir, "missing", "audit.log"), silentLogger),
      /cannot open SPIKE_NEXUS_AUDIT_LOG .*missing/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
