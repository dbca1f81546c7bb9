/**
 * `spike bootstrap` as a Kubernetes Job or systemd oneshot runs it
 * (`SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED=true`), on real processes: the first
 * run bootstraps; a rerun against the initialized deployment exits 0 and
 * hands nothing out; a rerun while a restarted Nexus is still fetching its
 * shards waits for it and exits 0; a rerun against a Nexus whose Keepers
 * lost every shard fails at its deadline pointing at restore, and still
 * hands nothing out. The secret written first reads back at the end of each.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getPlainStatus } from "../lib/dev/health.ts";
import { mintDevIdentities } from "../lib/dev/identities.ts";
import { freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

Deno.test("bootstrap job: bootstraps once, then exits 0 without touching an initialized deployment", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_bootstrap_job_" });
  const ids = await mintDevIdentities(tmp, "spike.ist", 3);
  const nexusPort = freePort();
  const keeperPorts = [freePort(), freePort(), freePort()];
  const shared = {
    SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
    SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map((p) => `https://127.0.0.1:${p}`).join(","),
    SPIKE_NEXUS_SHAMIR_SHARES: "3",
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
  };
  const running = new Set<SpikeProcess>();
  const start = async (args: string[], env: Record<string, string>, ready: RegExp) => {
    const child = new SpikeProcess(args, { env: { ...shared, ...env } });
    running.add(child);
    await child.waitFor(ready);
    return child;
  };
  const stop = async (child: SpikeProcess, signal: Deno.Signal = "SIGTERM") => {
    const status = await child.stop(signal);
    running.delete(child);
    return status;
  };
  const startNexus = () =>
    start(["nexus"], {
      SPIKE_SVID_DIR: ids.dirOf("nexus"),
      SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
      SPIKE_NEXUS_DATA_DIR: join(tmp, "data"),
      SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "1s",
    }, /nexus listening/);
  const startKeeper = (i: number) =>
    start(
      ["keeper"],
      { SPIKE_SVID_DIR: ids.dirOf(`keeper-${i + 1}`), SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${keeperPorts[i]}` },
      /keeper listening/,
    );
  const job = (timeout = "60s") =>
    runSpike(["bootstrap"], {
      env: {
        ...shared,
        SPIKE_SVID_DIR: ids.dirOf("bootstrap"),
        SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED: "true",
        SPIKE_BOOTSTRAP_TIMEOUT: timeout,
      },
      timeoutMs: 90_000,
    });
  const pilot = { ...shared, SPIKE_SVID_DIR: ids.dirOf("pilot-superuser") };
  const secretReadsBack = async () => {
    const get = await runSpike(["secret", "get", "app/db", "pass"], { env: pilot });
    assert.deepEqual([get.code, get.stdout], [0, "s3cret"], get.stderr);
  };
  const keepersHoldingShards = async () =>
    (await Promise.all(keeperPorts.map((p) => getPlainStatus(p, "/ready")))).filter((s) => s === 200).length;

  try {
    let nexus = await startNexus();
    const keepers = await Promise.all([0, 1, 2].map(startKeeper));

    await t.step("first run bootstraps", async () => {
      const first = await job();
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, "bootstrap: verified\n");
      assert.match(first.stderr, /shard delivered/, "the log line the later runs must not show");
      await waitForReady(nexusPort);
      const put = await runSpike(["secret", "put", "app/db", "--from-stdin", "pass"], {
        env: pilot,
        stdin: "s3cret\n",
      });
      assert.equal(put.code, 0, put.stderr);
    });

    await t.step("a rerun against the running deployment exits 0 and changes nothing", async () => {
      const again = await job();
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, "bootstrap: already initialized, nothing to do\n");
      assert.doesNotMatch(again.stderr, /shard delivered/);
      await secretReadsBack();
    });

    await t.step("a rerun while a restarted Nexus waits for its Keepers waits too, then exits 0", async () => {
      // Two frozen Keepers: the new Nexus has data but only one shard, so no key.
      await stop(nexus, "SIGKILL");
      for (const i of [1, 2]) Deno.kill(keepers[i]!.pid, "SIGSTOP");
      nexus = await startNexus();
      await nexus.waitFor(/waiting for keeper shards/);
      const run = job();
      // Let the job see the keyless Nexus before the Keepers thaw.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(await getPlainStatus(nexusPort, "/ready"), 503);
      for (const i of [1, 2]) Deno.kill(keepers[i]!.pid, "SIGCONT");
      const waited = await run;
      assert.equal(waited.code, 0, waited.stderr);
      assert.equal(waited.stdout, "bootstrap: already initialized, nothing to do\n");
      assert.match(waited.stderr, /waiting for Nexus to load its existing root key/);
      assert.doesNotMatch(waited.stderr, /shard delivered/);
      await secretReadsBack();
    });

    await t.step("every shard lost: the job fails at its deadline, points at restore, hands nothing out", async () => {
      await stop(nexus, "SIGKILL");
      await Promise.all(keepers.map((k) => stop(k, "SIGKILL")));
      keepers.splice(0, 3, ...await Promise.all([0, 1, 2].map(startKeeper)));
      nexus = await startNexus();
      const lost = await job("4s");
      assert.equal(lost.code, 1, lost.stderr);
      assert.match(lost.stderr, /has not loaded that key before the deadline/);
      assert.match(lost.stderr, /spike operator restore/);
      assert.equal(await keepersHoldingShards(), 0, "no Keeper was handed a shard");
      assert.equal(await getPlainStatus(nexusPort, "/ready"), 503);
    });
  } finally {
    await Promise.all([...running].map((child) => stop(child, "SIGKILL")));
    await Deno.remove(tmp, { recursive: true });
  }
});
