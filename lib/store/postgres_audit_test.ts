import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase } from "../../tests/support/postgres_db.ts";
import { type AuditRow, AuditRowRefusedError } from "./audit_row.ts";
import { createPostgresStore } from "./postgres_store.ts";
import { StaleKeyVersionError } from "./errors.ts";
import { IDLE_KEY_STATE_CHANGE } from "./key_state.ts";
import { secretWriteStatement } from "./postgres_write.ts";
import type { SealedPolicy, SecretRecord } from "./types.ts";

const INSTANCE = "0b3a6a52-8f0e-4d7c-9c39-4f3f1b7e2a11";

function row(seq: number, route = "/v1/store/secrets"): AuditRow {
  return {
    instance: INSTANCE,
    seq,
    segment: 0,
    recordedAt: new Date("2026-01-02T03:04:05.123Z"),
    type: "audit-intent",
    event: null,
    trail: crypto.randomUUID(),
    spiffeId: "spiffe://spike.ist/spike/pilot/role/superuser",
    route,
    action: "",
    resource: "app/db",
    permissions: ["write"],
    status: null,
    err: null,
    outcome: null,
    durationMs: null,
    keyVersion: 1,
    prev: "a".repeat(64),
    mac: "b".repeat(64),
    line: `{"seq":${seq}}`,
  };
}

function secret(revision: number, keyVersion = 1): SecretRecord {
  const now = new Date();
  return {
    revision,
    currentVersion: 1,
    oldestVersion: 1,
    createdTime: now,
    updatedTime: now,
    maxVersions: 10,
    versions: new Map([[1, {
      version: 1,
      createdTime: now,
      deletedTime: null,
      sealed: new Uint8Array([1]),
      keyVersion,
    }]]),
  };
}

const POLICY: SealedPolicy = { name: "p", keyVersion: 1, sealed: new Uint8Array([1, 2, 3]) };

Deno.test("postgres audit rows: a change's row commits exactly with the change; a refused row rolls it back", async () => {
  const db = await createTestDatabase();
  const store = createPostgresStore({ url: db.url });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const stored = async () => (await sql`SELECT seq FROM audit_logs ORDER BY seq`).map((r) => Number(r.seq));
  try {
    assert.equal(await store.writeSecret("a", 0, secret(0), { audit: row(1) }), true);
    assert.equal(
      await store.writeSecret("a", 0, secret(0), { audit: row(2) }),
      false,
      "lost the race: no change, no row",
    );
    await store.upsertPolicy(POLICY, { audit: row(3) });
    assert.equal(await store.deletePolicy("missing", { audit: row(4) }), false, "nothing deleted, no row");
    assert.equal(await store.deletePolicy("p", { audit: row(5) }), true);
    await store.insertAuditRows!([row(6), row(7)]);
    await store.insertAuditRows!([row(7)], { durable: false }); // already there: left alone
    assert.deepEqual(await stored(), [1, 3, 5, 6, 7]);
    const [first] = await sql`SELECT * FROM audit_logs WHERE seq = 1`;
    assert.deepEqual(
      [first!.instance, first!.recorded_at.toISOString(), first!.permissions, first!.key_version, first!.line],
      [INSTANCE, "2026-01-02T03:04:05.123Z", ["write"], 1, '{"seq":1}'],
    );

    // The database refuses some rows (a constraint an auditor added): their changes roll back.
    await sql`ALTER TABLE audit_logs ADD CONSTRAINT no_refused CHECK (route IS DISTINCT FROM '/v1/refused')`;
    await assert.rejects(store.writeSecret("a", 1, secret(1), { audit: row(8, "/v1/refused") }), AuditRowRefusedError);
    assert.equal((await store.readSecret("a"))?.revision, 1, "the secret write rolled back");
    await assert.rejects(store.writeSecret("b", 0, secret(0), { audit: row(9, "/v1/refused") }), AuditRowRefusedError);
    assert.equal(await store.readSecret("b"), undefined);
    await assert.rejects(store.upsertPolicy(POLICY, { audit: row(10, "/v1/refused") }), AuditRowRefusedError);
    assert.equal(await store.getPolicy("p"), undefined, "the policy write rolled back");
    await store.upsertPolicy(POLICY);
    await assert.rejects(store.deletePolicy("p", { audit: row(11, "/v1/refused") }), AuditRowRefusedError);
    assert.ok(await store.getPolicy("p"), "the policy delete rolled back");
    // Writes without a row, and failures that are not about the row, are untouched.
    assert.equal(await store.writeSecret("a", 1, secret(1)), true);
    await sql`ALTER TABLE secrets ADD CONSTRAINT no_c CHECK (path <> 'c')`;
    await assert.rejects(
      store.writeSecret("c", 0, secret(0), { audit: row(12) }),
      (error: unknown) => !(error instanceof AuditRowRefusedError) && /no_c/.test(String(error)),
      "the secret itself was refused, not its audit row",
    );
    assert.deepEqual(await stored(), [1, 3, 5, 6, 7]);
  } finally {
    await Promise.all([store.close(), sql.end()]);
    await db.drop();
  }
});

