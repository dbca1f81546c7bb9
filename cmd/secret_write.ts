/**
 * `spike secret patch`: merges keys into a secret as a new version, done
 * by Nexus in one compare-and-swap so concurrent patches never lose a key.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { UsageError } from "../lib/cli/errors.ts";
import { withNexus } from "./pilot_session.ts";
import {
  CAS_OPTION,
  collectValues,
  EXPIRY_OPTIONS,
  parseCas,
  parseExpiryOptions,
  VALUE_OPTIONS,
} from "./secret_args.ts";

/** `spike secret patch PATH key=value… [--remove KEY…] [--cas N]`. */
export const patchCommand: CommandSpec = {
  name: "patch",
  summary: "Change some keys of a secret (a new version; the other keys are kept)",
  args: "<path> [key=value...]",
  details: "Nexus merges the keys into the current version and writes the result as a new version, atomically:\n" +
    "two patches at once both land. --remove drops a key. Fails with 'not found' (exit 3) when the secret\n" +
    "has no current version.",
  positionals: { min: 1 },
  options: {
    ...VALUE_OPTIONS,
    remove: { type: "string", multiple: true, description: "Remove this key (repeatable)", valueName: "key" },
    ...CAS_OPTION,
    ...EXPIRY_OPTIONS,
  },
  run: async ({ positionals, options, io }) => {
    const [path, ...pairs] = positionals;
    const cas = parseCas(options.cas);
    const expiry = parseExpiryOptions(options);
    const remove = (options.remove as string[] | undefined) ?? [];
    const values = await collectValues(
      pairs,
      (options["from-file"] as string[] | undefined) ?? [],
      options["from-stdin"] as string | undefined,
      io,
      remove.length > 0,
    );
    const changes: Record<string, string | null> = { ...values };
    for (const key of remove) {
      if (Object.hasOwn(changes, key)) throw new UsageError(`key '${key}' is both set and removed`);
      changes[key] = null;
    }
    await withNexus(io, ({ nexus }) => nexus.patchSecret(path!, changes, { cas, ...expiry }));
    io.stderr(`OK: secret ${path} patched\n`);
    return 0;
  },
};
