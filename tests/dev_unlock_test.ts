/**
 * The compose demo's two development helpers on real processes:
 * `spike dev identities` mints every role's SVID and, with `--renew`, renews
 * them before half their lifetime while the roles keep serving on the new
 * files; `spike dev unlock` bootstraps a fresh Nexus and saves its recovery
 * shards, then — after every process was killed and started again with
 * empty Keepers, as `docker compose down` / `up` does — restores the same
 * key from them, so the data comes back without a human.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getPlain } from "../lib/dev/health.ts";
import { type CommandResult, eventually, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** The serial number line of a PEM file's first certificate, as a change detector. */
async function leafOf(file: string): Promise<string> {
  return (await Deno.readTextFile(file)).split("-----END CERTIFICATE-----")[0]!;
}

Deno.test("spike dev identities: every role minted, --check, renewal while the roles keep serving", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_dev_ids_" });
  const running: SpikeProcess[] = [];
  try {
    const ids = join(tmp, "ids");
    const base = ["dev", "identities", "--dir", join(tmp, "ca"), "--out", ids, "--keepers", "2"];
    exits(await runSpike([...base, "--workload", "node-service=app/node-service", "--ttl", "1h"]), 0, "mint");
    const names = [...Deno.readDirSync(ids)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "bootstrap",
      "keeper-1",
      "keeper-2",
      "nexus",
      "node-service",
      "pilot-recover",
      "pilot-restore",
      "pilot-superuser",
    ]);
    assert.equal((Deno.statSync(join(ids, "nexus", "svid_key.pem")).mode ?? 0) & 0o777, 0o600);
    const workload = ["--workload", "node-service=app/node-service"];
    exits(await runSpike([...base, ...workload, "--ttl", "1h", "--check"]), 0, "check right after minting");
    // Fresh means a quarter of --ttl left: 1h SVIDs are not fresh for a 100h lifetime.
    const stale = exits(await runSpike([...base, ...workload, "--ttl", "100h", "--check"]), 1, "check, too short");
    assert.match(stale.stderr, /nexus: expires at/);
    const missing = exits(
      await runSpike([...base, "--workload", "other=app/other", "--check"]),
      1,
      "check, a workload never minted",
    );
    assert.match(missing.stderr, /other: no SVID in \S+: directory missing/);
    for (const bad of [["--workload", "x=/abs"], ["--keepers", "0"], ["--ttl", "1s"], ["--renew", "--check"]]) {
      exits(await runSpike([...base, ...bad]), 2, `usage: ${bad.join(" ")}`);
    }

    // A 12-second lifetime renewed every 6 seconds, with a Keeper serving on those files past the first expiry.
    const renewing = new SpikeProcess([...base, "--ttl", "12s", "--renew"]);
    running.push(renewing);
    await renewing.waitFor(/minted 7 SVIDs/);
    const first = await leafOf(join(ids, "keeper-1", "svid.pem"));
    const port = freePort();
    const keeper = new SpikeProcess(["keeper"], {
      env: { SPIKE_SVID_DIR: join(ids, "keeper-1"), SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` },
    });
    running.push(keeper);
    await keeper.waitFor(/keeper listening/);
    await renewing.waitFor(/renewed every SVID/, 15_000);
    assert.notEqual(await leafOf(join(ids, "keeper-1", "svid.pem")), first, "a new certificate was written");
    // Past the first SVID's end (12 s + the CA's 60 s back-dating does not apply to notAfter).
    await new Promise((resolve) => setTimeout(resolve, 13_000));
    const status = exits(
      await runSpike(["status", "--keepers-only", "--keeper", `https://127.0.0.1:${port}`, "--live"], {
        env: { SPIKE_SVID_DIR: join(ids, "pilot-superuser") },
      }),
      0,
      "the Keeper still serves with a valid SVID after the first one expired",
    );
    assert.match(status.stdout, /keeper-1\s+\S+\s+live/);
    exits(await runSpike([...base, "--ttl", "12s", "--check"]), 0, "renewed SVIDs are fresh");
    const stopped = await renewing.stop("SIGTERM");
    assert.equal(stopped.code, 0, renewing.output);
    running.splice(running.indexOf(renewing), 1);
  } finally {
    await Promise.all(running.map((child) => child.stop()));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("spike dev unlock: bootstrap and save shards, then restore after every process restarted empty", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_dev_unlock_" });
  const ids = join(tmp, "ids");
  const recovery = join(tmp, "recovery");
  const nexusPort = freePort();
  const keeperPorts = [freePort(), freePort(), freePort()];
  const shared = {
    SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
    SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map((p) => `https://127.0.0.1:${p}`).join(","),
    SPIKE_NEXUS_SHAMIR_SHARES: "3",
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
  };
  const as = (name: string, extra: Record<string, string> = {}) => ({
    ...shared,
    SPIKE_SVID_DIR: join(ids, name),
    ...extra,
  });
  let running: SpikeProcess[] = [];
  const startStack = () => {
    const keepers = keeperPorts.map((port, i) =>
      new SpikeProcess(["keeper"], { env: as(`keeper-${i + 1}`, { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` }) })
    );
    const nexus = new SpikeProcess(["nexus"], {
      env: as("nexus", {
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
        SPIKE_NEXUS_BACKEND_STORE: "sqlite",
        SPIKE_NEXUS_DATA_DIR: join(tmp, "data"),
      }),
    });
    running = [...keepers, nexus];
  };
  // `docker compose down`: every container ends; Keepers lose their shards, Nexus its key.
  const killStack = async () => {
    await Promise.all(running.map((child) => child.stop("SIGKILL")));
    running = [];
  };
  const unlock = (extra: string[] = []) =>
    runSpike(["dev", "unlock", "--identities", ids, "--recovery-dir", recovery, "--timeout", "60s", ...extra], {
      env: shared,
      timeoutMs: 90_000,
    });
  const superuser = (args: string[]) => runSpike(args, { env: as("pilot-superuser") });
  try {
    exits(
      await runSpike(["dev", "identities", "--dir", join(tmp, "ca"), "--out", ids, "--keepers", "3"]),
      0,
      "mint identities",
    );
    // Started before Nexus is up: unlock waits for it.
    const first = unlock();
    startStack();
    const firstRun = exits(await first, 0, "first unlock");
    assert.match(firstRun.stderr, /Nexus is fresh: bootstrapping a new root key/);
    assert.match(firstRun.stderr, /WARNING: 3 recovery shards saved in .*development only/);
    assert.deepEqual([...Deno.readDirSync(recovery)].map((e) => e.name).sort(), [
      "spike.recovery.1.txt",
      "spike.recovery.2.txt",
      "spike.recovery.3.txt",
    ]);
    assert.equal((Deno.statSync(join(recovery, "spike.recovery.1.txt")).mode ?? 0) & 0o777, 0o600);
    exits(await superuser(["secret", "put", "app/db", "user=app", "pass=kept-across-restarts"]), 0, "put");

    const again = exits(await unlock(), 0, "unlock while everything runs");
    assert.match(again.stderr, /already held its root key/);

    await killStack();
    startStack();
    await eventually(async () => (await getPlain(nexusPort, "/health")).status === 200, "Nexus is up again");
    assert.equal((await getPlain(nexusPort, "/ready")).status, 503, "Keepers are empty: Nexus has no key");
    const restored = exits(await unlock(), 0, "unlock after a restart");
    assert.match(restored.stderr, /restoring the root key from the 3 recovery shards/);
    assert.match(restored.stderr, /rebuilt its root key from the saved shards and is ready/);
    await waitForReady(nexusPort);
    const got = exits(await superuser(["secret", "get", "app/db", "-f", "json"]), 0, "get after restore");
    assert.equal(JSON.parse(got.stdout).pass, "kept-across-restarts");
    // Nexus re-seeds the Keepers after a restore: a Keeper restart alone needs nobody.
    await eventually(
      async () => (await Promise.all(keeperPorts.map((p) => getPlain(p, "/ready")))).every((r) => r.status === 200),
      "every Keeper holds its shard again",
    );

    // Without the shards, data without a key is a human's job.
    await Deno.remove(recovery, { recursive: true });
    await killStack();
    startStack();
    const refused = exits(await unlock(["--timeout", "30s"]), 1, "unlock without shards, data present");
    assert.match(refused.stderr, /Nexus keeps data but has no root key/);
  } finally {
    await Promise.all(running.map((child) => child.stop()));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
