/**
 * A throwaway file system root for `systemd-analyze verify|security
 * --root=…`: the spike units in `etc/systemd/system`, the distribution's
 * units they depend on (`sysinit.target`, `network-online.target`, …), and
 * the programs their Exec lines name at the paths they name (`deno` as a
 * stand-in that runs this Deno, `kill`), since verify checks that each one
 * exists and is executable.
 *
 * @module
 */
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { exists } from "./files.ts";

/** Where Debian (and most distributions) keep the packaged units. */
const SYSTEM_UNIT_DIRS = ["/usr/lib/systemd/system", "/lib/systemd/system"];

/** Builds the root and returns its path (the caller removes it). */
export async function systemdTestRoot(unitsDir: string, units: readonly string[]): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "spike_systemd_root_" });
  const unitDir = join(root, "etc/systemd/system");
  await Deno.mkdir(unitDir, { recursive: true });
  for (const unit of units) await Deno.copyFile(join(unitsDir, unit), join(unitDir, unit));

  let packaged: string | undefined;
  for (const dir of SYSTEM_UNIT_DIRS) if (await exists(join(dir, "sysinit.target"))) packaged = dir;
  if (!packaged) throw new Error("no packaged systemd units found (install Debian's systemd package)");
  await cp(packaged, join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  await Deno.symlink("usr/lib", join(root, "lib"));

  await Deno.mkdir(join(root, "usr/local/bin"), { recursive: true });
  await Deno.writeTextFile(join(root, "usr/local/bin/deno"), `#!/bin/sh\nexec '${Deno.execPath()}' "$@"\n`, {
    mode: 0o755,
  });
  await Deno.mkdir(join(root, "usr/bin"), { recursive: true });
  const kill = (await exists("/usr/bin/kill")) ? "/usr/bin/kill" : "/bin/kill";
  await Deno.copyFile(kill, join(root, "usr/bin/kill"));
  await Deno.symlink("usr/bin", join(root, "bin"));
  return root;
}
