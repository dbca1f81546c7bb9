/**
 * Output formatting shared by CLI commands: `human`, `json` or `yaml`.
 *
 * @module
 */
import { stringify } from "yaml";
import { UsageError } from "./errors.ts";

/** Output formats the CLI accepts with `-f/--format`. */
export type OutputFormat = "human" | "json" | "yaml";

/** Validates a `--format` value (default `human`). */
export function outputFormat(value: unknown): OutputFormat {
  if (value === undefined) return "human";
  if (value === "human" || value === "json" || value === "yaml") return value;
  if (value === "plain") return "human";
  throw new UsageError(`unknown format '${String(value)}' (use human, json or yaml)`);
}

/** Renders `data` as JSON or YAML text ending in a newline. */
export function renderStructured(data: unknown, format: "json" | "yaml"): string {
  return format === "json" ? JSON.stringify(data, null, 2) + "\n" : stringify(data);
}
