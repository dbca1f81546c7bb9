/**
 * `spike status` against real processes (Nexus on SQLite, two Keepers, real
 * mTLS, identities from `spike dev identity`): a Nexus without its key is
 * not ready and says why; after bootstrap all is well (exit 0), also with
 * Nexus's own SVID (the container health check) and for a Keeper alone;
 * servers with the wrong role or from another trust bundle are not believed;
 * a killed Keeper turns the exit code to 1 and its line says unreachable.
 * `--live` (GET /health only) passes while Nexus waits for its key.
 * The Keeper's /metrics is checked on the same processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getPlain } from "../lib/dev/health.ts";
import type { StatusReport } from "../lib/ops/status.ts";
import { SPIKE_VERSION } from "../lib/version.ts";
import { type CommandResult, eventually, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const TD = "spiffe://spike.ist";
/** The permissions of the installed `spike` (`deno task spike`, the compiled binary). */
const SPIKE_PERMISSIONS = [
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
  "--v8-flags=--enable-experimental-regexp-engine",
  "--quiet",
];
const VERSION = SPIKE_VERSION.replaceAll(".", "\\.");

function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** The line of `name` in the human output. */
function lineOf(output: string, name: string): string {
  const line = output.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no line for ${name} in:\n${output}`);
  return line;
}

Deno.test("spike status: not ready and why, all well after bootstrap, wrong servers refused, a dead Keeper", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_status_" });
  const ca = join(tmp, "ca");
  const nexusPort = freePort();
  const keeperPorts = [freePort(), freePort()];
  const nexusUrl = `https://127.0.0.1:${nexusPort}`;
  const keeperUrls = keeperPorts.map((p) => `https://127.0.0.1:${p}`);
  const shared = {
    SPIKE_NEXUS_API_URL: nexusUrl,
    SPIKE_NEXUS_KEEPER_PEERS: keeperUrls.join(","),
    SPIKE_NEXUS_SHAMIR_SHARES: "2",
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
  };
  const id = (name: string) => join(tmp, "id", name);
  const mint = async (name: string, spiffeId: string, caDir = ca) =>
    exits(await runSpike(["dev", "identity", spiffeId, "--dir", caDir, "--out", id(name)]), 0, `mint ${name}`);
  const as = (name: string, extra: Record<string, string> = {}) => ({ ...shared, SPIKE_SVID_DIR: id(name), ...extra });
  // With the permissions of the installed `spike`: the command needs no more.
  const status = (args: string[], env: Record<string, string>) =>
    runSpike(["status", ...args], { env, denoFlags: SPIKE_PERMISSIONS });
  const json = (result: CommandResult) => JSON.parse(result.stdout) as StatusReport;

  const running = new Set<SpikeProcess>();
  const start = async (args: string[], env: Record<string, string>, ready: RegExp) => {
    const child = new SpikeProcess(args, { env });
    running.add(child);
    await child.waitFor(ready);
    return child;
  };
  try {
    await mint("nexus", `${TD}/spike/nexus`);
    await Promise.all([
      mint("keeper", `${TD}/spike/keeper`),
      mint("bootstrap", `${TD}/spike/bootstrap`),
      mint("superuser", `${TD}/spike/pilot/role/superuser`),
      mint("stranger", `${TD}/spike/pilot/role/superuser`, join(tmp, "other-ca")),
    ]);
    const keepers = await Promise.all(
      keeperPorts.map((port) =>
        start(["keeper"], as("keeper", { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` }), /keeper listening/)
      ),
    );
    await start(
      ["nexus"],
      as("nexus", {
        SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
        SPIKE_NEXUS_BACKEND_STORE: "sqlite",
        SPIKE_NEXUS_DATA_DIR: join(tmp, "data"),
        SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "1s",
      }),
      /nexus listening/,
    );

    await t.step("before bootstrap: Nexus is not ready (root key missing), Keepers hold no shard; exit 1", async () => {
      // Let one recovery round finish so Nexus can say how many shards it found.
      await eventually(async () => {
        const body = JSON.parse((await getPlain(nexusPort, "/ready")).body);
        return body.keepers?.shardsFound === 0;
      }, "Nexus finished a recovery round");
      const human = exits(await status([], as("superuser")), 1, "status before bootstrap");
      assert.match(lineOf(human.stdout, "nexus"), /not ready\s+root key missing, store ok, keeper shards found 0 of 2/);
      assert.match(lineOf(human.stdout, "nexus"), new RegExp(`version ${VERSION}$`));
      for (const name of ["keeper-1", "keeper-2"]) {
        assert.match(lineOf(human.stdout, name), /not ready\s+no shard held yet/);
      }
      // Liveness is another matter: every process is up, so the health checks of compose pass.
      const live = exits(await status(["--live"], as("nexus")), 0, "status --live before bootstrap");
      assert.match(lineOf(live.stdout, "nexus"), /\slive$/);
      assert.match(lineOf(live.stdout, "keeper-2"), /\slive$/);
      exits(await status(["--live", "--nexus-only", "--nexus", nexusUrl], as("nexus")), 0, "Nexus's own liveness");
      exits(await status(["--nexus-only"], as("nexus")), 1, "Nexus alone is not ready yet");
      const report = json(exits(await status(["-f", "json"], as("superuser")), 1, "status -f json"));
      assert.equal(report.ok, false);
      assert.deepEqual(
        [report.nexus?.reachable, report.nexus?.ready, report.nexus?.rootKey, report.nexus?.store],
        [true, false, "missing", "ok"],
      );
      assert.equal(report.nexus?.reason, "root key not loaded");
      assert.deepEqual(report.keepers.map((k) => [k.name, k.url, k.reachable, k.shardHeld]), [
        ["keeper-1", keeperUrls[0], true, false],
        ["keeper-2", keeperUrls[1], true, false],
      ]);
    });

    await t.step("after bootstrap: every line ready, exit 0 — also with Nexus's own SVID", async () => {
      exits(await runSpike(["bootstrap"], { env: as("bootstrap") }), 0, "bootstrap");
      await waitForReady(nexusPort);
      await eventually(async () => {
        const body = JSON.parse((await getPlain(nexusPort, "/ready")).body);
        return body.keepers?.lastPush?.accepted === 2;
      }, "Nexus pushed both shards");
      const human = exits(await status([], as("superuser")), 0, "status after bootstrap");
      assert.match(
        lineOf(human.stdout, "nexus"),
        /\sready\s+root key loaded, store ok, shards last pushed at \S+ \(2\/2/,
      );
      assert.match(lineOf(human.stdout, "keeper-1"), new RegExp(`${keeperUrls[0]}\\s+ready\\s+shard held, version`));
      assert.match(lineOf(human.stdout, "keeper-2"), /\sready\s+shard held/);
      assert.match(lineOf(human.stdout, "cli"), new RegExp(`^cli\\s+version ${VERSION}$`));
      const report = json(exits(await status(["-f", "json"], as("nexus")), 0, "status as Nexus itself"));
      assert.equal(report.ok, true);
      assert.equal(report.nexus?.version, SPIKE_VERSION);
      assert.equal(report.cli.version, SPIKE_VERSION);
      assert.deepEqual(report.keepers.map((k) => k.shardHeld), [true, true]);
      // A Keeper's own health check: itself only, with its own SVID.
      const own = exits(
        await status(["--keepers-only", "--keeper", keeperUrls[1]!], as("keeper")),
        0,
        "keeper checks itself",
      );
      assert.doesNotMatch(own.stdout, /^nexus /m);
      assert.match(lineOf(own.stdout, "keeper-1"), new RegExp(`${keeperUrls[1]}\\s+ready`));
    });

    await t.step("the Keeper's /metrics shows the shard and the pushes", async () => {
      const { status: code, body } = await getPlain(keeperPorts[0]!, "/metrics");
      assert.equal(code, 200);
      assert.match(body, /^spike_keeper_shard_held 1$/m);
      const received = Number(/^spike_keeper_last_shard_received_timestamp_seconds (\S+)$/m.exec(body)?.[1]);
      assert.ok(received > Date.now() / 1000 - 600, body);
      assert.match(body, /^spike_keeper_requests_total\{path="\/v1\/store\/contribute",code="200"\} [1-9]/m);
      assert.match(body, /^spike_keeper_requests_total\{path="\/ready",code="200"\} [1-9]/m);
    });

    await t.step("servers are believed only with the right role and trust bundle; --insecure skips that", async () => {
      // Nexus answering where a Keeper should be is not a Keeper.
      const wrongRole = exits(await status(["--keeper", nexusUrl], as("superuser")), 1, "Nexus posing as Keeper");
      assert.match(
        lineOf(wrongRole.stdout, "keeper-1"),
        /unreachable\s+server SPIFFE ID spiffe:\/\/spike\.ist\/spike\/nexus is not allowed/,
      );
      // An identity from another CA cannot vouch for these servers.
      const stranger = exits(await status([], as("stranger")), 1, "status with a foreign trust bundle");
      assert.match(lineOf(stranger.stdout, "nexus"), /unreachable\s+server at \S+ has an invalid SVID/);
      // No identity at all: a clear refusal, unless verification is waived.
      const none = { ...shared, SPIFFE_ENDPOINT_SOCKET: `unix://${join(tmp, "no-agent.sock")}` };
      const refused = exits(await status([], none), 1, "status without identity");
      assert.equal(refused.stdout, "");
      assert.match(refused.stderr, /no SPIFFE identity.*--insecure/);
      const insecure = exits(await status(["--insecure", "-f", "json"], none), 0, "status --insecure");
      assert.equal(json(insecure).ok, true);
    });

    await t.step("bad flags are usage errors (exit 2)", async () => {
      for (
        const args of [
          ["-f", "xml"],
          ["--nexus", "http://127.0.0.1:1"],
          ["--timeout", "soon"],
          ["--keeper", "x"],
          ["extra"],
          ["--nexus-only", "--keepers-only"],
        ]
      ) {
        const result = exits(await status(args, as("superuser")), 2, `status ${args.join(" ")}`);
        assert.equal(result.stdout, "");
      }
    });

    await t.step("a Keeper killed: exit 1, its line says unreachable, the others stay ready", async () => {
      await keepers[1]!.stop("SIGKILL");
      running.delete(keepers[1]!);
      const human = exits(await status([], as("superuser")), 1, "status with a dead Keeper");
      assert.match(lineOf(human.stdout, "keeper-2"), /unreachable\s+connection refused to https:\/\/127\.0\.0\.1/);
      assert.match(lineOf(human.stdout, "keeper-1"), /\sready\s+shard held/);
      assert.match(lineOf(human.stdout, "nexus"), /\sready\s+root key loaded/);
      const report = json(exits(await status(["-f", "json"], as("superuser")), 1, "status -f json, dead Keeper"));
      assert.deepEqual([report.ok, report.nexus?.ready, report.keepers[1]?.reachable], [false, true, false]);
      const live = exits(await status(["--live", "-f", "json"], as("superuser")), 1, "status --live, dead Keeper");
      assert.deepEqual(
        JSON.parse(live.stdout).components.map((c: { name: string; live: boolean }) => [c.name, c.live]),
        [["nexus", true], ["keeper-1", true], ["keeper-2", false]],
      );
      exits(await status(["--live", "--nexus-only"], as("nexus")), 0, "Nexus stays live without a Keeper");
    });
  } finally {
    await Promise.all([...running].map((child) => child.stop()));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
