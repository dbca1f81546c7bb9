/**
 * Start-up phase marks: one debug line per phase with the milliseconds
 * since the runtime started (`performance.now()`), so `SPIKE_LOG_LEVEL=debug`
 * shows where a start spends its time (module loading, identity, store,
 * listening, the root key). `bench/startup_bench.ts` reads them.
 *
 * @module
 */
import type { Logger } from "./logger.ts";

/** The message of every start-up mark, for readers of the log. */
export const STARTUP_MESSAGE = "startup";

/** Logs that start-up reached `phase` (debug level; free when debug is off). */
export function markStartup(log: Logger, phase: string): void {
  log.debug(STARTUP_MESSAGE, { phase, ms: Math.round(performance.now() * 10) / 10 });
}
