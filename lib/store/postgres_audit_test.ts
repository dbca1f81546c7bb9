import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase } from "../../tests/support/postgres_db.ts";
import { type AuditRow, AuditRowRefusedError } from "./audit_row.ts";
import { createPostgresStore } from "./postgres_store.ts";
import type { SecretRecord } from "./types.ts";

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

function secret(revision: number): SecretRecord {
  const now = new Date();
  return {
    revision,
    currentVersion: 1,
    oldestVersion: 1,
    createdTime: now,
    updatedTime: now,
    maxVersions: 10,
    versions: new Map([[1, { version: 1, createdTime: now, deletedTime: null, sealed: new Uint8Array([1]) }]]),
  };
}

const POLICY = {
  name: "p",
  spiffeIdPattern: "^spiffe://spike\\.ist/x$",
  pathPattern: "^y$",
  permissions: ["read" as const],
  createdAt: new Date(),
  updatedAt: new Date(),
};

Deno.test("postgres audit rows: a change's row commits exactly with the change; a refused row rolls it back", async () => {
  const db = await createTestDatabase();
  const store = createPostgresStore({ url: db.url });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const stored = async () => (await sql`SELECT seq FROM audit_logs ORDER BY seq`).map((r) => Number(r.seq));
  try {
    assert.equal(await store.writeSecret("a", 0, secret(0), row(1)), true);
    assert.equal(await store.writeSecret("a", 0, secret(0), row(2)), false, "lost the race: no change, no row");
    await store.upsertPolicy(POLICY, row(3));
    assert.equal(await store.deletePolicy("missing", row(4)), false, "nothing deleted, no row");
    assert.equal(await store.deletePolicy("p", row(5)), true);
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
    await assert.rejects(store.writeSecret("a", 1, secret(1), row(8, "/v1/refused")), AuditRowRefusedError);
    assert.equal((await store.readSecret("a"))?.revision, 1, "the secret write rolled back");
    await assert.rejects(store.writeSecret("b", 0, secret(0), row(9, "/v1/refused")), AuditRowRefusedError);
    assert.equal(await store.readSecret("b"), undefined);
    await assert.rejects(store.upsertPolicy(POLICY, row(10, "/v1/refused")), AuditRowRefusedError);
    assert.equal(await store.getPolicy("p"), undefined, "the policy write rolled back");
    await store.upsertPolicy(POLICY);
    await assert.rejects(store.deletePolicy("p", row(11, "/v1/refused")), AuditRowRefusedError);
    assert.ok(await store.getPolicy("p"), "the policy delete rolled back");
    // Writes without a row, and failures that are not about the row, are untouched.
    assert.equal(await store.writeSecret("a", 1, secret(1)), true);
    await sql`ALTER TABLE secrets ADD CONSTRAINT no_c CHECK (path <> 'c')`;
    await assert.rejects(
      store.writeSecret("c", 0, secret(0), row(12)),
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
    assert.equal(await store.deleteSecret("d", 2, row(1)), false, "stale revision: no change, no row");
    assert.equal(await store.deleteSecret("gone", 1, row(2)), false, "no such path: no change, no row");
    assert.equal(await store.deleteSecret("d", 1, row(3)), true);
    assert.equal(await store.moveSecret("m", 2, "m2", 0, secret(0), row(4)), false, "stale source: no row");
    assert.equal(await store.moveSecret("m", 1, "n", 0, secret(0), row(5)), false, "destination taken: no row");
    assert.equal(await store.moveSecret("m", 1, "m2", 0, secret(0), row(6)), true);
    assert.deepEqual(await stored(), [3, 6]);
    assert.equal(await store.readSecret("d"), undefined);
    assert.deepEqual([await store.readSecret("m"), (await store.readSecret("m2"))?.revision], [undefined, 1]);

    await sql`ALTER TABLE audit_logs ADD CONSTRAINT no_refused CHECK (route IS DISTINCT FROM '/v1/refused')`;
    await assert.rejects(store.deleteSecret("n", 1, row(7, "/v1/refused")), AuditRowRefusedError);
    assert.equal((await store.readSecret("n"))?.revision, 1, "the delete rolled back");
    await assert.rejects(store.moveSecret("m2", 1, "m3", 0, secret(0), row(8, "/v1/refused")), AuditRowRefusedError);
    assert.equal((await store.readSecret("m2"))?.revision, 1, "the move rolled back: still at its source");
    assert.equal(await store.readSecret("m3"), undefined, "and not at its destination");
    assert.deepEqual(await stored(), [3, 6]);
  } finally {
    await Promise.all([store.close(), sql.end()]);
    await db.drop();
  }
});
