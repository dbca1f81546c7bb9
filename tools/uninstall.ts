/**
 * `deno task uninstall [--root <dir>]`: removes what `deno task install` put
 * on your PATH.
 *
 * @module
 */
import { installerMain } from "../lib/install/main.ts";

Deno.exit(await installerMain("uninstall", Deno.args));
