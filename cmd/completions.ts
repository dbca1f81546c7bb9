/**
 * `spike completions bash|zsh|fish`: prints a completion script generated
 * from the command tree, so it always matches the commands and flags of
 * this build.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from "../lib/cli/completions.ts";
import { UsageError } from "../lib/cli/errors.ts";
import { didYouMean } from "../lib/cli/suggest.ts";

/**
 * The `completions` command for the tree `root()` returns (a function, as
 * the root lists this command among its own subcommands).
 */
export function completionsCommand(root: () => CommandSpec): CommandSpec {
  return {
    name: "completions",
    summary: "Print a shell completion script (bash, zsh or fish)",
    args: "<shell>",
    details: "Load it in this shell:\n" +
      "  bash:  source <(spike completions bash)\n" +
      "  zsh:   source <(spike completions zsh)      (after compinit)\n" +
      "  fish:  spike completions fish | source\n" +
      "To load it in every new shell, write it to a file your shell reads; see docs/CLI.md.",
    positionals: { min: 1, max: 1 },
    run: ({ positionals, io }) => {
      const shell = positionals[0]!;
      if (!(COMPLETION_SHELLS as readonly string[]).includes(shell)) {
        throw new UsageError(
          `unknown shell '${shell}'${didYouMean(shell, COMPLETION_SHELLS)} (use ${COMPLETION_SHELLS.join(", ")})`,
        );
      }
      io.stdout(completionScript(root(), shell as CompletionShell));
      return Promise.resolve(0);
    },
  };
}
