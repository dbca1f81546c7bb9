/**
 * `spike status`: one line per component — Nexus (ready or not, and why),
 * each Keeper (reachable, holding a shard), the store and root key as Nexus
 * reports them, versions — and exit 0 only when all is well. The container
 * HEALTHCHECK runs it.
 *
 * @module
 */
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { outputFormat, renderStructured } from "../lib/cli/format.ts";
import { ConfigError, parseDuration, parseHttpsUrl, parseList } from "../lib/config/parse.ts";
import { toTrustRoots } from "../lib/config/trust_roots.ts";
import { type Probe, unverifiedProbe, verifiedProbe } from "../lib/ops/probe.ts";
import { collectLiveness, collectStatus, renderLivenessLines, renderStatusLines } from "../lib/ops/status.ts";
import type { IdentitySource } from "../lib/spiffe/identity.ts";
import { selectIdentitySource } from "../lib/spiffe/source_select.ts";
import { SPIKE_VERSION } from "../lib/version.ts";
import { pilotConfig, requireIdentityAvailable } from "./pilot_session.ts";

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
  run: async ({ options, io }) => {
    const format = outputFormat(options.format);
    const timeoutMs = usage(() => parseDuration("--timeout", (options.timeout as string | undefined) ?? "5s"));
    if (timeoutMs < 100) throw new UsageError("--timeout: must be at least 100ms");
    if (options["keepers-only"] && options["nexus-only"]) {
      throw new UsageError("--keepers-only and --nexus-only leave nothing to check together");
    }
    const config = pilotConfig(io);
    const nexusUrl = options["keepers-only"]
      ? undefined
      : options.nexus === undefined
      ? config.nexusUrl
      : usage(() => parseHttpsUrl("--nexus", options.nexus as string));
    const keeperUrls = options["nexus-only"]
      ? []
      : options.keeper !== undefined
      ? usage(() => (options.keeper as string[]).map((url) => parseHttpsUrl("--keeper", url)))
      : keeperPeersFromEnv(io.env.SPIKE_NEXUS_KEEPER_PEERS);
    if (nexusUrl === undefined && keeperUrls.length === 0) {
      throw new UsageError("--keepers-only needs at least one Keeper (--keeper or SPIKE_NEXUS_KEEPER_PEERS)");
    }

    let identity: IdentitySource | undefined;
    let probe: Probe;
    if (options.insecure) {
      probe = unverifiedProbe(timeoutMs);
    } else {
      await requireIdentityAvailable(config).catch((error) => {
        throw new CliError(`${(error as Error).message}; or pass --insecure to skip checking the servers' SVIDs`);
      });
      identity = selectIdentitySource(config.identity, { readyTimeoutMs: timeoutMs });
      try {
        await identity.ready();
      } catch (error) {
        await identity.close();
        throw new CliError(`no SPIFFE identity to check the servers with: ${(error as Error).message}`);
      }
      probe = verifiedProbe(identity, toTrustRoots(config.trustRoots), timeoutMs);
    }
    try {
      const targets = { nexusUrl, keeperUrls, cliVersion: SPIKE_VERSION };
      if (options.live) {
        const report = await collectLiveness(probe, targets);
        io.stdout(format === "human" ? renderLivenessLines(report) : renderStructured(report, format));
        return report.ok ? 0 : 1;
      }
      const report = await collectStatus(probe, targets);
      io.stdout(format === "human" ? renderStatusLines(report) : renderStructured(report, format));
      return report.ok ? 0 : 1;
    } finally {
      probe.close();
      await identity?.close();
    }
  },
};

/** Runs a parser; a bad flag value is a usage error (exit 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** The Keeper list from the environment; a bad entry is a configuration error (exit 1). */
function keeperPeersFromEnv(value: string | undefined): string[] {
  try {
    return parseList(value ?? "").map((url) => parseHttpsUrl("SPIKE_NEXUS_KEEPER_PEERS", url));
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration: ${error.message}`);
    throw error;
  }
}
