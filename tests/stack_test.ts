/**
 * The root key lifecycle with every role as its own `spike` process and
 * identities minted by `spike dev identity`: bootstrap, a secret written and
 * read through the CLI, Nexus killed and recovering from the Keepers (3 of 3,
 * then 2 of 3), too few Keepers (503, the CLI says not ready), break-glass
 * restore from two recovery files, and restarted Keepers re-seeded by
 * Nexus's push — proven by a Nexus that recovers from those two alone.
 * Also: a busy port and a bad peer list fail fast and clearly; SIGTERM exits 0.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getPlainStatus } from "../lib/dev/health.ts";
import { eventually, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const TD = "spiffe://spike.ist";
const ROLES = {
  nexus: "spike/nexus",
  keeper: "spike/keeper",
  bootstrap: "spike/bootstrap",
  superuser: "spike/pilot/role/superuser",
  recover: "spike/pilot/role/recover",
  restore: "spike/pilot/role/restore",
} as const;
type Role = keyof typeof ROLES;

Deno.test("stack: bootstrap, kill -9, 2 of 3 Keepers, break-glass restore, Keepers re-seeded", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_stack_" });
  const ca = join(tmp, "ca");
  const idDir = (role: Role) => join(tmp, "id", role);
  const nexusPort = freePort();
  const keeperPorts = [freePort(), freePort(), freePort()];
  const nexusUrl = `https://127.0.0.1:${nexusPort}`;
  const peers = keeperPorts.map((p) => `https://127.0.0.1:${p}`).join(",");
  const recoveryDir = join(tmp, "recover");
  const shared = {
    SPIKE_NEXUS_API_URL: nexusUrl,
    SPIKE_NEXUS_KEEPER_PEERS: peers,
    SPIKE_NEXUS_SHAMIR_SHARES: "3",
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
  };
  const envOf = (role: Role, extra: Record<string, string> = {}) => ({
    ...shared,
    SPIKE_SVID_DIR: idDir(role),
    ...extra,
  });
  const nexusEnv = envOf("nexus", {
    SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
    SPIKE_NEXUS_BACKEND_STORE: "sqlite",
    SPIKE_NEXUS_DATA_DIR: join(tmp, "data"),
    SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "1s",
  });
  const pilot = (role: Role) => envOf(role, { SPIKE_PILOT_RECOVERY_DIR: recoveryDir });

  const running = new Set<SpikeProcess>();
  const start = (args: string[], env: Record<string, string>) => {
    const child = new SpikeProcess(args, { env });
    running.add(child);
    return child;
  };
  const stop = async (child: SpikeProcess, signal: Deno.Signal = "SIGTERM") => {
    const status = await child.stop(signal);
    running.delete(child);
    return status;
  };
  const startNexus = async () => {
    const nexus = start(["nexus"], nexusEnv);
    await nexus.waitFor(/nexus listening/);
    return nexus;
  };
  const startKeeper = async (i: number) => {
    const keeper = start(["keeper"], envOf("keeper", { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${keeperPorts[i]}` }));
    await keeper.waitFor(/keeper listening/);
    return keeper;
  };
  const getSecret = () => runSpike(["secret", "get", "app/db", "pass"], { env: pilot("superuser") });

  try {
    await t.step("identities from spike dev identity", async () => {
      const mint = async (role: Role) => {
        const r = await runSpike(["dev", "identity", `${TD}/${ROLES[role]}`, "--dir", ca, "--out", idDir(role)]);
        assert.equal(r.code, 0, r.stderr);
      };
      await mint("nexus"); // creates the CA; the others reuse it
      await Promise.all((["keeper", "bootstrap", "superuser", "recover", "restore"] as const).map(mint));
    });

    let nexus!: SpikeProcess;
    const keepers: SpikeProcess[] = [];

    await t.step("start Nexus and three Keepers; busy ports and bad peers fail fast", async () => {
      const started = await Promise.all([startNexus(), startKeeper(0), startKeeper(1), startKeeper(2)]);
      nexus = started[0];
      keepers.push(...started.slice(1));
      const [keeperBusy, nexusBusy, badPeers] = await Promise.all([
        runSpike(["keeper"], { env: envOf("keeper", { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${keeperPorts[0]}` }) }),
        runSpike(["nexus"], { env: { ...nexusEnv, SPIKE_NEXUS_DATA_DIR: join(tmp, "data-busy") } }),
        runSpike(["bootstrap"], {
          env: envOf("bootstrap", { SPIKE_NEXUS_KEEPER_PEERS: "keeper-1:8443,keeper-2,keeper-3" }),
        }),
      ]);
      assert.equal(keeperBusy.code, 1, keeperBusy.stderr);
      assert.match(keeperBusy.stderr, /port is already in use/);
      assert.equal(nexusBusy.code, 1, nexusBusy.stderr);
      assert.match(nexusBusy.stderr, /port is already in use/);
      assert.equal(badPeers.code, 1, badPeers.stderr);
      assert.match(badPeers.stderr, /configuration: SPIKE_NEXUS_KEEPER_PEERS: 'keeper-1:8443' /);
      assert.equal(await getPlainStatus(nexusPort, "/ready"), 503);
    });

    await t.step("bootstrap verifies; a secret goes in and comes out; recovery files are saved", async () => {
      const boot = await runSpike(["bootstrap"], { env: envOf("bootstrap") });
      assert.equal(boot.code, 0, boot.stderr);
      assert.match(boot.stdout, /bootstrap: verified/);
      await waitForReady(nexusPort);
      const [put, recover] = await Promise.all([
        runSpike(["secret", "put", "app/db", "user=admin", "--from-stdin", "pass"], {
          env: pilot("superuser"),
          stdin: "s3cret\n",
        }),
        runSpike(["operator", "recover"], { env: pilot("recover") }),
      ]);
      assert.equal(put.code, 0, put.stderr);
      assert.equal(recover.code, 0, recover.stderr);
      for (const i of [1, 2, 3]) {
        const info = await Deno.stat(join(recoveryDir, `spike.recovery.${i}.txt`));
        assert.equal(info.mode! & 0o777, 0o600);
      }
      const get = await getSecret();
      assert.deepEqual([get.code, get.stdout], [0, "s3cret"], get.stderr);
      // Bootstrap again: this Nexus already has its key.
      const again = await runSpike(["bootstrap"], { env: envOf("bootstrap") });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already running with a root key/);
    });

    await t.step("kill -9 Nexus: a new one recovers the key from the Keepers", async () => {
      await stop(nexus, "SIGKILL");
      nexus = await startNexus();
      await waitForReady(nexusPort);
      const get = await getSecret();
      assert.deepEqual([get.code, get.stdout], [0, "s3cret"], get.stderr);
    });

    await t.step("one Keeper down: Nexus still recovers from 2 of 3; SIGTERM exits 0", async () => {
      const [keeperStatus, nexusStatus] = await Promise.all([stop(keepers[2]!), stop(nexus)]);
      assert.equal(keeperStatus.code, 0, keepers[2]!.output);
      assert.equal(nexusStatus.code, 0, nexus.output);
      nexus = await startNexus();
      await waitForReady(nexusPort);
      const get = await getSecret();
      assert.deepEqual([get.code, get.stdout], [0, "s3cret"], get.stderr);
    });

    await t.step("two Keepers down: Nexus is not ready and the CLI says so", async () => {
      await Promise.all([stop(keepers[1]!), stop(nexus, "SIGKILL")]);
      nexus = await startNexus();
      await nexus.waitFor(/waiting for keeper shards.*"have":1,"need":2/);
      assert.equal(await getPlainStatus(nexusPort, "/ready"), 503);
      const get = await getSecret();
      assert.notEqual(get.code, 0);
      assert.equal(get.stdout, "");
      assert.match(get.stderr, /not ready/);
    });

    await t.step("break-glass: two recovery files restore the key; the secret reads back", async () => {
      const restore = (i: number) =>
        Deno.readTextFile(join(recoveryDir, `spike.recovery.${i}.txt`))
          .then((line) => runSpike(["operator", "restore"], { env: pilot("restore"), stdin: line }));
      const first = await restore(1);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /shards collected: 1, remaining: 1/);
      const second = await restore(3);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /restored/);
      await waitForReady(nexusPort);
      const get = await getSecret();
      assert.deepEqual([get.code, get.stdout], [0, "s3cret"], get.stderr);
    });

    await t.step(
      "restarted Keepers hold their shards again after a push; Nexus recovers from just those two",
      async () => {
        keepers[1] = await startKeeper(1);
        keepers[2] = await startKeeper(2);
        // A Keeper's /ready turns 200 once it holds a shard (no client cert needed).
        await eventually(
          async () =>
            (await getPlainStatus(keeperPorts[1]!, "/ready")) === 200 &&
            (await getPlainStatus(keeperPorts[2]!, "/ready")) === 200,
          "both restarted keepers hold a shard",
          10_000,
        );
        // Only the re-seeded Keepers are left: a fresh Nexus must rebuild the key from them.
        await Promise.all([stop(keepers[0]!), stop(nexus)]);
        nexus = await startNexus();
        await waitForReady(nexusPort);
        const get = await getSecret();
        assert.deepEqual([get.code, get.stdout], [0, "s3cret"], get.stderr);
      },
    );
  } finally {
    const statuses = await Promise.all([...running].map(async (child) => [child, await stop(child)] as const));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    for (const [child, status] of statuses) assert.equal(status.code, 0, `exit after SIGTERM:\n${child.output}`);
  }
});
