/**
 * What `spike status` does (its flags and help are in `status.ts`).
 *
 * @module
 */
import type { CommandContext } from "../lib/cli/command.ts";
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

/** Runs `spike status` (see `status.ts`). */
export async function runStatus({ options, io }: CommandContext): Promise<number> {
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
      io.stdout(format === "human" ? renderLivenessLines(report) : await renderStructured(report, format));
      return report.ok ? 0 : 1;
    }
    const report = await collectStatus(probe, targets);
    io.stdout(format === "human" ? renderStatusLines(report) : await renderStructured(report, format));
    return report.ok ? 0 : 1;
  } finally {
    probe.close();
    await identity?.close();
  }
}

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
