/**
 * `SPIKE_NEXUS_AUDIT_TABLE=true` on a real `spike nexus` over a real
 * Postgres database: every record goes to `audit_logs` as well as the file
 * (same lines); a write's intent row commits in the write's own statement
 * or transaction — the key-value writes (check-and-set put, patch, custom
 * metadata, destroy, move, metadata delete) included — so when the database
 * refuses that row the write does not happen (503, and nothing changed);
 * the expiry sweep's rows (its intent, committed before the removal, and
 * its outcome) are there too; the table verifies like the file; no secret
 * value reaches the table.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { createTestDatabase } from "./support/postgres_db.ts";
import { exits, type RestoredNexus, startRestoredNexus } from "./support/restored_nexus.ts";
import { eventually, runSpike } from "./support/process.ts";

const VALUE = "table-marker-value-3c77";

Deno.test("audit table on Postgres: records in audit_logs, a write's row in its transaction, verifiable", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  let nexus: RestoredNexus | undefined;
  try {
    nexus = await startRestoredNexus("spike_audit_table_", {
      nexusEnv: (dir) => ({
        SPIKE_NEXUS_BACKEND_STORE: "postgres",
        SPIKE_NEXUS_POSTGRES_URL: db.url,
        SPIKE_NEXUS_AUDIT_LOG: join(dir, "audit.log"),
        SPIKE_NEXUS_AUDIT_TABLE: "true",
        SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "200ms",
      }),
    });
    const file = join(nexus.dir, "audit.log");
    const recoverer = await nexus.mint("spike/pilot/role/recover");
    exits(await runSpike(["operator", "recover"], { env: nexus.env(recoverer) }), 0, "operator recover");
    exits(await nexus.admin(["secret", "put", "app/db", `pass=${VALUE}`]), 0, "put");
    exits(await nexus.admin(["secret", "get", "app/db"]), 0, "get");
    const policy = ["--spiffeid-pattern", "^spiffe://spike\\.ist/app/web$", "--path-pattern", "^app/", "--permissions"];
    exits(await nexus.admin(["policy", "create", "--name", "web", ...policy, "read"]), 0, "policy create");
    exits(await nexus.admin(["policy", "delete", "web", "--yes"]), 0, "policy delete");
    // The key-value writes, each with its intent row in its own statement or transaction.
    exits(await nexus.admin(["secret", "put", "app/db", `pass=${VALUE}`, "--cas", "1"]), 0, "put --cas");
    exits(await nexus.admin(["secret", "patch", "app/db", `extra=${VALUE}`]), 0, "patch");
    exits(await nexus.admin(["secret", "metadata", "put", "app/db", `owner=${VALUE}`]), 0, "metadata put");
    exits(await nexus.admin(["secret", "destroy", "app/db", "-v", "1", "--yes"]), 0, "destroy");
    exits(await nexus.admin(["secret", "move", "app/db", "app/moved"]), 0, "move");
    exits(await nexus.admin(["secret", "put", "app/gone", `pass=${VALUE}`]), 0, "put");
    exits(await nexus.admin(["secret", "metadata", "delete", "app/gone", "--yes"]), 0, "metadata delete");
    // An expiring secret: the sweep's intent row, then the removal, then its outcome row.
    exits(await nexus.admin(["secret", "put", "app/tmp", `pass=${VALUE}`, "--ttl", "1s"]), 0, "put --ttl");
    await eventually(
      async () => (await sql`SELECT count(*)::int AS n FROM secrets WHERE path = 'app/tmp'`)[0]!.n === 0,
      "the sweep removed the expired secret",
      30_000,
    );

    // Every line of the file reaches the table (other rows are inserted in batches, just after).
    const fileLines = async () => (await Deno.readTextFile(file)).trimEnd().split("\n");
    const tableLines = async () => (await sql`SELECT line FROM audit_logs ORDER BY seq`).map((r) => String(r.line));
    await eventually(
      async () => (await tableLines()).length === (await fileLines()).length,
      "the table has every line",
    );
    assert.deepEqual(await tableLines(), await fileLines());

    // Each write's intent row: the change and its row went in one statement or transaction.
    const intents = await sql`
      SELECT route, action, resource, permissions, spiffe_id, trail FROM audit_logs
      WHERE type = 'audit-intent' ORDER BY seq`;
    assert.deepEqual(intents.map((r) => [r.route, r.action, r.resource, r.permissions]), [
      ["/v1/operator/restore", "", null, null],
      ["/v1/operator/restore", "", null, null],
      ["/v1/store/secrets", "", "app/db", ["write"]],
      ["/v1/acl/policy", "", "spike/system/acl", ["write"]],
      ["/v1/acl/policy", "delete", "spike/system/acl", ["write"]],
      ["/v1/store/secrets", "", "app/db", ["write"]],
      ["/v1/store/secrets", "patch", "app/db", ["write"]],
      ["/v1/store/secrets/metadata", "", "app/db", ["write"]],
      ["/v1/store/secrets", "destroy", "app/db", ["write"]],
      ["/v1/store/secrets", "move", "app/db", ["read", "write"]],
      ["/v1/store/secrets", "", "app/gone", ["write"]],
      ["/v1/store/secrets/metadata", "delete", "app/gone", ["write"]],
      ["/v1/store/secrets", "", "app/tmp", ["write"]],
    ]);
    const [moveIntent] = await sql`SELECT line FROM audit_logs WHERE type = 'audit-intent' AND action = 'move'`;
    assert.deepEqual(JSON.parse(moveIntent!.line).resources.map((r: { path: string }) => r.path), [
      "app/db",
      "app/moved",
    ]);
    // The sweep's rows: its intent (inserted before the removal) and its outcome, sharing a trail.
    const sweeps = await sql`SELECT seq, trail, line FROM audit_logs WHERE type = 'audit-sweep' ORDER BY seq`;
    const sweepRecords = sweeps.map((r) => JSON.parse(r.line));
    assert.deepEqual(sweepRecords.map((r) => [r.phase, r.paths ?? r.removed]), [
      ["intent", ["app/tmp"]],
      ["done", ["app/tmp"]],
    ]);
    assert.equal(sweeps[0]!.trail, sweeps[1]!.trail);
    for (const intent of intents.slice(2)) {
      const [outcome] =
        await sql`SELECT status, outcome FROM audit_logs WHERE type = 'audit' AND trail = ${intent.trail}`;
      assert.deepEqual([outcome!.status, outcome!.outcome], [200, "ok"], "the request's record shares the trail id");
    }

    // The database refuses the row that must go with a write: the write does not happen.
    await sql`
      ALTER TABLE audit_logs ADD CONSTRAINT auditor_hold
      CHECK (type <> 'audit-intent' OR resource IS DISTINCT FROM 'app/held')`;
    const held = await nexus.admin(["secret", "put", "app/held", `pass=${VALUE}`]);
    assert.equal(held.code, 1, held.stdout);
    assert.match(held.stderr, /Nexus is not ready/);
    assert.equal((await sql`SELECT count(*)::int AS n FROM secrets WHERE path = 'app/held'`)[0]!.n, 0);
    assert.equal((await nexus.admin(["secret", "get", "app/held"])).code, 3, "not found");
    await nexus.process.waitFor(/request refused: the database refused its audit row/);
    // So do a move and a metadata delete: both paths are as they were.
    await sql`
      ALTER TABLE audit_logs ADD CONSTRAINT auditor_hold_kv
      CHECK (type <> 'audit-intent' OR resource IS DISTINCT FROM 'app/moved')`;
    for (
      const args of [["secret", "move", "app/moved", "app/elsewhere"], [
        "secret",
        "metadata",
        "delete",
        "app/moved",
        "--yes",
      ]]
    ) {
      const refused = await nexus.admin(args);
      assert.equal(refused.code, 1, `${args.join(" ")}: ${refused.stdout}`);
      assert.match(refused.stderr, /Nexus is not ready/);
    }
    const paths = (await sql`SELECT path FROM secrets ORDER BY path`).map((r) => r.path);
    assert.deepEqual(paths, ["app/moved"], "the refused move and delete changed nothing");
    await sql`ALTER TABLE audit_logs DROP CONSTRAINT auditor_hold_kv`;

    // No secret value anywhere in the table, in any column.
    const leaks = await sql`SELECT count(*)::int AS n FROM audit_logs a WHERE a::text LIKE ${"%" + VALUE + "%"}`;
    assert.equal(leaks[0]!.n, 0);

    // The table verifies like the file (the rows it refused are declared in the chain).
    await sql`ALTER TABLE audit_logs DROP CONSTRAINT auditor_hold`;
    exits(await nexus.admin(["secret", "list"]), 0, "list");
    await nexus.process.stop();
    const exported = (await sql`SELECT line FROM audit_logs ORDER BY instance, seq`).map((r) => r.line).join("\n");
    const verified = exits(
      await runSpike(["audit", "verify", "--recovery-dir", join(nexus.dir, "recover"), "-"], { stdin: exported }),
      0,
      "verify the table",
    );
    assert.match(verified.stdout, /^OK \d+ records \(1 segment, 1 instance; MACs checked with the recovery shards\)/);
    assert.match(verified.stderr, /Nexus declared 3 record\(s\) unwritten to its table/);
  } finally {
    await nexus?.close();
    await sql.end();
    await db.drop();
  }
});
