/**
 * `spike secret ...`: the secret commands of the operator CLI.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError } from "../lib/cli/errors.ts";
import { DotenvError, renderDotenv } from "../lib/format/dotenv.ts";
import { PAIRS_FORMATS, pairsFormat, renderStructured } from "../lib/cli/format.ts";
import { withNexus } from "./pilot_session.ts";
import {
  CAS_OPTION,
  collectValues,
  EXPIRY_OPTIONS,
  parseVersion,
  parseVersions,
  parseWriteOptions,
  VALUE_OPTIONS,
  VERSIONS_OPTION,
} from "./secret_args.ts";
import { moveCommand, patchCommand } from "./secret_write.ts";
import { destroyCommand } from "./secret_destroy.ts";
import { metadataCommand } from "./secret_metadata.ts";
import { listCommand } from "./secret_list.ts";
import { getManyCommand } from "./secret_get_many.ts";

export { parseVersions };

/** The `secret` command group. */
export const secretCommand: CommandSpec = {
  name: "secret",
  summary: "Read and write secrets",
  subcommands: [
    {
      name: "put",
      summary: "Write a new version of a secret",
      args: "<path> [key=value...]",
      details:
        "Values given as key=value end up in your shell history; prefer --from-file or --from-stdin for real secrets.",
      positionals: { min: 1 },
      options: { ...VALUE_OPTIONS, ...CAS_OPTION, ...EXPIRY_OPTIONS },
      run: async ({ positionals, options, io }) => {
        const [path, ...pairs] = positionals;
        const writeOptions = parseWriteOptions(options);
        const values = await collectValues(pairs, options, io);
        await withNexus(io, ({ nexus }) => nexus.putSecret(path!, values, writeOptions));
        io.stderr(`OK: secret ${path} written\n`);
        return 0;
      },
    },
    patchCommand,
    {
      name: "get",
      summary: "Read a secret (or one key of it)",
      args: "<path> [key]",
      details: "With a key, prints the value alone: its exact bytes when standard output is a file or a pipe\n" +
        "(so '> cert.pem' keeps them), with a newline added on a terminal.\n" +
        "-f env prints KEY='value' lines a shell loads with: set -a; . ./file; set +a",
      positionals: { min: 1, max: 2 },
      options: {
        version: { type: "string", short: "v", description: "Version to read (default: current)", valueName: "N" },
        format: {
          type: "string",
          short: "f",
          description: "Output format: human, json, yaml or env",
          valueName: "format",
          choices: PAIRS_FORMATS,
        },
      },
      run: async ({ positionals, options, io }) => {
        const [path, key] = positionals;
        const format = pairsFormat(options.format);
        const version = parseVersion(options.version);
        const data = await withNexus(io, ({ nexus }) => nexus.getSecret(path!, version));
        if (key !== undefined) {
          if (!Object.hasOwn(data, key)) throw new CliError(`key '${key}' is not in secret ${path}`, 3);
          const value = data[key]!;
          if (format === "human") io.stdout(io.stdoutIsTerminal() ? `${value}\n` : value);
          else if (format === "env") io.stdout(envLines({ [key]: value }));
          else io.stdout(await renderStructured({ [key]: value }, format));
          return 0;
        }
        if (format === "env") io.stdout(envLines(data));
        else if (format !== "human") io.stdout(await renderStructured(data, format));
        else for (const [k, v] of Object.entries(data).sort(([a], [b]) => a < b ? -1 : 1)) io.stdout(`${k}: ${v}\n`);
        return 0;
      },
    },
    getManyCommand,
    {
      name: "delete",
      summary: "Soft-delete versions of a secret (default: the current one)",
      args: "<path>",
      positionals: { min: 1, max: 1 },
      options: VERSIONS_OPTION,
      run: async ({ positionals, options, io }) => {
        const versions = parseVersions(options.versions);
        await withNexus(io, ({ nexus }) => nexus.deleteSecret(positionals[0]!, versions));
        io.stderr(`OK: secret ${positionals[0]} deleted\n`);
        return 0;
      },
    },
    {
      name: "undelete",
      summary: "Restore soft-deleted versions (-v; default: the newest, when every version is deleted)",
      details: "Without -v, Nexus restores the newest version of a path whose versions are all deleted. " +
        "Version 0 means the current version, which is never deleted. When nothing named is deleted, " +
        "nothing changes and the command fails with 'not found' (exit 3).",
      args: "<path>",
      positionals: { min: 1, max: 1 },
      options: VERSIONS_OPTION,
      run: async ({ positionals, options, io }) => {
        const versions = parseVersions(options.versions);
        await withNexus(io, ({ nexus }) => nexus.undeleteSecret(positionals[0]!, versions));
        io.stderr(`OK: secret ${positionals[0]} undeleted\n`);
        return 0;
      },
    },
    destroyCommand,
    listCommand,
    moveCommand,
    metadataCommand,
  ],
};

/** `-f env` text; a key or value no shell can take back is a CLI error (exit 1) that points to the other formats. */
function envLines(data: Readonly<Record<string, string>>): string {
  try {
    return renderDotenv(data);
  } catch (error) {
    if (error instanceof DotenvError) throw new CliError(`${error.message}; use -f json or -f yaml`);
    throw error;
  }
}
