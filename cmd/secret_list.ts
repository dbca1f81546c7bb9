/**
 * `spike secret list [PREFIX]`: the paths the caller may read or list,
 * fetched page by page (never one answer for a million paths), shown one
 * level below PREFIX, every path (`--recursive`), or as a tree (`--tree`).
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { UsageError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import { drawTree, oneLevel } from "../lib/cli/path_tree.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { withNexus } from "./pilot_session.ts";
import { FORMAT_OPTION } from "./secret_args.ts";

/** Paths per page asked of Nexus. */
const PAGE_SIZE = 1000;

/**
 * Every path under `prefix` the caller may see, following cursors. A Nexus
 * that does not page (SPIKE's) answers every path at once and no cursor;
 * the prefix is applied here too, so the result is the same.
 */
async function collect(nexus: NexusClient, prefix: string): Promise<string[]> {
  // Loaded with the session (like the client), not with the command tree.
  const { pagedSecretPaths } = await import("../lib/client/paged_list.ts");
  const out: string[] = [];
  for await (const key of pagedSecretPaths((query) => nexus.listSecretsPage(query), prefix, PAGE_SIZE)) {
    if (key.startsWith(prefix)) out.push(key);
  }
  return out;
}

/** `spike secret list [PREFIX] [--recursive | --tree]`. */
export const listCommand: CommandSpec = {
  name: "list",
  summary: "List the secret paths you may read or list",
  args: "[prefix]",
  details: "PREFIX names a folder ('apps/billing' and 'apps/billing/' are the same). Without flags, list shows\n" +
    "the entries one level below it, sub-folders ending in '/'; --recursive shows every path below it;\n" +
    "--tree draws them as a tree. Without PREFIX (and flags) every path is shown, as SPIKE's pilot does.\n" +
    "Paths are those a policy lets you read or list (the superuser, and holders of 'list' on\n" +
    "spike/system/secret, see all).",
  positionals: { min: 0, max: 1 },
  options: {
    recursive: { type: "boolean", short: "r", description: "Every path below PREFIX, not one level" },
    tree: { type: "boolean", description: "Every path below PREFIX, drawn as a tree" },
    ...FORMAT_OPTION,
  },
  run: async ({ positionals, options, io }) => {
    const format = outputFormat(options.format);
    if (options.recursive && options.tree) throw new UsageError("give --recursive or --tree, not both");
    if (options.tree && format !== "human") throw new UsageError("--tree draws for people; use --recursive with -f");
    const given = positionals[0];
    const folder = given === undefined || given === "" || given.endsWith("/") ? given ?? "" : `${given}/`;
    const paths = await withNexus(io, ({ nexus }) => collect(nexus, folder));
    if (options.tree) {
      io.stdout(drawTree(paths, folder));
      return 0;
    }
    const shown = options.recursive || given === undefined ? paths : oneLevel(paths, folder);
    io.stdout(format === "human" ? shown.map((p) => `${p}\n`).join("") : await renderStructured(shown, format));
    return 0;
  },
};
