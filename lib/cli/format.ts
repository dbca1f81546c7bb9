/**
 * Output formatting shared by CLI commands: `human`, `json` or `yaml`, and
 * `env` for the commands that print key/value pairs a shell can load.
 *
 * @module
 */
import { UsageError } from "./errors.ts";

/** Output formats the CLI accepts with `-f/--format`. */
export type OutputFormat = "human" | "json" | "yaml";

/** Formats of commands that print key/value pairs (`secret get`): also shell `env` lines. */
export type PairsFormat = OutputFormat | "env";

/** The `--format` values of commands that print key/value pairs, for help and completion. */
export const PAIRS_FORMATS: readonly PairsFormat[] = ["human", "json", "yaml", "env"];

/** Validates a `--format` value (default `human`). */
export function outputFormat(value: unknown): OutputFormat {
  if (value === undefined) return "human";
  if (value === "human" || value === "json" || value === "yaml") return value;
  if (value === "plain") return "human";
  throw new UsageError(`unknown format '${String(value)}' (use human, json or yaml)`);
}

/** Validates a `--format` value of a command that prints key/value pairs (default `human`). */
export function pairsFormat(value: unknown): PairsFormat {
  if (value === "env") return "env";
  try {
    return outputFormat(value);
  } catch {
    throw new UsageError(`unknown format '${String(value)}' (use human, json, yaml or env)`);
  }
}

/**
 * Renders `data` as JSON or YAML text ending in a newline. The YAML library
 * is loaded on first use, so commands printing JSON or plain text never
 * pay for it.
 */
export async function renderStructured(data: unknown, format: "json" | "yaml"): Promise<string> {
  if (format === "json") return JSON.stringify(data, null, 2) + "\n";
  const { stringify } = await import("yaml");
  return stringify(data);
}
