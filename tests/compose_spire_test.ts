/**
 * compose.yaml's `spire` profile without Docker: deploy/spire/server.conf,
 * agent.conf and entries.json, only their container paths and host names
 * rewritten, run with the real SPIRE v1.13.3 binaries (built as for
 * tests/spire_test.ts). The server's CA hangs under the development CA that
 * `spike dev identities` keeps, the agent attests with the `spire-agent`
 * certificate that service mints (x509pop), and the example's entry works:
 * a workload holding a SPIRE SVID reads its secret from a Nexus whose SVID
 * comes from the identity service — one trust root for both.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureSpireBinaries } from "./support/spire_binaries.ts";
import { type CommandResult, freePort, runSpike, SpikeProcess, waitForReady } from "./support/process.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function exits(result: CommandResult, code: number, what: string): CommandResult {
  assert.equal(result.code, code, `${what}: exit ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

async function run(binary: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  return { ok: out.success, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

Deno.test("spire profile: the shipped SPIRE configs attest the agent and issue the example an SVID Nexus trusts", async () => {
  const bin = await ensureSpireBinaries();
  const server = join(bin, "spire-server");
  const agent = join(bin, "spire-agent");
  const tmp = await Deno.makeTempDir({ prefix: "spike_cspire_" });
  const spirePort = freePort();
  const rewrite = (text: string) =>
    text
      .replaceAll('"/ca/', `"${tmp}/ca/`)
      .replaceAll('"/identities/', `"${tmp}/ids/`)
      .replaceAll('"/run/spire/', `"${tmp}/run/`)
      .replaceAll('"/var/lib/spire/', `"${tmp}/lib/`)
      .replace('server_address = "spire-server"', 'server_address = "127.0.0.1"')
      .replaceAll('"8081"', `"${spirePort}"`)
      .replace(
        'bind_address = "0.0.0.0"\n  bind_port = "8080"',
        `bind_address = "127.0.0.1"\n  bind_port = "${freePort()}"`,
      );
  const processes: Deno.ChildProcess[] = [];
  const spikes: SpikeProcess[] = [];
  try {
    for (const dir of ["run/server", "run/sockets", "lib/server", "lib/agent"]) {
      await Deno.mkdir(join(tmp, dir), { recursive: true });
    }
    for (const name of ["server.conf", "agent.conf"]) {
      await Deno.writeTextFile(join(tmp, name), rewrite(await Deno.readTextFile(join(ROOT, "deploy/spire", name))));
    }
    assert.ok((await run(server, ["validate", "-config", join(tmp, "server.conf")])).ok, "server.conf validates");
    assert.ok((await run(agent, ["validate", "-config", join(tmp, "agent.conf")])).ok, "agent.conf validates");

    // The identity service, with the workloads compose.yaml gives it.
    exits(
      await runSpike([
        "dev",
        "identities",
        "--dir",
        join(tmp, "ca"),
        "--out",
        join(tmp, "ids"),
        "--keepers",
        "1",
        "--workload",
        "spire-agent=spire/agent-node",
      ]),
      0,
      "identities",
    );

    const spawn = (binary: string, config: string) => {
      const child = new Deno.Command(binary, {
        args: ["run", "-config", join(tmp, config)],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      processes.push(child);
    };
    spawn(server, "server.conf");
    const serverSocket = join(tmp, "run/server/api.sock");
    await until(
      "spire-server is healthy",
      async () => (await run(server, ["healthcheck", "-socketPath", serverSocket])).ok,
    );
    // The example's entry, for this test's user instead of the container's uid 10001.
    const entries = (await Deno.readTextFile(join(ROOT, "deploy/spire/entries.json")))
      .replace('"uid:10001"', `"uid:${Deno.uid()}"`);
    await Deno.writeTextFile(join(tmp, "entries.json"), entries);
    const created = await run(server, [
      "entry",
      "create",
      "-socketPath",
      serverSocket,
      "-data",
      join(tmp, "entries.json"),
    ]);
    assert.ok(created.ok, created.text);
    assert.match(created.text, /Parent ID\s+: spiffe:\/\/spike\.ist\/spire\/agent\/x509pop\/compose-demo/);

    spawn(agent, "agent.conf");
    const agentSocket = join(tmp, "run/sockets/agent.sock");
    await until(
      "spire-agent is healthy",
      async () => (await run(agent, ["healthcheck", "-socketPath", agentSocket])).ok,
    );
    await until("the agent issues the example's SVID", async () => {
      const fetched = await run(agent, ["api", "fetch", "x509", "-socketPath", agentSocket]);
      return fetched.text.includes("spiffe://spike.ist/app/node-service");
    });

    // A Nexus on identity-service SVIDs; the workload on SPIRE's.
    const nexusPort = freePort();
    const keeperPort = freePort();
    const shared = {
      SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
      SPIKE_NEXUS_KEEPER_PEERS: `https://127.0.0.1:${keeperPort}`,
      SPIKE_NEXUS_SHAMIR_SHARES: "1",
      SPIKE_NEXUS_SHAMIR_THRESHOLD: "1",
    };
    const as = (name: string, extra: Record<string, string> = {}) => ({
      ...shared,
      SPIKE_SVID_DIR: join(tmp, "ids", name),
      ...extra,
    });
    spikes.push(
      new SpikeProcess(["keeper"], { env: as("keeper-1", { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${keeperPort}` }) }),
    );
    spikes.push(
      new SpikeProcess(["nexus"], {
        env: as("nexus", { SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`, SPIKE_NEXUS_BACKEND_STORE: "memory" }),
      }),
    );
    await Promise.all(spikes.map((child) => child.waitFor(/listening/)));
    exits(await runSpike(["bootstrap"], { env: as("bootstrap") }), 0, "bootstrap");
    await waitForReady(nexusPort);
    const superuser = (args: string[]) => runSpike(args, { env: as("pilot-superuser") });
    exits(await superuser(["secret", "put", "app/db", "user=app", "pass=from-spire"]), 0, "put");
    exits(
      await superuser([
        "policy",
        "apply",
        "--name",
        "node-service",
        "--spiffeid-pattern",
        "^spiffe://spike\\.ist/app/node-service$",
        "--path-pattern",
        "^app/db$",
        "--permissions",
        "read",
      ]),
      0,
      "policy",
    );
    const workload = exits(
      await runSpike(["secret", "get", "app/db", "pass"], {
        env: { ...shared, SPIFFE_ENDPOINT_SOCKET: `unix://${agentSocket}` },
      }),
      0,
      "the workload reads app/db with its SPIRE SVID",
    );
    assert.equal(workload.stdout.trim(), "from-spire");
  } finally {
    await Promise.all(spikes.map((child) => child.stop()));
    for (const child of processes.reverse()) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
