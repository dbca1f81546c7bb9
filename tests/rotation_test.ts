/**
 * Root key rotation on real processes (three Keepers, Nexus on SQLite,
 * Bootstrap, the CLI):
 *
 * - `spike operator rotate` under a load of reads (and some writes) that
 *   never fails; afterwards `spike operator status` shows version 2, the
 *   Keepers hold version 2 only, a scan of the database finds nothing
 *   sealed under version 1, and a workload keeps its access (its policy was
 *   re-sealed too);
 * - recovery files taken before the rotation no longer restore (refused,
 *   naming version 1 and when it was retired), with and without the key
 *   version comment; files taken after it do;
 * - Nexus killed with SIGKILL at every step of the protocol (claimed,
 *   distributed, sealing, after a batch, finished): the restarted Nexus
 *   rebuilds the keys it needs from the Keepers, finishes the rotation, and
 *   every record reads back; nothing is left under the old version.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ApiCallError } from "../lib/client/errors.ts";
import { getPlain } from "../lib/dev/health.ts";
import { exits } from "./support/restored_nexus.ts";
import { runSpike } from "./support/process.ts";
import { type RotationStack, startRotationStack, until } from "./support/rotation_stack.ts";

const PATHS = 24;

/** Rows sealed under each key version (secret versions and policies), straight from the file. */
function scan(file: string): { secrets: Record<number, number>; policies: Record<number, number>; plain: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const count = (sql: string) =>
      Object.fromEntries(
        (db.prepare(sql).all() as { v: number; n: number }[]).map((row) => [Number(row.v), Number(row.n)]),
      );
    return {
      secrets: count("SELECT key_version AS v, count(*) AS n FROM secret_versions GROUP BY key_version"),
      policies: count(
        "SELECT key_version AS v, count(*) AS n FROM policies WHERE sealed IS NOT NULL GROUP BY key_version",
      ),
      plain: Number((db.prepare("SELECT count(*) AS n FROM policies WHERE sealed IS NULL").get() as { n: number }).n),
    };
  } finally {
    db.close();
  }
}

/** Every seeded path reads its latest value, as the superuser and as the workload. */
async function readsBack(stack: RotationStack, expected: Map<string, string>): Promise<void> {
  const client = await stack.client();
  for (const [path, value] of expected) assert.deepEqual(await client.getSecret(path), { v: value }, path);
}

async function rotatedTo(stack: RotationStack, version: number): Promise<void> {
  await until(async () => {
    const { rotation, keepers } = await stack.status();
    return rotation.phase === "idle" && rotation.keyVersion === version && rotation.writeKeyVersion === version &&
      rotation.heldKeyVersions.length === 1 && keepers.every((k) => k.versions.join() === String(version));
  }, `the rotation to version ${version} finished and the Keepers hold only it`);
}

