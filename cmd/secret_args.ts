/**
 * Arguments the `spike secret` commands share: versions, check-and-set,
 * output format, and secret values from the command line, files or
 * standard input.
 *
 * @module
 */
import { MAX_VERSION } from "../lib/api/validate.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { parseDuration } from "../lib/config/parse.ts";
import type { CliIo } from "../lib/cli/io.ts";
import type { WriteOptions } from "../lib/client/nexus_client.ts";

/** `-f/--format` of commands printing structured data. */
export const FORMAT_OPTION = {
  format: {
    type: "string",
    short: "f",
    description: "Output format: human, json or yaml",
    valueName: "format",
    choices: ["human", "json", "yaml"],
  },
} as const;

/** `-v/--versions 1,2` of delete, undelete and destroy. */
export const VERSIONS_OPTION = {
  versions: { type: "string", short: "v", description: "Comma-separated versions, e.g. 1,2", valueName: "list" },
} as const;

/** `--cas N`. */
export const CAS_OPTION = {
  cas: {
    type: "string",
    description: "Write only if the current version is N (0: only if there is none); else fail, exit 1",
    valueName: "N",
  },
} as const;

/** `--ttl`, `--expires-at`, `--version-ttl` of put and patch. */
export const EXPIRY_OPTIONS = {
  ttl: {
    type: "string",
    description: "The whole secret expires this long from now (e.g. 30m, 24h, 720h); then reads answer 'not found'",
    valueName: "duration",
  },
  "expires-at": {
    type: "string",
    description: "The whole secret expires at this time (RFC 3339, e.g. 2030-01-31T00:00:00Z)",
    valueName: "time",
  },
  "version-ttl": {
    type: "string",
    description: "Only the version written expires this long from now",
    valueName: "duration",
  },
} as const;

/** The expiry flags as wire fields (checked here first, so a typo is a usage error, exit 2). */
export function parseExpiryOptions(options: Readonly<Record<string, unknown>>): {
  ttl?: string;
  expiresAt?: string;
  versionTtl?: string;
} {
  const ttl = options.ttl === undefined ? undefined : checkDuration("--ttl", options.ttl);
  const expiresAt = options["expires-at"] === undefined ? undefined : checkTime("--expires-at", options["expires-at"]);
  if (ttl !== undefined && expiresAt !== undefined) throw new UsageError("give --ttl or --expires-at, not both");
  const versionTtl = options["version-ttl"] === undefined
    ? undefined
    : checkDuration("--version-ttl", options["version-ttl"]);
  return {
    ...(ttl === undefined ? {} : { ttl }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(versionTtl === undefined ? {} : { versionTtl }),
  };
}

function checkDuration(flag: string, value: unknown): string {
  const text = String(value).trim();
  try {
    if (parseDuration(flag, text) >= 1000) return text;
  } catch { /* reported below */ }
  throw new UsageError(`${flag}: '${text}' is not a duration of at least 1s (examples: 30m, 24h, 1h30m)`);
}

function checkTime(flag: string, value: unknown): string {
  const text = String(value).trim();
  if (
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text) && !Number.isNaN(Date.parse(text))
  ) {
    return text;
  }
  throw new UsageError(`${flag}: '${text}' is not an RFC 3339 time (example: 2030-01-31T00:00:00Z)`);
}

/** The `CAS_OPTION` and `EXPIRY_OPTIONS` of put and patch as the client's write options (checked here, exit 2). */
export function parseWriteOptions(options: Readonly<Record<string, unknown>>): WriteOptions {
  const cas = parseCas(options.cas);
  return { cas, ...parseExpiryOptions(options) };
}

/** A version number as typed (digits, at most `MAX_VERSION`, the bound Nexus checks); `undefined` otherwise. */
function versionNumber(text: string): number | undefined {
  return /^\d+$/.test(text) && Number(text) <= MAX_VERSION ? Number(text) : undefined;
}

/** Parses `--cas N` (absent: no check). */
export function parseCas(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const version = versionNumber(text);
  if (version === undefined) throw new UsageError(`--cas: '${text}' is not a version number`);
  return version;
}

/** Parses `-v 1,2,3` into version numbers. */
export function parseVersions(value: unknown): number[] {
  if (value === undefined) return [];
  return String(value).split(",").map((part) => {
    const text = part.trim();
    const version = versionNumber(text);
    if (version === undefined) throw new UsageError(`'${text}' is not a version number`);
    return version;
  });
}

/** Parses `-v N` (absent: 0, the current version). */
export function parseVersion(value: unknown): number {
  const versions = parseVersions(value);
  if (versions.length > 1) throw new UsageError("give a single version");
  return versions[0] ?? 0;
}

/** `--from-file` and `--from-stdin`, for the commands that take secret values. */
export const VALUE_OPTIONS = {
  "from-file": {
    type: "string",
    multiple: true,
    description: "Read a value from a file: key=path (repeatable)",
    valueName: "key=path",
  },
  "from-stdin": {
    type: "string",
    description: "Read the value of this key from standard input (asked for without echo on a terminal)",
    valueName: "key",
  },
} as const;

/** Parses `key=value` words (the value may hold `=`); a key given twice is a usage error. */
export function parsePairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`'${pair}' is not key=value`);
    const key = pair.slice(0, at);
    if (Object.hasOwn(out, key)) throw new UsageError(`key '${key}' is given twice`);
    out[key] = pair.slice(at + 1);
  }
  return out;
}

/**
 * Collects `key=value` pairs and the `VALUE_OPTIONS` (`--from-file key=path`,
 * `--from-stdin key`); at least one unless `allowNone`.
 */
export async function collectValues(
  pairs: readonly string[],
  options: Readonly<Record<string, unknown>>,
  io: CliIo,
  allowNone = false,
): Promise<Record<string, string>> {
  const fromFile = (options["from-file"] as string[] | undefined) ?? [];
  const fromStdin = options["from-stdin"] as string | undefined;
  const values: Record<string, string> = {};
  const set = (key: string, value: string) => {
    if (key === "") throw new UsageError("a key name is empty");
    if (Object.hasOwn(values, key)) throw new UsageError(`key '${key}' is given twice`);
    values[key] = value;
  };
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at < 0) throw new UsageError(`'${pair}' is not key=value`);
    set(pair.slice(0, at), pair.slice(at + 1));
  }
  for (const spec of fromFile) {
    const at = spec.indexOf("=");
    if (at < 0) throw new UsageError(`--from-file takes key=path, got '${spec}'`);
    const file = spec.slice(at + 1);
    try {
      set(spec.slice(0, at), await Deno.readTextFile(file));
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
    }
  }
  if (fromStdin !== undefined) {
    const bytes = await io.readHiddenText(`Value of '${fromStdin}' (input is hidden; end with Ctrl-D): `);
    const text = new TextDecoder().decode(bytes);
    bytes.fill(0);
    // A value piped with `echo` (or ended with Enter before Ctrl-D) ends in one newline the user did not mean.
    set(fromStdin, text.endsWith("\n") ? text.slice(0, -1) : text);
  }
  if (!allowNone && Object.keys(values).length === 0) throw new UsageError("give at least one key=value");
  return values;
}
