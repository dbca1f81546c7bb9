/**
 * `spike keeper`: holds one shard of the root key, in memory only.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { resolveKeeperConfig } from "../lib/config/spike_config.ts";
import { markStartup } from "../lib/log/startup.ts";
import { resolveOrFail, runUntilSignal } from "./role_runner.ts";

/** The `keeper` command. */
export const keeperCommand: CommandSpec = {
  name: "keeper",
  summary: "Run a Keeper (holds one root key shard in memory)",
  details: "Listens on SPIKE_KEEPER_TLS_PORT (default :8443).\n" +
    "Under systemd (NOTIFY_SOCKET) it sends READY=1 once listening and watchdog pings (needs --unstable-net).",
  positionals: { min: 0, max: 0 },
  run: ({ io }) => {
    const config = resolveOrFail(() => resolveKeeperConfig(io.env));
    // The server is loaded here, not with the command tree: other commands never need it.
    return runUntilSignal(io, "keeper", config.identity, async (identity, log) => {
      const [{ startKeeper }, { keeperReadiness }] = await Promise.all([
        import("../lib/keeper/server.ts"),
        import("../lib/keeper/readiness.ts"),
      ]);
      markStartup(log, "server modules loaded");
      const keeper = await startKeeper({ config, identity, log });
      return { close: () => keeper.close(), readiness: () => keeperReadiness(keeper.shard, keeper.port) };
    });
  },
};
