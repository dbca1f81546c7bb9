/**
 * The `spike` executable: one binary, the subcommand picks the role.
 *
 * @module
 */
import { type CommandSpec, runCommand } from "../lib/cli/command.ts";
import { processIo } from "./process_io.ts";
import { startEntropyWarmup } from "./entropy_warmup.ts";
import { agentCommand } from "./agent.ts";
import { auditCommand } from "./audit.ts";
import { bootstrapCommand } from "./bootstrap.ts";
import { cipherCommand } from "./cipher.ts";
import { completionsCommand } from "./completions.ts";
import { devCommand } from "./dev.ts";
import { execCommand } from "./exec.ts";
import { keeperCommand } from "./keeper.ts";
import { nexusCommand } from "./nexus.ts";
import { operatorCommand } from "./operator.ts";
import { policyCommand } from "./policy.ts";
import { secretCommand } from "./secret.ts";
import { statusCommand } from "./status.ts";
import { versionCommand, versionLine } from "./version.ts";

/** The root of the command tree. */
export const spikeCommand: CommandSpec = {
  name: "spike",
  summary: "spike — a SPIFFE-native secrets store (SPIKE v1 compatible)",
  details: "Roles: nexus (the secrets service), keeper (holds a root key shard), bootstrap (one-shot key setup).\n" +
    "Operator CLI: secret, policy, cipher, operator, audit. Start a local stack with 'spike dev'.\n" +
    "Identity: SPIKE_SVID_DIR (spiffe-helper files) or the SPIFFE Workload API (SPIFFE_ENDPOINT_SOCKET).",
  subcommands: [
    nexusCommand,
    keeperCommand,
    bootstrapCommand,
    secretCommand,
    policyCommand,
    operatorCommand,
    statusCommand,
    auditCommand,
    cipherCommand,
    execCommand,
    agentCommand,
    devCommand,
    versionCommand,
    completionsCommand(() => spikeCommand),
  ],
  version: versionLine(),
};

if (import.meta.main) {
  // Seeds the crypto library's randomness on another core while the role's own modules load.
  startEntropyWarmup(Deno.args);
  Deno.exit(await runCommand(spikeCommand, Deno.args, processIo()));
}
