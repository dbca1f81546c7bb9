/**
 * `spike audit verify`: checks audit files for the first missing, reordered,
 * edited or forged record. Who checks the MACs:
 *
 * - by default Nexus, which alone holds the audit key: the CLI (as the
 *   Pilot superuser) sends it the keyed lines in batches and gets a verdict
 *   per line; order and links are checked here;
 * - with `--recovery-dir`, this process, with the root key rebuilt from the
 *   operator's recovery files (and zeroed once the audit key is derived);
 * - with `--unkeyed`, nobody: order and links only.
 *
 * The work is in `audit_run.ts`, loaded when the command runs.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";

/** The `audit` command group. */
export const auditCommand: CommandSpec = {
  name: "audit",
  summary: "Check Nexus's tamper-evident audit trail",
  subcommands: [
    {
      name: "verify",
      summary: "Verify audit files; name the first missing, reordered, edited or forged record",
      args: "<file|->...",
      details: "Give the files of one trail in order (rotated files first; '-' reads standard input, e.g.\n" +
        "  psql -At -c 'SELECT line FROM audit_logs ORDER BY instance, seq' | spike audit verify -).\n" +
        "MACs are checked by Nexus (Pilot superuser SVID; the audit key never leaves Nexus), or offline\n" +
        "with --recovery-dir, or not at all with --unkeyed (order and links only: whoever rewrites every\n" +
        "record after a change gets past that). Prints 'OK <n> records ...' and exits 0, or names the\n" +
        "first bad record and exits 1. Notes (unkeyed records, chains without a stop record) go to stderr.",
      options: {
        "recovery-dir": {
          type: "string",
          multiple: true,
          valueName: "dir",
          description: "Check MACs here with the root key rebuilt from the recovery files in <dir>; " +
            "repeat it with the files of each root key version (records from before a rotation)",
        },
        unkeyed: { type: "boolean", description: "Check order and links only, without any key" },
        partial: { type: "boolean", description: "Accept a trail that starts inside a chain (an excerpt)" },
      },
      positionals: { min: 1 },
      run: async (context) => (await import("./audit_run.ts")).runAuditVerify(context),
    },
  ],
};
