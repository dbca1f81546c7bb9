/**
 * `spike dev`: development helpers (the local stack comes in dev_stack.ts).
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { devIdentityCommand } from "./dev_identity.ts";

/** The `dev` command group. */
export const devCommand: CommandSpec = {
  name: "dev",
  summary: "Development helpers: the local stack and a development CA",
  subcommands: [devIdentityCommand],
};
