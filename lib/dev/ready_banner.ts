/**
 * What `spike dev` prints once the stack is ready: commands a user can paste
 * into another terminal as they are. The README's "Using it" block starts
 * with the same lines (a test holds them together).
 *
 * @module
 */
import { shellWord } from "../install/install_plan.ts";

/** What the banner talks about. */
export interface ReadyBannerInput {
  /** Nexus's URL. */
  readonly nexusUrl: string;
  /** The `pilot.env` file to source. */
  readonly pilotEnvFile: string;
  /** Nexus's audit trail. */
  readonly auditFile: string;
  /** The user's home directory (paths under it are shown with `~`), if known. */
  readonly home?: string;
  /**
   * How to install the `spike` command when it is not on PATH yet: the
   * repository directory and whether Deno itself is on PATH (else the
   * command goes through `npx`). Absent when `spike` is on PATH.
   */
  readonly install?: { readonly repoDir: string; readonly denoOnPath: boolean; readonly denoVersion: string };
}

/** The example commands, in the order the README shows them. */
export const EXAMPLE_COMMANDS: readonly string[] = [
  "echo 's3cret' | spike secret put app/db user=admin --from-stdin pass",
  "spike secret get app/db pass",
];

/** A path for a shell command line: `~/...` under `home` when that needs no quoting, else quoted as needed. */
export function displayPath(path: string, home: string | undefined): string {
  if (home && path.startsWith(`${home}/`)) {
    const rest = path.slice(home.length + 1);
    if (shellWord(rest) === rest) return `~/${rest}`;
  }
  return shellWord(path);
}

/** The ready banner, ending in a newline. */
export function readyBanner(input: ReadyBannerInput): string {
  const lines = [`spike dev: ready — Nexus at ${input.nexusUrl}`];
  if (input.install) {
    const { repoDir, denoOnPath, denoVersion } = input.install;
    const deno = denoOnPath ? "deno" : `npx --yes deno@${denoVersion}`;
    lines.push(
      "  There is no 'spike' command on your PATH yet. In another terminal, install it",
      "  (it prints the PATH line to add if its directory is not on PATH), then use it:",
      `    cd ${shellWord(repoDir)} && ${deno} task install`,
    );
  } else {
    lines.push("  In another terminal:");
  }
  lines.push(
    `    source ${displayPath(input.pilotEnvFile, input.home)}`,
    ...EXAMPLE_COMMANDS.map((command) => `    ${command}`),
    `  Audit trail (one line per request):  tail -f ${displayPath(input.auditFile, input.home)}`,
    "  Ctrl-C stops the stack.",
  );
  return lines.join("\n") + "\n";
}
