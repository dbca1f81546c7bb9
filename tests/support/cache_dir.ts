/**
 * Where the suite keeps tools it builds or installs once per machine
 * (`~/.cache/spike/<tool>-<version>/`, or under `$XDG_CACHE_HOME`).
 *
 * @module
 */
import { join } from "node:path";

/** The cache directory of `tool` at `version`. */
export function toolCacheDir(tool: string, version: string): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "spike", `${tool}-${version}`);
}
