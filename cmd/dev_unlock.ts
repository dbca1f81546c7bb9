/**
 * `spike dev unlock`: gives a development Nexus its root key — Bootstrap on
 * the first run, the saved recovery shards on later ones — and waits until
 * it is ready (the compose demo's `bootstrap` container). Development only.
 *
 * @module
 */
import { join } from "node:path";
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { ConfigError, parseDuration } from "../lib/config/parse.ts";
import { resolveBootstrapConfig } from "../lib/config/spike_config.ts";
import { toTrustRoots } from "../lib/config/trust_roots.ts";
import { DevStackError } from "../lib/dev/errors.ts";
import { logLevel, resolveOrFail } from "./role_runner.ts";

/** The `dev unlock` command. */
export const devUnlockCommand: CommandSpec = {
  name: "unlock",
  summary: "Give a development Nexus its root key: bootstrap once, restore from saved shards after",
  details: "With recovery shards in --recovery-dir, sends them to Nexus (as the Pilot restore role) so a Nexus\n" +
    "restarted with empty Keepers gets its key back. Without them: a fresh Nexus is bootstrapped (as\n" +
    "Bootstrap) and its shards saved there (as the Pilot recover role); a Nexus that holds its key just has\n" +
    "its shards saved; a Nexus with data but no key is an error. Then waits until Nexus is ready.\n" +
    "Identities come from --identities/<bootstrap|pilot-recover|pilot-restore> (as 'spike dev identities'\n" +
    "writes them); Nexus and the Keepers from SPIKE_NEXUS_API_URL, SPIKE_NEXUS_KEEPER_PEERS and\n" +
    "SPIKE_NEXUS_SHAMIR_SHARES/THRESHOLD, as for 'spike bootstrap'.\n" +
    "DEVELOPMENT ONLY: shards kept beside the data protect nothing. Production never does this.",
  positionals: { min: 0, max: 0 },
  options: {
    identities: { type: "string", description: "Directory of the SVID directories", valueName: "dir" },
    "recovery-dir": { type: "string", description: "Where the recovery shards are kept", valueName: "dir" },
    timeout: { type: "string", description: "How long to wait for Nexus (default 3m)", valueName: "duration" },
  },
  run: async ({ options, io }) => {
    const identitiesDir = options.identities as string | undefined;
    const recoveryDir = options["recovery-dir"] as string | undefined;
    if (!identitiesDir) throw new UsageError("--identities is required");
    if (!recoveryDir) throw new UsageError("--recovery-dir is required");
    let timeoutMs: number;
    try {
      timeoutMs = parseDuration("--timeout", (options.timeout as string | undefined) ?? "3m");
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
    const config = resolveOrFail(() => resolveBootstrapConfig(io.env));
    // Loaded when the command runs, not with the command tree.
    const [{ systemRandom }, { unlockDevNexus }, { BootstrapError }, { createLogger }, { verifiedProbe }, {
      createFileSource,
    }] = await Promise.all([
      import("../lib/crypto/random.ts"),
      import("../lib/dev/unlock.ts"),
      import("../lib/bootstrap/bootstrap.ts"),
      import("../lib/log/logger.ts"),
      import("../lib/ops/probe.ts"),
      import("../lib/spiffe/file_source.ts"),
    ]);
    const log = createLogger({ component: "unlock", level: logLevel(io) });
    const source = (name: string) => createFileSource(join(identitiesDir, name), { log });
    const identities = {
      bootstrap: source("bootstrap"),
      recover: source("pilot-recover"),
      restore: source("pilot-restore"),
    };
    const roots = toTrustRoots(config.trustRoots);
    try {
      for (const [name, identity] of Object.entries(identities)) {
        await identity.ready().catch((error) => {
          throw new CliError(`no SVID for ${name}: ${(error as Error).message}`);
        });
      }
      const probe = verifiedProbe(identities.restore, roots, 5_000);
      try {
        await unlockDevNexus({
          nexusUrl: config.nexusUrl,
          keeperPeers: config.keeperPeers,
          threshold: config.shamirThreshold,
          identities,
          roots,
          recoveryDir,
          probe,
          random: systemRandom,
          log,
          say: (line) => io.stderr(`spike dev unlock: ${line}\n`),
          timeoutMs,
        });
      } catch (error) {
        if (error instanceof DevStackError || error instanceof BootstrapError) throw new CliError(error.message);
        throw error;
      } finally {
        probe.close();
      }
    } finally {
      await Promise.all(Object.values(identities).map((identity) => identity.close()));
    }
    return 0;
  },
};
