/**
 * Environment variable names and dotenv text, shared by `spike exec` (names
 * only), `spike agent`'s `env` format and `spike secret get -f env`.
 *
 * The dotenv text is meant to be read by a POSIX shell (`set -a; . file;
 * set +a`, or `source` in a start script): every value is single-quoted, and
 * a single quote inside a value is written as `'\''` (close, escaped quote,
 * reopen). Inside single quotes a shell expands nothing — no `$`, backtick or
 * backslash is special and newlines are kept — so any value comes back byte
 * for byte. A value holding NUL cannot be an environment value at all and is
 * refused.
 *
 * @module
 */

/** What a portable environment variable name looks like (a shell identifier). */
export const ENV_NAME_PATTERN: RegExp = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True when `name` can be an environment variable a shell can read back. */
export function isEnvName(name: string): boolean {
  return ENV_NAME_PATTERN.test(name);
}

/** A key or value that cannot be written as dotenv text. Names the key, never the value. */
export class DotenvError extends Error {
  /** The offending key. */
  readonly key: string;
  /** Creates the error for `key` with a reason. */
  constructor(key: string, reason: string) {
    super(`key '${key}' ${reason}`);
    this.name = "DotenvError";
    this.key = key;
  }
}

/**
 * Quotes `value` for a POSIX shell: `'…'`, with each `'` written as `'\''`.
 *
 * @throws {DotenvError} when the value holds NUL (`key` names it).
 */
export function quoteShellValue(value: string, key = "value"): string {
  if (value.includes("\0")) {
    throw new DotenvError(key, "has a value with a NUL character, which no environment can hold");
  }
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Renders `values` as dotenv lines `NAME='value'`, sorted by name so equal
 * input gives equal bytes, ending in a newline (empty input: empty text).
 *
 * @throws {DotenvError} for a name that is not a shell identifier or a value with NUL.
 */
export function renderDotenv(values: Readonly<Record<string, string>>): string {
  const names = Object.keys(values).sort();
  const lines = names.map((name) => {
    if (!isEnvName(name)) {
      throw new DotenvError(
        name,
        "is not a shell variable name (letters, digits and '_', not starting with a digit)",
      );
    }
    return `${name}=${quoteShellValue(values[name]!, name)}\n`;
  });
  return lines.join("");
}
