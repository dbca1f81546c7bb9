/**
 * `spike secret metadata …`: a secret's versions, times and settings, and
 * removing a secret with everything it holds.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { confirm } from "../lib/cli/confirm.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import { withNexus } from "./pilot_session.ts";
import type { MetadataUpdate } from "../lib/client/nexus_client.ts";
import { EXPIRY_OPTIONS, FORMAT_OPTION, parseExpiryOptions, parsePairs, parseVersion } from "./secret_args.ts";

/** The `secret metadata` command group. */
export const metadataCommand: CommandSpec = {
  name: "metadata",
  summary: "Secret metadata",
  subcommands: [
    {
      name: "get",
      summary: "Show versions and timestamps of a secret",
      args: "<path>",
      positionals: { min: 1, max: 1 },
      options: {
        version: { type: "string", short: "v", description: "Only this version", valueName: "N" },
        ...FORMAT_OPTION,
      },
      run: async ({ positionals, options, io }) => {
        const format = outputFormat(options.format);
        const version = parseVersion(options.version);
        const meta = await withNexus(io, ({ nexus }) => nexus.getSecretMetadata(positionals[0]!, version));
        io.stdout(await renderStructured(meta, format === "json" ? "json" : "yaml"));
        return 0;
      },
    },
    {
      name: "put",
      summary: "Set a secret's custom metadata or expiry (no new version)",
      args: "<path> [key=value...]",
      details: "Custom metadata is a few labels per secret (owner, ticket, rotation policy…): at most 64 keys of\n" +
        "up to 128 bytes, values of up to 512 bytes. Nexus seals it like the values. The keys given replace\n" +
        "all earlier ones; --clear removes them all. --ttl or --expires-at sets when the whole secret expires,\n" +
        "--no-expiry removes that; without any of them the expiry stays as it is.",
      positionals: { min: 1 },
      options: {
        clear: { type: "boolean", description: "Remove all custom metadata" },
        ttl: EXPIRY_OPTIONS.ttl,
        "expires-at": EXPIRY_OPTIONS["expires-at"],
        "no-expiry": { type: "boolean", description: "The secret no longer expires" },
      },
      run: async ({ positionals, options, io }) => {
        const [path, ...pairs] = positionals;
        if (options.clear && pairs.length > 0) throw new UsageError("--clear takes no key=value");
        const { ttl, expiresAt } = parseExpiryOptions({ ttl: options.ttl, "expires-at": options["expires-at"] });
        if (options["no-expiry"] && (ttl !== undefined || expiresAt !== undefined)) {
          throw new UsageError("--no-expiry takes no --ttl or --expires-at");
        }
        const update: MetadataUpdate = {
          ...(pairs.length > 0 || options.clear ? { customMetadata: parsePairs(pairs) } : {}),
          ...(ttl === undefined ? {} : { ttl }),
          ...(expiresAt === undefined ? {} : { expiresAt }),
          ...(options["no-expiry"] ? { expiresAt: null } : {}),
        };
        if (Object.keys(update).length === 0) {
          throw new UsageError("give key=value pairs, --clear, --ttl, --expires-at or --no-expiry");
        }
        await withNexus(io, ({ nexus }) => nexus.putSecretMetadata(path!, update));
        io.stderr(`OK: metadata of secret ${path} written\n`);
        return 0;
      },
    },
    {
      name: "delete",
      summary: "Remove a secret with every version and its metadata, for good (asks first unless --yes)",
      args: "<path>",
      positionals: { min: 1, max: 1 },
      options: { yes: { type: "boolean", short: "y", description: "Do not ask for confirmation" } },
      run: async ({ positionals, options, io }) => {
        const path = positionals[0]!;
        if (!options.yes && !await confirm(io, `Remove secret '${path}' with every version for good?`)) {
          throw new CliError("nothing removed (answer 'y' or pass --yes)");
        }
        await withNexus(io, ({ nexus }) => nexus.deleteSecretMetadata(path));
        io.stderr(`OK: secret ${path} and all its versions removed\n`);
        return 0;
      },
    },
  ],
};
