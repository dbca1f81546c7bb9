/**
 * `spike version` and `spike --version`: which build this is, and what it
 * runs on (bug reports want both).
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import manifest from "../deno.json" with { type: "json" };

/** One line: the spike version, the wire contract it speaks, and the runtime. */
export function versionLine(): string {
  return `spike ${manifest.version} (SPIKE v1 API; deno ${Deno.version.deno}, v8 ${Deno.version.v8}, ` +
    `${Deno.build.os}/${Deno.build.arch})`;
}

/** The `version` command. */
export const versionCommand: CommandSpec = {
  name: "version",
  summary: "Print the version of spike and of its runtime",
  positionals: { min: 0, max: 0 },
  run: ({ io }) => {
    io.stdout(`${versionLine()}\n`);
    return Promise.resolve(0);
  },
};
