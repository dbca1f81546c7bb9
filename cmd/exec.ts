/**
 * `spike exec`: reads secrets with the caller's SPIFFE identity and runs a
 * command with them as environment variables. Everything that can fail does
 * so before the command starts; afterwards spike only passes signals on and
 * ends with the command's exit code. Values are never printed.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { ChildStartError, runChild } from "../lib/exec/child_runner.ts";
import {
  checkPrefix,
  EnvMappingError,
  MappingSpecError,
  mapSecretsToEnv,
  type NameMapping,
  parseMapSpec,
  parsePathSpec,
  type ReadSecret,
  type SecretSource,
} from "../lib/exec/env_mapping.ts";
import { DEFAULT_RETRY, withRetries } from "../lib/sdk/retry.ts";
import { withNexus } from "./pilot_session.ts";

/** Turns a bad flag value into a usage error (exit 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof MappingSpecError) throw new UsageError(error.message);
    throw error;
  }
}

function strings(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** Reads one secret; a failure names the path (exit 3 not found, 1 otherwise). */
async function readSecret(nexus: NexusClient, source: SecretSource): Promise<ReadSecret> {
  try {
    const values = await withRetries(() => nexus.getSecret(source.path), true, DEFAULT_RETRY);
    return { ...source, values };
  } catch (error) {
    if (error instanceof ApiCallError) {
      throw new CliError(`secret ${source.path}: ${error.message}`, error.status === 404 ? 3 : 1);
    }
    throw error;
  }
}

/** The `exec` command. */
export const execCommand: CommandSpec = {
  name: "exec",
  summary: "Run a command with secrets as environment variables",
  args: "-- <command> [args...]",
  details: "Each key of each --path secret becomes a variable (a secret's value wins over an inherited variable).\n" +
    "Names must be shell identifiers: use --uppercase, a prefix (--prefix, or --path PATH=PREFIX_ per path)\n" +
    "and --map to get there; two keys giving the same name is an error. Signals (INT, TERM, HUP, QUIT, USR1,\n" +
    "USR2, WINCH) are passed on; spike exits with the command's code (128+n when signal n ended it).\n" +
    "Exit codes before the command starts: 3 a secret is not found, 2 bad arguments, 1 anything else\n" +
    "(not authorized, a key that is no valid variable name, a name collision); 127/126 the command cannot start.",
  positionals: { min: 1 },
  options: {
    path: {
      type: "string",
      multiple: true,
      description: "Secret to read; PATH=PREFIX_ gives its variables a prefix (repeatable)",
      valueName: "path[=prefix]",
    },
    prefix: { type: "string", description: "Prefix for every path without its own", valueName: "prefix" },
    uppercase: { type: "boolean", description: "Upper-case key names (DB_PASS from db_pass)" },
    map: {
      type: "string",
      multiple: true,
      description: "Exact variable name for a key: KEY=NAME or PATH:KEY=NAME (repeatable)",
      valueName: "[path:]key=name",
    },
    "no-inherit": {
      type: "boolean",
      description: "Give the command only the secrets, not spike's environment (not even PATH)",
    },
  },
  run: async ({ positionals, options, io }) => {
    const sources = strings(options.path).map((spec) => usage(() => parsePathSpec(spec)));
    if (sources.length === 0) throw new UsageError("give at least one --path");
    const seen = new Set<string>();
    for (const { path } of sources) {
      if (seen.has(path)) throw new UsageError(`--path ${path} is given twice`);
      seen.add(path);
    }
    const prefix = options.prefix as string | undefined;
    if (prefix !== undefined) usage(() => checkPrefix(prefix));
    const maps: NameMapping[] = strings(options.map).map((spec) => usage(() => parseMapSpec(spec)));
    for (const map of maps) {
      if (map.path !== undefined && !seen.has(map.path)) {
        throw new UsageError(`--map ${map.path}:${map.key}=${map.name}: ${map.path} is not one of the --path secrets`);
      }
    }
    const [command, ...args] = positionals;

    const secrets = await withNexus(io, ({ nexus }) => Promise.all(sources.map((s) => readSecret(nexus, s))));
    let env: Record<string, string>;
    try {
      env = mapSecretsToEnv(secrets, { prefix, uppercase: options.uppercase === true, maps });
    } catch (error) {
      if (error instanceof EnvMappingError) throw new CliError(error.message);
      throw error;
    }
    try {
      return await runChild({ command: command!, args, env, clearEnv: options["no-inherit"] === true });
    } catch (error) {
      if (error instanceof ChildStartError) throw new CliError(error.message, error.exitCode);
      throw error;
    }
  },
};
