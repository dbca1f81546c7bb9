/**
 * Turns a secret's values into the bytes of its file, per the entry's
 * format. Output is deterministic (keys sorted), so an unchanged secret
 * renders to the same bytes and the file is left alone.
 *
 * @module
 */
import { stringify } from "yaml";
import { DotenvError, renderDotenv } from "../format/dotenv.ts";
import type { AgentEntry } from "./config.ts";
import { TemplateError } from "./template.ts";

/** A secret that cannot be rendered as asked (a missing key, a bad env name). Names keys, never values. */
export class RenderError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RenderError";
  }
}

/**
 * Renders `values` for `entry`.
 *
 * - `json`: an object, 2-space indented, newline at the end.
 * - `yaml`: a mapping with every value double-quoted (read the same by YAML 1.1 and 1.2 parsers).
 * - `env`: `NAME='value'` lines (see `lib/format/dotenv.ts`).
 * - `raw`: the value of `key`, byte for byte, nothing added.
 * - `template`: the entry's template filled in.
 *
 * @throws {RenderError} naming the key that is missing or cannot be a variable name.
 */
export function renderEntry(entry: AgentEntry, values: Readonly<Record<string, string>>): string {
  const sorted: Record<string, string> = {};
  for (const key of Object.keys(values).sort()) sorted[key] = values[key]!;
  try {
    switch (entry.format) {
      case "json":
        return JSON.stringify(sorted, null, 2) + "\n";
      case "yaml":
        return stringify(sorted, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN", lineWidth: 0 });
      case "env":
        return renderDotenv(sorted);
      case "raw":
        if (!Object.hasOwn(values, entry.key!)) throw new RenderError(`the secret has no key '${entry.key}'`);
        return values[entry.key!]!;
      case "template":
        return entry.template!.render(values);
    }
  } catch (error) {
    if (error instanceof DotenvError) {
      throw new RenderError(`${error.message}; format env needs shell names, use format template for other keys`);
    }
    if (error instanceof TemplateError) throw new RenderError(`template: ${error.message}`);
    throw error;
  }
}
