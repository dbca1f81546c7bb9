/**
 * Shared wiring for the long-running roles (`nexus`, `keeper`): resolve the
 * config, open the identity source, start, then wait for SIGINT/SIGTERM and
 * shut down cleanly. Under systemd (`NOTIFY_SOCKET` set) it also reports
 * readiness, status and watchdog pings to the service manager.
 *
 * @module
 */
import { CliError } from "../lib/cli/errors.ts";
import type { CliIo } from "../lib/cli/io.ts";
import { ConfigError } from "../lib/config/parse.ts";
import type { IdentityConfig } from "../lib/config/spike_config.ts";
import type { Logger, LogLevel } from "../lib/log/logger.ts";
import type { IdentitySource } from "../lib/spiffe/identity.ts";
import type { ManagedService, Readiness } from "../lib/systemd/service_notifier.ts";

/** Resolves a config, turning `ConfigError` into a CLI error (exit 1). */
export function resolveOrFail<T>(resolve: () => T): T {
  try {
    return resolve();
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration: ${error.message}`);
    throw error;
  }
}

/** The log level from `SPIKE_LOG_LEVEL` (default info). */
export function logLevel(io: CliIo): LogLevel {
  const level = (io.env.SPIKE_LOG_LEVEL ?? "info").toLowerCase();
  if (level === "debug" || level === "info" || level === "warn" || level === "error") return level;
  throw new CliError(`configuration: SPIKE_LOG_LEVEL: '${level}' is not one of debug, info, warn, error`);
}

/** A started server role: how to stop it, and what SIGHUP does (reopen its files), if anything. */
export interface RunningRole {
  /** Stops the role. */
  close(): Promise<void>;
  /** Called on SIGHUP. */
  reload?(): void;
  /** What the service manager is told (default: ready as soon as started). */
  readiness?(): Promise<Readiness>;
}

/**
 * Runs a server role until a termination signal, then closes it; SIGHUP
 * calls the role's `reload`. Resolves with the exit code.
 */
export async function runUntilSignal(
  io: CliIo,
  component: string,
  identityConfig: IdentityConfig,
  start: (identity: IdentitySource, log: Logger) => Promise<RunningRole>,
): Promise<number> {
  const level = logLevel(io);
  // Loaded here, not with the command tree that imports this module (the
  // logger's node:fs alone costs `spike --help` ~20 ms of CPU).
  const [{ createLogger }, { markStartup }, { selectIdentitySource }, { startManagedService }] = await Promise.all([
    import("../lib/log/logger.ts"),
    import("../lib/log/startup.ts"),
    import("../lib/spiffe/source_select.ts"),
    import("../lib/systemd/service_notifier.ts"),
  ]);
  const log = createLogger({ component, level });
  markStartup(log, "command loaded");
  const identity = selectIdentitySource(identityConfig, { log });
  let running: RunningRole;
  try {
    running = await start(identity, log);
  } catch (error) {
    await identity.close();
    const message = (error as Error).message ?? String(error);
    if ((error as { code?: string }).code === "EADDRINUSE" || /address already in use/i.test(message)) {
      throw new CliError(`cannot listen: the port is already in use (${message})`);
    }
    throw new CliError(message);
  }
  let managed: ManagedService | undefined;
  try {
    managed = await startManagedService({
      env: io.env,
      pid: Deno.pid,
      readiness: running.readiness ?? (() => Promise.resolve({ ready: true, status: `${component} running` })),
      log,
    });
  } catch (error) {
    await running.close();
    await identity.close();
    throw new CliError((error as Error).message);
  }
  const reload = () => running.reload?.();
  if (running.reload) Deno.addSignalListener("SIGHUP", reload);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  if (running.reload) Deno.removeSignalListener("SIGHUP", reload);
  log.info("shutting down");
  await managed?.stopping();
  await running.close();
  await identity.close();
  await managed?.close();
  return 0;
}
