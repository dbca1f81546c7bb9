/**
 * `spike nexus`: the secrets service.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import type { Env } from "../lib/config/spike_config.ts";
import type { Logger } from "../lib/log/logger.ts";
import { markStartup } from "../lib/log/startup.ts";
import type { RotationStep } from "../lib/nexus/key_rotation.ts";
import { resolveOrFail, runUntilSignal } from "./role_runner.ts";

/**
 * For tests that kill Nexus in the middle of a root key rotation:
 * `SPIKE_TEST_NEXUS_ROTATION_PAUSE=<step>[:<n>]` makes the rotation stop for
 * good at its n-th arrival (default 1) at `<step>` (see `RotationStep`),
 * after logging `rotation paused for a test`. Never set it in production: the
 * rotation then only finishes after a restart without it.
 */
function rotationPause(env: Env, log: Logger): ((step: RotationStep) => Promise<void>) | undefined {
  const spec = env.SPIKE_TEST_NEXUS_ROTATION_PAUSE;
  if (!spec) return undefined;
  const [step, times] = spec.split(":");
  const at = Math.max(1, Number(times ?? 1) || 1);
  let seen = 0;
  return async (reached) => {
    if (reached !== step || ++seen < at) return;
    log.warn("rotation paused for a test", { step: reached, arrival: seen });
    await new Promise<never>(() => {});
  };
}

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
      const at = rotationPause(io.env, log);
      const nexus = await startNexus({ config, identity, log, ...(at ? { rotation: { at } } : {}) });
      return {
        close: () => nexus.close(),
        reload: () => nexus.reopenAuditLog(),
        readiness: () => nexusReadiness(nexus.deps, nexus.port),
      };
    });
  },
};
