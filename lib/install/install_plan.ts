/**
 * What `deno task install` and `deno task uninstall` do, as data: where
 * `spike` goes, and the exact `deno install --global` command that puts it
 * there with the permissions and V8 flag the roles need.
 *
 * @module
 */
import { join } from "node:path";

/**
 * Deno flags of the `spike` command: every role's permissions together (the
 * CLI reads and writes files, dials Nexus, and `spike dev` starts children
 * with their own narrower flags) and the linear-time regexp engine Nexus
 * needs. The `spike` and `dev` tasks in deno.json use the same set; a test
 * keeps them equal.
 */
export const SPIKE_RUN_FLAGS: readonly string[] = [
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
  "--v8-flags=--enable-experimental-regexp-engine",
];

/** The installed command's name. */
export const COMMAND_NAME = "spike";

/** The Deno version the README's `npx --yes deno@…` commands pin. */
export const PINNED_DENO_VERSION = "2.9.6";

/** Written beside the shim when the installer also placed a `deno` there, so uninstall removes only its own copy. */
export const PLACED_DENO_MARKER = "deno-placed-by-spike-install";

/** Where an install goes. */
export interface InstallLayout {
  /** The root given to `deno install --root`. */
  readonly root: string;
  /** `<root>/bin`: the directory that must be on PATH. */
  readonly binDir: string;
  /** `<root>/bin/spike`: the shim Deno writes. */
  readonly shim: string;
  /** `<root>/bin/.spike`: Deno's per-command config directory (config copy and lockfile). */
  readonly configDir: string;
}

/**
 * The install root: `--root` when given, else `DENO_INSTALL_ROOT` (Deno's
 * own variable), else `~/.deno` (Deno's default, where its installer puts
 * `deno` too).
 */
export function installLayout(rootFlag: string | undefined, env: Readonly<Record<string, string>>): InstallLayout {
  const root = rootFlag ?? env.DENO_INSTALL_ROOT ?? (env.HOME ? join(env.HOME, ".deno") : undefined);
  if (root === undefined || root === "") throw new Error("HOME is not set: give --root <dir>");
  const binDir = join(root, "bin");
  return { root, binDir, shim: join(binDir, COMMAND_NAME), configDir: join(binDir, `.${COMMAND_NAME}`) };
}

/**
 * Arguments for `deno install --global`. The config (import map) is the
 * repository's; `--frozen` makes the shim refuse to resolve anything the
 * lockfile (seeded from the repository's `deno.lock`) does not pin; `--quiet`
 * keeps Deno's download progress out of the command's output.
 */
export function denoInstallArgs(repoDir: string, layout: InstallLayout): string[] {
  return [
    "install",
    "--global",
    "--quiet",
    "--root",
    layout.root,
    "--name",
    COMMAND_NAME,
    "--config",
    join(repoDir, "deno.json"),
    "--frozen",
    ...SPIKE_RUN_FLAGS,
    join(repoDir, "cmd", "spike.ts"),
  ];
}

/** Arguments for `deno uninstall --global`. */
export function denoUninstallArgs(layout: InstallLayout): string[] {
  return ["uninstall", "--global", "--quiet", "--root", layout.root, COMMAND_NAME];
}

/** Quotes `word` for a POSIX shell when it needs it (for commands we print). */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_\-./=:,+@%~]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
