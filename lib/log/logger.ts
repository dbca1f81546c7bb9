/**
 * Structured logging: one JSON object per line on stderr. Callers pass
 * field values they know to be safe; no secret value, key or shard is ever
 * handed to a logger.
 *
 * @module
 */
import { writeSync } from "node:fs";

/** Log severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Loose structured fields attached to a log line. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** A structured logger. */
export interface Logger {
  /** Verbose diagnostics, off unless the level allows. */
  debug(message: string, fields?: LogFields): void;
  /** Normal operation. */
  info(message: string, fields?: LogFields): void;
  /** Something to look at, service continues. */
  warn(message: string, fields?: LogFields): void;
  /** A failure. */
  error(message: string, fields?: LogFields): void;
}

const ORDER: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * A logger writing JSON lines through `write` (stderr by default) with a
 * `component` field, dropping lines below `level`.
 */
export function createLogger(options: {
  component: string;
  level?: LogLevel;
  clock?: () => Date;
  write?: (line: string) => void;
}): Logger {
  const { component, level = "info", clock = () => new Date() } = options;
  // Synchronous, so a line logged just before exit is not lost; `node:fs` so the SDK's graph runs on Node too.
  const write = options.write ?? ((line: string) => writeSync(2, line));
  const emit = (at: LogLevel, message: string, fields?: LogFields) => {
    if (ORDER[at] < ORDER[level]) return;
    write(JSON.stringify({ time: clock().toISOString(), level: at, component, message, ...fields }) + "\n");
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
