/**
 * `spike status`: one line per component — Nexus (ready or not, and why),
 * each Keeper (reachable, holding a shard), the store and root key as Nexus
 * reports them, versions — and exit 0 only when all is well. The container
 * HEALTHCHECK runs it. The command's work is in `status_run.ts`, loaded
 * when it runs.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";

/** The `status` command. */
export const statusCommand: CommandSpec = {
  name: "status",
  summary: "Show whether Nexus and the Keepers are up and ready (exit 0 only when all is well)",
  details:
    "Asks GET /ready of Nexus (--nexus, default SPIKE_NEXUS_API_URL) and of each Keeper (--keeper, repeatable;\n" +
    "default SPIKE_NEXUS_KEEPER_PEERS, in order: keeper-<i> holds share i). These endpoints need no client\n" +
    "certificate; the servers' SVIDs are still checked against the trust bundle of this process's identity\n" +
    "(SPIKE_SVID_DIR or the Workload API: any SPIFFE ID of the trust domain will do, e.g. Nexus's own inside its\n" +
    "container). --insecure skips that check where no identity exists.\n" +
    "--live asks GET /health instead: is each process up and serving TLS (a liveness check: a Nexus waiting\n" +
    "for its root key is live but not ready). --nexus-only and --keepers-only narrow what is asked.\n" +
    "Exit codes: 0 all ready (or live), 1 something is unreachable or not ready, 2 usage.",
  options: {
    nexus: { type: "string", description: "Nexus URL (default SPIKE_NEXUS_API_URL)", valueName: "url" },
    keeper: {
      type: "string",
      multiple: true,
      description: "A Keeper URL; repeat in share order (default SPIKE_NEXUS_KEEPER_PEERS)",
      valueName: "url",
    },
    "keepers-only": { type: "boolean", description: "Leave Nexus out (a Keeper's own health check)" },
    "nexus-only": { type: "boolean", description: "Leave the Keepers out (Nexus's own health check)" },
    live: { type: "boolean", description: "Only check that each process is up (GET /health), not that it is ready" },
    format: { type: "string", short: "f", description: "Output format: human, json or yaml", valueName: "format" },
    timeout: { type: "string", description: "Time each component gets to answer (default 5s)", valueName: "duration" },
    insecure: { type: "boolean", description: "Do not verify the servers' SVIDs (no identity on this host)" },
  },
  positionals: { min: 0, max: 0 },
  run: async (context) => (await import("./status_run.ts")).runStatus(context),
};