Deno.test("rotation on real processes (SQLite): online, scanned, old recovery files refused, kill -9 at every step", async (t) => {
  const stack = await startRotationStack({ nexusEnv: { SPIKE_NEXUS_ROTATION_BATCH: "4" } });
  const expected = new Map<string, string>();
  try {
    await stack.bootstrap();
    const admin = await stack.client();
    for (let p = 0; p < PATHS; p++) {
      for (let v = 1; v <= 3; v++) await admin.putSecret(`apps/web/s${p}`, { v: `${p}-${v}` });
      expected.set(`apps/web/s${p}`, `${p}-3`);
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
        "^apps/web/",
        "--permissions",
        "read",
      ]),
      0,
      "policy create",
    );
    const web = await stack.workload("app/web");
    const webReads = async () =>
      exits(
        await runSpike(["secret", "get", "apps/web/s1"], {
          env: { SPIKE_SVID_DIR: web, SPIKE_NEXUS_API_URL: stack.nexusUrl() },
        }),
        0,
        "web reads",
      );
    await webReads();
    const before = join(stack.dir, "recover-v1");
    exits(await stack.as("recover", ["operator", "recover"], { recoveryDir: before }), 0, "recover before");

    await t.step("spike operator rotate while reads go on: none fails; status, Keepers and a scan agree", async () => {
      const reader = await stack.client();
      let stop = false;
      let reads = 0;
      const failures: string[] = [];
      const load = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop && i < 20_000; i++) {
          const p = (w * 5 + i) % PATHS;
          try {
            const got = await reader.getSecret(`apps/web/s${p}`);
            if (!got.v?.startsWith(`${p}-`)) failures.push(`wrong value for s${p}`);
            reads++;
          } catch (error) {
            failures.push(error instanceof ApiCallError ? `${error.status} ${error.code}` : String(error));
          }
        }
      });
      const rotate = await stack.as("superuser", ["operator", "rotate"]);
      stop = true;
      await Promise.all(load);
      exits(rotate, 0, "operator rotate");
      assert.match(rotate.stdout, /every record is sealed under version 2; version 1 is retired/);
      assert.match(rotate.stderr, /version 1 → 2/);
      assert.deepEqual(failures, [], `${reads} reads during the rotation`);
      assert.ok(reads > 0);

      await rotatedTo(stack, 2);
      const status = await stack.status();
      assert.equal(status.retiredKeyVersions[0]!.version, 1);
      assert.ok(status.retiredKeyVersions[0]!.retiredAt);
      assert.ok(status.keepers.every((k) => k.versioned === true));
      const human = exits(await stack.as("superuser", ["operator", "status"]), 0, "status").stdout;
      assert.match(human, /^root key version: 2; this Nexus seals new data under 2, holds 2$/m);
      assert.match(human, /^retired versions: 1 \(/m);
      const { secrets, policies, plain } = scan(stack.sqliteFile!);
      assert.deepEqual(secrets, { 2: PATHS * 3 }, "no secret version left under version 1");
      assert.deepEqual(policies, { 2: 1 });
      assert.equal(plain, 0);
      await readsBack(stack, expected);
      await webReads();
      const ready = JSON.parse((await getPlain(stack.nexusPort(), "/ready")).body);
      assert.equal(ready.keyVersion, 2);
      const metrics = (await getPlain(stack.nexusPort(), "/metrics")).body;
      assert.match(metrics, /^spike_nexus_root_key_version 2$/m);
      assert.match(metrics, /^spike_nexus_rotation_phase 0$/m);
    });

    await t.step(
      "recovery files from before the rotation are refused, naming version 1; new ones restore",
      async () => {
        const after = join(stack.dir, "recover-v2");
        const recovered = exits(
          await stack.as("recover", ["operator", "recover"], { recoveryDir: after }),
          0,
          "recover",
        );
        assert.match(recovered.stderr, /root key version 2/);
        const file = (dir: string, i: number) => Deno.readTextFileSync(join(dir, `spike.recovery.${i}.txt`));
        assert.match(file(after, 1), /^# spike root key version 2;/m);
        // Nexus without Keepers: it waits for operator shards.
        await stack.kill();
        await stack.startNexus(0, { SPIKE_NEXUS_KEEPER_PEERS: "" });
        const withComment = await stack.as("restore", ["operator", "restore"], { stdin: file(before, 1) });
        exits(withComment, 1, "restore of a version-1 file");
        assert.match(withComment.stderr, /root key version 1, retired on \d{4}-\d\d-\d\dT/);
        // SPIKE's one-line format says no version: the two shards are combined, then refused.
        const lineOnly = (i: number) => file(before, i).split("\n")[0] + "\n";
        exits(await stack.as("restore", ["operator", "restore"], { stdin: lineOnly(1) }), 0, "first old shard");
        const second = await stack.as("restore", ["operator", "restore"], { stdin: lineOnly(2) });
        exits(second, 1, "second old shard");
        assert.match(
          second.stderr,
          /these shards rebuild root key version 1, retired on .*use recovery files made after/,
        );
        for (const i of [1, 3]) {
          exits(await stack.as("restore", ["operator", "restore"], { stdin: file(after, i) }), 0, "restore");
        }
        await until(async () => (await getPlain(stack.nexusPort(), "/ready")).status === 200, "Nexus restored");
        await readsBack(stack, expected);
        await stack.kill();
        await stack.startNexus(0);
        await until(
          async () => (await getPlain(stack.nexusPort(), "/ready")).status === 200,
          "Nexus back with Keepers",
        );
      },
    );

    await t.step(
      "the audit trail across the rotation: records carry their key version, each version's files check them",
      async () => {
        const trail = join(stack.dir, "audit-0.log");
        const versions = new Set(
          Deno.readTextFileSync(trail).split("\n").filter(Boolean).map((line) => JSON.parse(line).keyVersion),
        );
        assert.ok(versions.has(1) && versions.has(2), `records under root key versions 1 and 2: ${[...versions]}`);
        const both = await runSpike([
          "audit",
          "verify",
          "--recovery-dir",
          join(stack.dir, "recover-v1"),
          "--recovery-dir",
          join(stack.dir, "recover-v2"),
          trail,
        ]);
        exits(both, 0, "verify with both versions' recovery files");
        assert.match(both.stdout, /^OK \d+ records/);
        const newOnly = await runSpike(["audit", "verify", "--recovery-dir", join(stack.dir, "recover-v2"), trail]);
        exits(newOnly, 1, "verify with version 2's files only");
        assert.match(newOnly.stdout + newOnly.stderr, /audit key version 1 is not available to this verifier/);
        const twice = await runSpike([
          "audit",
          "verify",
          "--recovery-dir",
          join(stack.dir, "recover-v2"),
          "--recovery-dir",
          join(stack.dir, "recover-v2"),
          trail,
        ]);
        exits(twice, 2, "one version twice");
      },
    );

    const steps = ["claimed", "distributed", "sealing", "batch", "finished"] as const;
    let version = 2;
    for (const step of steps) {
      await t.step(`kill -9 at '${step}': the restarted Nexus finishes the rotation; every record reads`, async () => {
        const client = await stack.client();
        for (let p = 0; p < 6; p++) {
          await client.putSecret(`apps/web/s${p}`, { v: `${p}-at-${step}` });
          expected.set(`apps/web/s${p}`, `${p}-at-${step}`);
        }
        await stack.kill();
        await stack.startNexus(0, { SPIKE_TEST_NEXUS_ROTATION_PAUSE: step });
        await until(async () => (await getPlain(stack.nexusPort(), "/ready")).status === 200, "Nexus ready");
        exits(await stack.as("superuser", ["operator", "rotate", "--no-wait"]), 0, "rotate --no-wait");
        await stack.nexus().waitFor(/rotation paused for a test/, 60_000);
        await stack.kill();
        const restarted = await stack.startNexus(0);
        version++;
        await rotatedTo(stack, version);
        if (step !== "finished") {
          // The store said a rotation was under way: the restarted Nexus took it over and finished it.
          assert.match(restarted.output, /taking over a root key rotation whose driver stopped/);
          assert.match(restarted.output, /root key rotation finished/);
        }
        const { secrets, policies } = scan(stack.sqliteFile!);
        assert.deepEqual(
          Object.keys(secrets),
          [String(version)],
          `secret versions by key version: ${JSON.stringify(secrets)}`,
        );
        assert.deepEqual(policies, { [version]: 1 });
        await readsBack(stack, expected);
        await webReads();
      });
    }
  } finally {
    await stack.close();
  }
});
