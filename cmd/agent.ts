/**
 * `spike agent`: renders secrets to files and keeps them current (a
 * sidecar), or renders them once and exits (`--once`, an init container).
 * It authenticates with its own SPIFFE identity (SVID files or the Workload
 * API), following rotations without a restart.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { toTrustRoots } from "../lib/config/trust_roots.ts";
import type { AgentConfig } from "../lib/agent/config.ts";
import { isNexus } from "../lib/spiffe/roles.ts";
import { pilotConfig } from "./pilot_session.ts";
import { logLevel } from "./role_runner.ts";

/** How long the agent waits for its first SVID (a SPIRE Agent may start after it). */
const IDENTITY_WAIT_MS = 30_000;
/** Deadline of one call to Nexus. */
const CALL_TIMEOUT_MS = 10_000;

/** Reads and checks the configuration file; every problem is a CLI error naming the field. */
async function loadConfig(file: string): Promise<AgentConfig> {
  // The parser (and the YAML library) load when the agent runs, not with the command tree.
  const { AgentConfigError, parseAgentConfig } = await import("../lib/agent/config.ts");
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return parseAgentConfig(text, {
      source: file,
      baseDir: dirname(resolve(file)),
      readTextFile: (path) => Deno.readTextFileSync(path),
    });
  } catch (error) {
    if (error instanceof AgentConfigError) throw new CliError(error.message);
    throw error;
  }
}

/** The `agent` command. */
export const agentCommand: CommandSpec = {
  name: "agent",
  summary: "Render secrets to files and keep them current (or once, with --once)",
  details: "The configuration file (YAML or JSON) lists secrets, destinations and formats; see docs/AGENT.md.\n" +
    "Nexus: 'nexus:' in the file, else SPIKE_NEXUS_API_URL. Identity: SPIKE_SVID_DIR or the Workload API.\n" +
    "Logs are JSON lines on stderr and never hold secret values. --once exits 0 when every file was\n" +
    "rendered, 1 otherwise (and for a bad configuration).",
  positionals: { min: 0, max: 0 },
  options: {
    config: { type: "string", short: "c", description: "Configuration file (YAML or JSON)", valueName: "file" },
    once: { type: "boolean", description: "Render every file once and exit (init-container mode)" },
  },
  run: async ({ options, io }) => {
    const file = options.config;
    if (typeof file !== "string" || file === "") throw new UsageError("--config is required");
    const config = await loadConfig(file);
    const pilot = pilotConfig(io);
    const level = logLevel(io);
    const [{ createSecretAgent }, { createMtlsClient }, { NexusClient }, { selectIdentitySource }, { createLogger }] =
      await Promise.all([
        import("../lib/agent/secret_agent.ts"),
        import("../lib/spiffe/mtls_client.ts"),
        import("../lib/client/nexus_client.ts"),
        import("../lib/spiffe/source_select.ts"),
        import("../lib/log/logger.ts"),
      ]);
    const log = createLogger({ component: "agent", level });
    const identity = selectIdentitySource(pilot.identity, { log, readyTimeoutMs: IDENTITY_WAIT_MS });
    try {
      try {
        await identity.ready();
      } catch (error) {
        throw new CliError(`no SPIFFE identity: ${(error as Error).message}`);
      }
      const roots = toTrustRoots(pilot.trustRoots);
      const client = createMtlsClient({ identity, serverId: (id) => isNexus(id, roots), timeoutMs: CALL_TIMEOUT_MS });
      const nexusUrl = config.nexusUrl ?? pilot.nexusUrl;
      const agent = createSecretAgent({ config, reader: new NexusClient(nexusUrl, client), log });
      try {
        if (options.once) {
          const ok = await agent.once();
          if (!ok) io.stderr("spike agent: not every secret was rendered (see the errors above)\n");
          return ok ? 0 : 1;
        }
        log.info("agent started", { nexus: nexusUrl, entries: config.entries.length, intervalMs: config.intervalMs });
        const stopping = new AbortController();
        const stop = () => {
          stopping.abort();
          // Fails calls in flight at once instead of waiting out their timeout.
          client.close();
        };
        Deno.addSignalListener("SIGINT", stop);
        Deno.addSignalListener("SIGTERM", stop);
        try {
          await agent.run(stopping.signal);
        } finally {
          Deno.removeSignalListener("SIGINT", stop);
          Deno.removeSignalListener("SIGTERM", stop);
        }
        log.info("agent stopped");
        return 0;
      } finally {
        client.close();
      }
    } finally {
      await identity.close();
    }
  },
};
