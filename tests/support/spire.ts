/**
 * A real SPIRE deployment for tests: `spire-server` (SQLite datastore,
 * in-memory keys, join-token node attestation) and one `spire-agent` joined
 * to it, with the Unix workload attestor, both on loopback and Unix sockets
 * in a temp directory.
 *
 * Every test process runs as root, so workloads are told apart by their
 * primary group: `register(id, gid)` makes an entry with the selector
 * `unix:gid:<gid>`, and a child started with that gid (Deno.Command's `gid`
 * option; the uid stays root) is issued that identity.
 *
 * @module
 */
import { join } from "node:path";
import { freePort } from "./ports.ts";

/** One registration entry. */
export interface SpireEntry {
  /** The SPIFFE ID to issue. */
  readonly spiffeId: string;
  /** The primary group of the processes that get it. */
  readonly gid: number;
  /** X.509-SVID lifetime in seconds (the agent renews at about half of it). */
  readonly x509TtlSeconds?: number;
}

/** A running SPIRE server and agent. */
export interface SpireStack {
  /** `unix://…` address of the agent's Workload API, for `SPIFFE_ENDPOINT_SOCKET`. */
  readonly endpoint: string;
  /** The trust domain. */
  readonly trustDomain: string;
  /**
   * Registers each `spiffeId` for processes whose primary group is `gid`,
   * and waits until the agent hands every one out (the agent learns new
   * entries on its next sync, a few seconds later).
   */
  register(entries: readonly SpireEntry[]): Promise<void>;
  /** Stops the agent and the server and removes their files. */
  stop(): Promise<void>;
}

/** Runs a SPIRE CLI command to completion; throws with its output on failure. */
async function cli(binary: string, args: string[], gid?: number): Promise<string> {
  const out = await new Deno.Command(binary, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(gid === undefined ? {} : { gid }),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${binary.split("/").pop()} ${args[0]} ${args[1] ?? ""} failed: ${text.trim()}`);
  return text;
}

/** Repeats `attempt` until it resolves, for up to `timeoutMs`; rethrows the last failure. */
async function retry<T>(attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** A long-running SPIRE process whose output is kept for error messages. */
function spawn(binary: string, args: string[]): { child: Deno.ChildProcess; output(): string } {
  const child = new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  for (const stream of [child.stdout, child.stderr]) {
    (async () => {
      for await (const chunk of stream) output = (output + decoder.decode(chunk, { stream: true })).slice(-8000);
    })().catch(() => {});
  }
  return { child, output: () => output };
}

/** Starts a SPIRE server and an agent joined to it; resolves once both are healthy. */
export async function startSpire(binDir: string, trustDomain = "spike.ist"): Promise<SpireStack> {
  const server = join(binDir, "spire-server");
  const agent = join(binDir, "spire-agent");
  const dir = await Deno.makeTempDir({ prefix: "spike_spire_" });
  const serverSocket = join(dir, "server.sock");
  const agentSocket = join(dir, "agent.sock");
  const port = freePort();
  const agentId = `spiffe://${trustDomain}/spike-test/agent`;
  const running: Array<ReturnType<typeof spawn>> = [];

  const stop = async () => {
    for (const { child } of running.reverse()) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    await Deno.writeTextFile(
      join(dir, "server.conf"),
      `server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = "${serverSocket}"
  trust_domain = "${trustDomain}"
  data_dir = "${join(dir, "server-data")}"
  log_level = "WARN"
  ca_ttl = "24h"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dir, "datastore.sqlite3")}"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
`,
    );
    const serverProcess = spawn(server, ["run", "-config", join(dir, "server.conf")]);
    running.push(serverProcess);
    await retry(() => cli(server, ["healthcheck", "-socketPath", serverSocket]), 30_000).catch((error) => {
      throw new Error(`spire-server did not become healthy: ${error.message}\n${serverProcess.output()}`);
    });

    const tokenOutput = await cli(server, ["token", "generate", "-socketPath", serverSocket, "-spiffeID", agentId]);
    const token = /Token:\s*(\S+)/.exec(tokenOutput)?.[1];
    if (!token) throw new Error(`no join token in: ${tokenOutput}`);

    await Deno.writeTextFile(
      join(dir, "agent.conf"),
      `agent {
  data_dir = "${join(dir, "agent-data")}"
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "${port}"
  socket_path = "${agentSocket}"
  trust_domain = "${trustDomain}"
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`,
    );
    const agentProcess = spawn(agent, ["run", "-config", join(dir, "agent.conf"), "-joinToken", token]);
    running.push(agentProcess);
    await retry(() => cli(agent, ["healthcheck", "-socketPath", agentSocket]), 30_000).catch((error) => {
      throw new Error(`spire-agent did not become healthy: ${error.message}\n${agentProcess.output()}`);
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    endpoint: `unix://${agentSocket}`,
    trustDomain,
    async register(entries) {
      for (const { spiffeId, gid, x509TtlSeconds } of entries) {
        await cli(server, [
          "entry",
          "create",
          "-socketPath",
          serverSocket,
          "-parentID",
          agentId,
          "-spiffeID",
          spiffeId,
          "-selector",
          `unix:gid:${gid}`,
          ...(x509TtlSeconds ? ["-x509SVIDTTL", String(x509TtlSeconds)] : []),
        ]);
      }
      // Ask as each workload until the agent answers with its identity.
      await Promise.all(entries.map(({ spiffeId, gid }) =>
        retry(async () => {
          const fetched = await cli(agent, ["api", "fetch", "x509", "-socketPath", agentSocket], gid);
          if (!fetched.includes(spiffeId)) throw new Error(`agent does not issue ${spiffeId} yet: ${fetched}`);
        }, 60_000)
      ));
    },
    stop,
  };
}
