/**
 * `deno task install [--root <dir>]`: puts `spike` on your PATH. See
 * lib/install/installer.ts and docs/CLI.md.
 *
 * @module
 */
import { installerMain } from "../lib/install/main.ts";

Deno.exit(await installerMain("install", Deno.args));