Deno.test("postgres audit rows: a path delete's and a move's row commit exactly with them; a refused row rolls them back", async () => {
  const db = await createTestDatabase();
  const store = createPostgresStore({ url: db.url });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const stored = async () => (await sql`SELECT seq FROM audit_logs ORDER BY seq`).map((r) => Number(r.seq));
  try {
    for (const path of ["d", "m", "n"]) assert.equal(await store.writeSecret(path, 0, secret(0)), true);
    assert.equal(await store.deleteSecret("d", 2, { audit: row(1) }), false, "stale revision: no change, no row");
    assert.equal(await store.deleteSecret("gone", 1, { audit: row(2) }), false, "no such path: no change, no row");
    assert.equal(await store.deleteSecret("d", 1, { audit: row(3) }), true);
    assert.equal(await store.moveSecret("m", 2, "m2", 0, secret(0), { audit: row(4) }), false, "stale source: no row");
    assert.equal(
      await store.moveSecret("m", 1, "n", 0, secret(0), { audit: row(5) }),
      false,
      "destination taken: no row",
    );
    assert.equal(await store.moveSecret("m", 1, "m2", 0, secret(0), { audit: row(6) }), true);
    assert.deepEqual(await stored(), [3, 6]);
    assert.equal(await store.readSecret("d"), undefined);
    assert.deepEqual([await store.readSecret("m"), (await store.readSecret("m2"))?.revision], [undefined, 1]);

    await sql`ALTER TABLE audit_logs ADD CONSTRAINT no_refused CHECK (route IS DISTINCT FROM '/v1/refused')`;
    await assert.rejects(store.deleteSecret("n", 1, { audit: row(7, "/v1/refused") }), AuditRowRefusedError);
    assert.equal((await store.readSecret("n"))?.revision, 1, "the delete rolled back");
    await assert.rejects(
      store.moveSecret("m2", 1, "m3", 0, secret(0), { audit: row(8, "/v1/refused") }),
      AuditRowRefusedError,
    );
    assert.equal((await store.readSecret("m2"))?.revision, 1, "the move rolled back: still at its source");
    assert.equal(await store.readSecret("m3"), undefined, "and not at its destination");
    assert.deepEqual(await stored(), [3, 6]);
  } finally {
    await Promise.all([store.close(), sql.end()]);
    await db.drop();
  }
});

Deno.test("postgres audit rows during a rotation: one statement holds the gate and the row; a refused key version leaves neither", async () => {
  const statement = secretWriteStatement("a", 0, secret(0, 2), { sealedUnder: 2, audit: row(1) });
  assert.match(statement.text, /^WITH gate AS \(SELECT min_write_version FROM key_state WHERE id = 1 FOR SHARE\)/);
  assert.match(statement.text, /audited AS \(/);
  assert.doesNotMatch(statement.text, /;/, "one statement");

  const db = await createTestDatabase();
  const store = createPostgresStore({ url: db.url });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const stored = async () => (await sql`SELECT seq FROM audit_logs ORDER BY seq`).map((r) => Number(r.seq));
  const stale = (e: unknown) => e instanceof StaleKeyVersionError && e.sealedUnder === 1 && e.minWriteVersion === 2;
  try {
    assert.equal(await store.writeSecret("m", 0, secret(0), { sealedUnder: 1 }), true);
    assert.equal(await store.writeSecret("d", 0, secret(0), { sealedUnder: 1 }), true);
    // Sealing under version 2 has begun: the minimum is 2.
    assert.equal(
      await store.changeKeyState(1, {
        ...IDLE_KEY_STATE_CHANGE,
        phase: "sealing",
        targetVersion: 2,
        targetCheck: new Uint8Array([2]),
        minWriteVersion: 2,
      }),
      true,
    );
    assert.equal(await store.writeSecret("a", 0, secret(0, 2), { sealedUnder: 2, audit: row(1) }), true);
    await assert.rejects(store.writeSecret("b", 0, secret(0), { sealedUnder: 1, audit: row(2) }), stale);
    await assert.rejects(store.writeSecret("a", 1, secret(1), { sealedUnder: 1, audit: row(3) }), stale);
    await assert.rejects(store.moveSecret("m", 1, "m2", 0, secret(0), { sealedUnder: 1, audit: row(4) }), stale);
    assert.equal(await store.moveSecret("m", 1, "m2", 0, secret(0, 2), { sealedUnder: 2, audit: row(5) }), true);
    await assert.rejects(store.upsertPolicy(POLICY, { audit: row(6) }), stale);
    await store.upsertPolicy({ ...POLICY, keyVersion: 2 }, { audit: row(7) });
    // A removal seals nothing: not gated, and its row goes with it.
    assert.equal(await store.deleteSecret("d", 1, { audit: row(8) }), true);
    assert.deepEqual(await stored(), [1, 5, 7, 8]);
    assert.deepEqual(await store.listSecretPaths(), ["a", "m2"]);
    const keyVersions = await sql`SELECT path, key_version FROM secret_versions ORDER BY path`;
    assert.deepEqual(keyVersions.map((r) => [r.path, r.key_version]), [["a", 2], ["m2", 2]]);

    // Writes in flight, each with its row, while the minimum goes up to 3: a write and its
    // row commit together before the change, or neither does.
    const writes = Array.from(
      { length: 30 },
      (_, i) => store.writeSecret(`w/${i}`, 0, secret(0, 2), { sealedUnder: 2, audit: row(100 + i) }).catch((e) => e),
    );
    await new Promise((resolve) => setTimeout(resolve, 1));
    const state = await store.keyState();
    const { revision, ...current } = state;
    assert.equal(await store.changeKeyState(revision, { ...current, minWriteVersion: 3 }), true);
    const results = await Promise.all(writes);
    assert.ok(results.every((r) => r === true || r instanceof StaleKeyVersionError));
    const landed = results.filter((r) => r === true).length;
    assert.equal((await store.listSecretPaths()).filter((p) => p.startsWith("w/")).length, landed);
    assert.equal(
      (await stored()).filter((seq) => seq >= 100).length,
      landed,
      "a row for exactly each write that landed",
    );
  } finally {
    await Promise.all([store.close(), sql.end()]);
    await db.drop();
  }
});
