/**
 * Root key rotation with two Nexus on one Postgres database and three
 * Keepers, on real processes: a rotation started through one while the
 * other serves reads and writes; the other learns the new key without a
 * restart and, once the rotation has finished, only ever seals under it (a
 * scan of the tables finds nothing under the old version, its own new
 * writes included); then the driving Nexus is killed with SIGKILL in the
 * middle of re-sealing and the other one takes the rotation over and
 * finishes it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ApiCallError } from "../lib/client/errors.ts";
import { exits } from "./support/restored_nexus.ts";
import { createTestDatabase } from "./support/postgres_db.ts";
import { startRotationStack, until } from "./support/rotation_stack.ts";

/** Secret version rows and sealed policy rows by key version, straight from the tables. */
async function scan(url: string): Promise<{ secrets: Record<number, number>; policies: Record<number, number> }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const by = (rows: { v: number; n: string }[]) => Object.fromEntries(rows.map((r) => [r.v, Number(r.n)]));
    return {
      secrets: by(await sql`SELECT key_version AS v, count(*) AS n FROM secret_versions GROUP BY 1` as never),
      policies: by(
        await sql`SELECT key_version AS v, count(*) AS n FROM policies WHERE sealed IS NOT NULL GROUP BY 1` as never,
      ),
    };
  } finally {
    await sql.end();
  }
}

Deno.test("rotation with two Nexus on one Postgres: the other follows without a restart, takes over a killed driver", async (t) => {
  const db = await createTestDatabase();
  const stack = await startRotationStack({
    backend: { postgresUrl: db.url },
    nexusCount: 2,
    nexusEnv: { SPIKE_NEXUS_ROTATION_BATCH: "5" },
  });
  try {
    await stack.bootstrap();
    const [a, b] = [await stack.client(0), await stack.client(1)];
    for (let p = 0; p < 30; p++) {
      await (p % 2 ? a : b).putSecret(`apps/s${p}`, { v: `${p}-1` });
      await (p % 2 ? b : a).putSecret(`apps/s${p}`, { v: `${p}-2` });
    }
    exits(
      await stack.as("superuser", [
        "policy",
        "create",
        "--name",
        "web",
        "--spiffeid-pattern",
        "^spiffe://spike\\.ist/app/web$",
        "--path-pattern",
        "^apps/",
        "--permissions",
        "read",
      ], { nexus: 1 }),
      0,
      "policy create",
    );

    await t.step("rotate through A while B serves reads and writes; B follows without a restart", async () => {
      let stop = false;
      const failures: string[] = [];
      let writes = 0;
      const load = (async () => {
        for (let i = 0; !stop && i < 5_000; i++) {
          const p = i % 30;
          try {
            if (i % 4 === 0) {
              await b.putSecret(`apps/s${p}`, { v: `${p}-b${i}` });
              writes++;
            } else {
              const got = await b.getSecret(`apps/s${p}`);
              if (!got.v?.startsWith(`${p}-`)) failures.push(`wrong value for s${p}`);
            }
          } catch (error) {
            failures.push(error instanceof ApiCallError ? `${error.status} ${error.code}` : String(error));
          }
        }
      })();
      const rotate = await stack.as("superuser", ["operator", "rotate"], { nexus: 0 });
      stop = true;
      await load;
      exits(rotate, 0, "rotate through A");
      assert.deepEqual(failures, [], `B failed while ${writes} writes and more reads went through it`);
      await until(async () => {
        const status = await stack.status(1);
        return status.rotation.keyVersion === 2 && status.rotation.writeKeyVersion === 2 &&
          status.rotation.heldKeyVersions.join() === "2";
      }, "B seals under version 2 and holds only it");
      // B's writes after the rotation: under version 2, like everything else.
      for (let p = 0; p < 30; p++) await b.putSecret(`apps/s${p}`, { v: `${p}-after` });
      const after = await scan(db.url);
      assert.deepEqual(Object.keys(after.secrets), ["2"], `secret versions by key version: ${JSON.stringify(after)}`);
      assert.deepEqual(after.policies, { 2: 1 });
      assert.equal(stack.nexus(1).output.includes("taking over"), false, "B only followed");
      for (let p = 0; p < 30; p++) assert.deepEqual(await a.getSecret(`apps/s${p}`), { v: `${p}-after` });
    });

    await t.step("A is killed in the middle of re-sealing: B takes the rotation over and finishes it", async () => {
      await stack.kill(0);
      await stack.startNexus(0, { SPIKE_TEST_NEXUS_ROTATION_PAUSE: "batch:2" });
      await until(async () => (await stack.status(0)).ready, "A ready again");
      exits(await stack.as("superuser", ["operator", "rotate", "--no-wait"], { nexus: 0 }), 0, "rotate --no-wait");
      await stack.nexus(0).waitFor(/rotation paused for a test/, 60_000);
      await stack.kill(0);
      const midway = await scan(db.url);
      assert.ok((midway.secrets[2] ?? 0) > 0 && (midway.secrets[3] ?? 0) > 0, JSON.stringify(midway));
      await until(async () => {
        const status = await stack.status(1);
        return status.rotation.phase === "idle" && status.rotation.keyVersion === 3 &&
          status.rotation.heldKeyVersions.join() === "3";
      }, "B finished the rotation to version 3");
      assert.match(stack.nexus(1).output, /taking over a root key rotation whose driver stopped/);
      const done = await scan(db.url);
      assert.deepEqual(Object.keys(done.secrets), ["3"], `secret versions by key version: ${JSON.stringify(done)}`);
      assert.deepEqual(done.policies, { 3: 1 });
      for (let p = 0; p < 30; p++) assert.deepEqual(await b.getSecret(`apps/s${p}`), { v: `${p}-after` });
      // A, restarted, rebuilds version 3 from the Keepers and serves.
      await stack.startNexus(0);
      await until(async () => (await stack.status(0)).rotation.writeKeyVersion === 3, "A back on version 3");
      const a2 = await stack.client(0);
      assert.deepEqual(await a2.getSecret("apps/s7"), { v: "7-after" });
    });
  } finally {
    await stack.close();
    await db.drop();
  }
});
