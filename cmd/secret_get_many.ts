/**
 * `spike secret get-many PATH…`: reads up to 100 secrets in one request,
 * each authorized on its own, and says per path what came back.
 *
 * @module
 */
import { MAX_BATCH_PATHS } from "../lib/api/validate.ts";
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import type { BatchReadResult } from "../lib/client/nexus_client.ts";
import { withNexus } from "./pilot_session.ts";
import { FORMAT_OPTION } from "./secret_args.ts";

const REASONS: Readonly<Record<string, string>> = {
  api_not_found: "not found",
  access_unauthorized: "not authorized (no policy grants read)",
  api_internal_error: "failed in Nexus (see its logs)",
};

/** The human form: each path, then its keys indented, or why it was not read. */
function human(paths: readonly string[], results: Readonly<Record<string, BatchReadResult>>): string {
  return paths.map((path) => {
    const result = results[path];
    if (result && "data" in result) {
      const lines = Object.entries(result.data).sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `  ${k}: ${v}\n`);
      return `${path}:\n${lines.join("")}`;
    }
    return `${path}: ${REASONS[result?.err ?? ""] ?? "no answer"}\n`;
  }).join("");
}

/** `spike secret get-many PATH… [-f json|yaml]`. */
export const getManyCommand: CommandSpec = {
  name: "get-many",
  summary: "Read several secrets in one request (up to 100)",
  args: "<path...>",
  details: "Each path is authorized on its own. The output says per path: its values, 'not found', or\n" +
    "'not authorized'. Exit 0 when every path was read; 3 when some were not found (and nothing else\n" +
    "failed); 1 otherwise. The values that were read are printed either way.",
  positionals: { min: 1 },
  options: FORMAT_OPTION,
  run: async ({ positionals, options, io }) => {
    const format = outputFormat(options.format);
    const paths = [...new Set(positionals)];
    if (paths.length > MAX_BATCH_PATHS) throw new UsageError(`at most ${MAX_BATCH_PATHS} paths per request`);
    const results = await withNexus(io, ({ nexus }) => nexus.getSecrets(paths));
    io.stdout(format === "human" ? human(paths, results) : await renderStructured(results, format));
    const failed = paths.filter((p) => !(results[p] && "data" in results[p]!));
    if (failed.length === 0) return 0;
    const notFound = failed.every((p) => (results[p] as { err?: string } | undefined)?.err === "api_not_found");
    throw new CliError(`${failed.length} of ${paths.length} secrets not read`, notFound ? 3 : 1);
  },
};
