/**
 * `spike nexus`: the secrets service.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { markStartup } from "../lib/log/startup.ts";
import { resolveOrFail, runUntilSignal } from "./role_runner.ts";

/** The `nexus` command. */
export const nexusCommand: CommandSpec = {
  name: "nexus",
  summary: "Run Nexus, the secrets service",
  details: "Settings come from SPIKE_NEXUS_* variables (see docs/CONFIGURATION.md).\n" +
    "Needs Deno's --v8-flags=--enable-experimental-regexp-engine (policy regexes run in linear time).\n" +
    "SIGTERM/SIGINT stop it; SIGHUP reopens the SPIKE_NEXUS_AUDIT_LOG file (after log rotation).\n" +
    "Under systemd (NOTIFY_SOCKET) it sends READY=1 once ready and watchdog pings (needs --unstable-net).",
  positionals: { min: 0, max: 0 },
  run: ({ io }) => {
    const config = resolveOrFail(() => resolveNexusConfig(io.env));
    return runUntilSignal(io, "nexus", config.identity, async (identity, log) => {
      // Loaded here, not with the command tree: other commands never need the server.
      const [{ startNexus }, { nexusReadiness }] = await Promise.all([
        import("../lib/nexus/server.ts"),
        import("../lib/nexus/readiness.ts"),
      ]);
      markStartup(log, "server modules loaded");
      const nexus = await startNexus({ config, identity, log });
      return {
        close: () => nexus.close(),
        reload: () => nexus.reopenAuditLog(),
        readiness: () => nexusReadiness(nexus.deps, nexus.port),
      };
    });
  },
};
