/**
 * Two Nexus processes on one Postgres database, as an HA deployment runs
 * them (behind a load balancer, sharing two Keepers): Bootstrap goes through
 * one, the other recovers the same root key from the Keepers; a secret
 * written through either reads back through the other; a policy created on
 * one is enforced by the other at once, and its deletion too; concurrent
 * writers split across both never lose an update nor reuse a version; when
 * one Nexus is killed the other keeps serving; no plaintext reaches the
 * database. Both reach the database over verified TLS; one runs with the
 * least Deno permissions of its role. HAProxy, with the configuration
 * shipped in `deploy/haproxy/`, sits in front and keeps clients served when
 * an instance dies.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { netTarget, rolePermissionFlags } from "../lib/config/permissions.ts";
import { mintDevIdentities } from "../lib/dev/identities.ts";
import { loadOrCreateDevCa, writeSvidFiles } from "../lib/spiffe/dev_ca.ts";
import { ApiCallError, connectSpike, type SpikeClient } from "../lib/sdk/mod.ts";
import { type Haproxy, startHaproxy } from "./support/haproxy.ts";
import { createTestDatabase, testPostgresCaFile } from "./support/postgres_db.ts";
import { freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const WORKLOAD = "spiffe://spike.ist/app/billing";
const HAPROXY_CONFIG = new URL("../deploy/haproxy/nexus-ha.cfg", import.meta.url).pathname;
const PLAINTEXT = "correct-horse-battery-staple";

Deno.test("postgres HA: two Nexus instances share one database and one root key", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_ha_" });
  const db = await createTestDatabase();
  const running = new Set<SpikeProcess>();
  const clients: SpikeClient[] = [];
  let haproxy: Haproxy | undefined;
  try {
    const ids = await mintDevIdentities(tmp, "spike.ist", 2);
    const ca = await loadOrCreateDevCa(join(tmp, "ca"));
    const workloadDir = join(tmp, "identities", "billing");
    await writeSvidFiles(workloadDir, await ca.issue(WORKLOAD));

    const keeperPorts = [freePort(), freePort()];
    const nexusPorts = [freePort(), freePort()];
    const lbPort = freePort();
    const urlOf = (port: number) => `https://127.0.0.1:${port}`;
    const shared = {
      SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map(urlOf).join(","),
      SPIKE_NEXUS_SHAMIR_SHARES: "2",
      SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
    };
    const start = async (args: string[], env: Record<string, string>, ready: RegExp, denoFlags?: string[]) => {
      const child = new SpikeProcess(args, { env, ...(denoFlags ? { denoFlags: [...denoFlags, "--quiet"] } : {}) });
      running.add(child);
      await child.waitFor(ready);
      return child;
    };
    // Instance B runs with exactly the permissions a deployment grants (no file writes at all).
    // The database is reached as "localhost" over TLS, verified against the test cluster's CA.
    const dbUrl = Object.assign(new URL(db.url), { hostname: "localhost" }).href;
    const caFile = testPostgresCaFile();
    const leastPermissions = rolePermissionFlags("nexus", {
      svidDir: ids.dirOf("nexus"),
      readFiles: [caFile],
      listen: `127.0.0.1:${nexusPorts[1]}`,
      connect: [netTarget(dbUrl), ...keeperPorts.map((port) => `127.0.0.1:${port}`)],
    });
    const startNexus = (i: number) =>
      start(
        ["nexus"],
        {
          ...shared,
          SPIKE_SVID_DIR: ids.dirOf("nexus"),
          SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPorts[i]}`,
          SPIKE_NEXUS_BACKEND_STORE: "postgres",
          SPIKE_NEXUS_POSTGRES_URL: dbUrl,
          SPIKE_NEXUS_POSTGRES_CA_FILE: caFile,
          SPIKE_NEXUS_MAX_SECRET_VERSIONS: "100",
          SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "2s",
          SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL: "200ms",
        },
        /nexus listening/,
        i === 1 ? leastPermissions : undefined,
      );
    const connect = async (dir: string, port: number) => {
      const client = await connectSpike({ env: { SPIKE_SVID_DIR: dir }, nexusUrl: urlOf(port) });
      clients.push(client);
      return client;
    };

    const [nexusA] = await Promise.all([
      startNexus(0),
      startNexus(1),
      ...keeperPorts.map((port, i) =>
        start(
          ["keeper"],
          { SPIKE_SVID_DIR: ids.dirOf(`keeper-${i + 1}`), SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` },
          /keeper listening/,
        )
      ),
    ]);

    const [superA, superB, superLb] = await Promise.all([
      connect(ids.dirOf("pilot-superuser"), nexusPorts[0]!),
      connect(ids.dirOf("pilot-superuser"), nexusPorts[1]!),
      connect(ids.dirOf("pilot-superuser"), lbPort),
    ]);
    const [workloadA, workloadB] = await Promise.all([
      connect(workloadDir, nexusPorts[0]!),
      connect(workloadDir, nexusPorts[1]!),
    ]);

    await t.step("bootstrap through one Nexus; the other recovers the same key from the Keepers", async () => {
      const boot = await runSpike(["bootstrap"], {
        env: { ...shared, SPIKE_SVID_DIR: ids.dirOf("bootstrap"), SPIKE_NEXUS_API_URL: urlOf(nexusPorts[0]!) },
      });
      assert.equal(boot.code, 0, boot.stderr);
      await Promise.all(nexusPorts.map((port) => waitForReady(port)));
      await superA.putSecret("apps/billing/db", { pass: PLAINTEXT });
      assert.deepEqual(await superB.getSecret("apps/billing/db"), { pass: PLAINTEXT });
    });

    await t.step("a policy made on one Nexus is enforced by the other at once, and so is its deletion", async () => {
      const denied = (call: Promise<unknown>) =>
        assert.rejects(call, (e: unknown) => e instanceof ApiCallError && e.status === 401);
      await denied(workloadB.getSecret("apps/billing/db"));
      const create = await runSpike(
        [
          "policy",
          "create",
          "--name",
          "billing-read",
          "--spiffeid-pattern",
          `^${WORKLOAD.replaceAll(".", "\\.")}$`,
          "--path-pattern",
          "^apps/billing/.*$",
          "--permissions",
          "read",
        ],
        { env: { SPIKE_SVID_DIR: ids.dirOf("pilot-superuser"), SPIKE_NEXUS_API_URL: urlOf(nexusPorts[0]!) } },
      );
      assert.equal(create.code, 0, create.stderr);
      assert.deepEqual(await workloadB.getSecret("apps/billing/db"), { pass: PLAINTEXT });
      const remove = await runSpike(["policy", "delete", "billing-read", "--yes"], {
        env: { SPIKE_SVID_DIR: ids.dirOf("pilot-superuser"), SPIKE_NEXUS_API_URL: urlOf(nexusPorts[1]!) },
      });
      assert.equal(remove.code, 0, remove.stderr);
      await denied(workloadA.getSecret("apps/billing/db"));
    });

    await t.step("40 concurrent writers split across both Nexus: 40 distinct versions, none lost", async () => {
      const writers = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? superA : superB));
      await Promise.all(writers.map((client, i) => client.putSecret("apps/billing/counter", { writer: String(i) })));
      const seen = new Set<string>();
      for (let version = 1; version <= 40; version++) {
        const values = await (version % 2 === 0 ? superA : superB).getSecret("apps/billing/counter", { version });
        seen.add(values.writer!);
      }
      assert.equal(seen.size, 40, "every writer's value is some version");
      await assert.rejects(superA.getSecret("apps/billing/counter", { version: 41 }), /404|not found/i);
    });

    await t.step(
      "key-value features across both: check-and-set, patch, move, expiry swept by one of them",
      async () => {
        // Check-and-set: of writers on both instances naming the same version, one lands per round.
        for (let round = 0; round < 3; round++) {
          const results = await Promise.allSettled(
            Array.from(
              { length: 6 },
              (_, i) =>
                (i % 2 ? superA : superB).putSecret("apps/billing/cas", { round: String(round) }, { cas: round }),
            ),
          );
          assert.equal(
            results.filter((r) => r.status === "fulfilled").length,
            1,
            `round ${round}`,
          );
        }
        // Patches of distinct keys through both instances at once: none lost.
        await superA.putSecret("apps/billing/conf", { base: "0" });
        await Promise.all(
          Array.from(
            { length: 20 },
            (_, i) => (i % 2 ? superA : superB).patchSecret("apps/billing/conf", { [`k${i}`]: "v" }),
          ),
        );
        assert.equal(Object.keys(await superB.getSecret("apps/billing/conf")).length, 21);
        // A move on one instance is what the other sees.
        await superA.moveSecret("apps/billing/conf", "apps/billing/conf-moved");
        assert.equal(Object.keys(await superB.getSecret("apps/billing/conf-moved")).length, 21);
        await assert.rejects(superB.getSecret("apps/billing/conf"), /404|not found/i);
        // A 1 s expiry: reads stop at once on both; the sweep (either instance, one at a time) removes it.
        await superA.putSecret("apps/billing/brief", { v: "1" }, { ttl: "1s" });
        const listed = async () => (await superB.listSecretsPage({ prefix: "apps/billing/brief" })).keys.length;
        assert.equal(await listed(), 1);
        const deadline = Date.now() + 15_000;
        while ((await listed()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.equal(await listed(), 0, "the expired secret was swept");
        await assert.rejects(superA.getSecret("apps/billing/brief"), /404|not found/i);
      },
    );

    await t.step("behind HAProxy (deploy/haproxy/nexus-ha.cfg, TLS passed through), clients reach Nexus", async () => {
      haproxy = await startHaproxy(HAPROXY_CONFIG, {
        SPIKE_LB_BIND: `127.0.0.1:${lbPort}`,
        SPIKE_NEXUS_1: `127.0.0.1:${nexusPorts[0]}`,
        SPIKE_NEXUS_2: `127.0.0.1:${nexusPorts[1]}`,
      }, lbPort);
      assert.deepEqual(await superLb.getSecret("apps/billing/db"), { pass: PLAINTEXT });
    });

    await t.step("one Nexus killed: the other keeps serving, directly and behind HAProxy", async () => {
      await nexusA.stop("SIGKILL");
      running.delete(nexusA);
      assert.deepEqual(await superB.getSecret("apps/billing/db"), { pass: PLAINTEXT });
      await superB.putSecret("apps/billing/db", { pass: `${PLAINTEXT}-2` });
      assert.deepEqual(await superB.getSecret("apps/billing/db"), { pass: `${PLAINTEXT}-2` });
      // A connection the load balancer had open to the killed instance breaks;
      // the SDK reads again on a new one, which goes to the survivor.
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await superLb.getSecret("apps/billing/db"), { pass: `${PLAINTEXT}-2` });
      }
    });

    await t.step("Nexus talks to the database over TLS only; no plaintext value in any column", async () => {
      const sql = postgres(db.url, { max: 1, onnotice: () => {} });
      try {
        const sessions = await sql`
          SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE a.datname = current_database() AND s.pid <> pg_backend_pid()`;
        assert.ok(sessions.length > 0, "the surviving Nexus holds connections");
        assert.ok(sessions.every((row) => row.ssl === true), "every Nexus connection uses TLS");
        const dump = [
          ...(await sql`SELECT sealed AS b FROM secret_versions`),
          ...(await sql`SELECT value AS b FROM meta`),
        ].map((row) => new TextDecoder("latin1").decode(row.b as Uint8Array)).join("\n");
        const text = JSON.stringify(await sql`SELECT * FROM secrets`) +
          JSON.stringify(await sql`SELECT * FROM policies`);
        assert.ok(dump.length > 0);
        for (const haystack of [dump, text]) assert.ok(!haystack.includes(PLAINTEXT.slice(0, 12)));
      } finally {
        await sql.end();
      }
    });
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await haproxy?.stop();
    const statuses = await Promise.all([...running].map(async (child) => [child, await child.stop()] as const));
    await db.drop();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    for (const [child, status] of statuses) assert.equal(status.code, 0, `exit after SIGTERM:\n${child.output}`);
  }
});
