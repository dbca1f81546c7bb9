/**
 * `spike secret patch` and `move`: changes Nexus makes in one
 * compare-and-swap, so concurrent clients never lose each other's work.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { UsageError } from "../lib/cli/errors.ts";
import { withNexus } from "./pilot_session.ts";
import { CAS_OPTION, collectValues, EXPIRY_OPTIONS, parseWriteOptions, VALUE_OPTIONS } from "./secret_args.ts";

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
    const writeOptions = parseWriteOptions(options);
    const remove = (options.remove as string[] | undefined) ?? [];
    const values = await collectValues(pairs, options, io, remove.length > 0);
    const changes: Record<string, string | null> = { ...values };
    for (const key of remove) {
      if (Object.hasOwn(changes, key)) throw new UsageError(`key '${key}' is both set and removed`);
      changes[key] = null;
    }
    await withNexus(io, ({ nexus }) => nexus.patchSecret(path!, changes, writeOptions));
    io.stderr(`OK: secret ${path} patched\n`);
    return 0;
  },
};

/** `spike secret move SRC DST`. */
export const moveCommand: CommandSpec = {
  name: "move",
  summary: "Move a secret with every version and its metadata to another path",
  args: "<from> <to>",
  details: "Atomic: readers see the secret at one path or the other. Fails with 'conflict' (exit 1) when <to>\n" +
    "exists (remove it first with 'secret metadata delete'). Needs read and write on <from>, write on <to>.",
  positionals: { min: 2, max: 2 },
  run: async ({ positionals, io }) => {
    const [from, to] = positionals as [string, string];
    if (from === to) throw new UsageError("<from> and <to> are the same path");
    await withNexus(io, ({ nexus }) => nexus.moveSecret(from, to));
    io.stderr(`OK: secret ${from} moved to ${to}\n`);
    return 0;
  },
};
