/**
 * The process side of `deno task install` / `deno task uninstall`: parse
 * `--root`, read the environment, run, map failures to exit codes (2 usage,
 * 1 other).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { install, InstallError, uninstall } from "./installer.ts";
import { installLayout } from "./install_plan.ts";

const USAGE = {
  install: "Usage: deno task install [--root <dir>]\n\n" +
    "Installs the 'spike' command into <dir>/bin (default: $DENO_INSTALL_ROOT/bin, else ~/.deno/bin).\n",
  uninstall: "Usage: deno task uninstall [--root <dir>]\n\n" +
    "Removes the 'spike' command that 'deno task install' put into <dir>/bin.\n",
} as const;

/** Runs `install` or `uninstall` with `args`; resolves with the exit code. */
export async function installerMain(action: "install" | "uninstall", args: readonly string[]): Promise<number> {
  let root: string | undefined;
  try {
    const parsed = parseArgs({
      args: [...args],
      options: { root: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    if (parsed.values.help) {
      console.log(USAGE[action]);
      return 0;
    }
    root = parsed.values.root;
  } catch (error) {
    console.error(`deno task ${action}: ${(error as Error).message.split(". ")[0]}\n\n${USAGE[action]}`);
    return 2;
  }
  const env = Deno.env.toObject();
  try {
    const context = {
      repoDir: fileURLToPath(new URL("../..", import.meta.url)),
      layout: installLayout(root, env),
      env,
      denoPath: Deno.execPath(),
      denoVersion: Deno.version.deno,
      say: (line: string) => console.log(line),
    };
    await (action === "install" ? install(context) : uninstall(context));
    return 0;
  } catch (error) {
    const message = error instanceof InstallError ? error.message : `unexpected error: ${(error as Error)?.message}`;
    console.error(`deno task ${action}: ${message}`);
    return 1;
  }
}
