/**
 * `-f env`: a secret as `KEY='value'` lines that a POSIX shell reads back
 * exactly with `set -a; . ./file; set +a`.
 *
 * Single quotes keep every byte as it is (newlines, `$`, backticks,
 * backslashes, any Unicode); a quote inside the value closes the quoted
 * part, adds an escaped quote and opens a new one.
 *
 * @module
 */
import { CliError } from "./errors.ts";

/** A name a shell accepts as a variable: a letter or `_`, then letters, digits or `_`. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `value` in single quotes for a POSIX shell. */
export function shellSingleQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Renders `data` as env lines sorted by key. Throws a `CliError` (exit 1)
 * naming the first key that is not a shell variable name, or whose value
 * holds a NUL character (no shell variable can hold one).
 */
export function renderEnvLines(data: Readonly<Record<string, string>>): string {
  const keys = Object.keys(data).sort();
  for (const key of keys) {
    if (!SHELL_NAME.test(key)) {
      throw new CliError(
        `key '${key}' is not a shell variable name (letters, digits and _; not starting with a digit), ` +
          "so it cannot be written as an env line; use -f json or -f yaml",
      );
    }
    if (data[key]!.includes("\0")) {
      throw new CliError(`the value of '${key}' holds a NUL character, which no shell variable can hold`);
    }
  }
  return keys.map((key) => `${key}=${shellSingleQuote(data[key]!)}\n`).join("");
}
