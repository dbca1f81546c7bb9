/**
 * `spike secret destroy`: drops versions' sealed values for good (unlike
 * `delete`, which can be undone).
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { confirm } from "../lib/cli/confirm.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { withNexus } from "./pilot_session.ts";
import { parseVersions, VERSIONS_OPTION } from "./secret_args.ts";

/** `spike secret destroy PATH -v 1,2 [--yes]`. */
export const destroyCommand: CommandSpec = {
  name: "destroy",
  summary: "Destroy versions of a secret for good (cannot be undeleted; asks first unless --yes)",
  args: "<path>",
  details: "The versions' values are removed from the store; their numbers stay in the metadata, marked destroyed.\n" +
    "-v is required: there is no default version to destroy.",
  positionals: { min: 1, max: 1 },
  options: {
    ...VERSIONS_OPTION,
    yes: { type: "boolean", short: "y", description: "Do not ask for confirmation" },
  },
  run: async ({ positionals, options, io }) => {
    const path = positionals[0]!;
    const versions = parseVersions(options.versions);
    if (versions.length === 0) throw new UsageError("name the versions to destroy with -v, e.g. -v 1,2");
    if (versions.includes(0)) throw new UsageError("-v: version numbers start at 1");
    if (!options.yes && !await confirm(io, `Destroy version(s) ${versions.join(",")} of '${path}' for good?`)) {
      throw new CliError("nothing destroyed (answer 'y' or pass --yes)");
    }
    await withNexus(io, ({ nexus }) => nexus.destroySecret(path, versions));
    io.stderr(`OK: version(s) ${versions.join(",")} of secret ${path} destroyed\n`);
    return 0;
  },
};
