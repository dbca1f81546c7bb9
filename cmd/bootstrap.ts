/**
 * `spike bootstrap`: one shot that creates the root key and hands its
 * shards to the Keepers, then verifies Nexus. Exits 0 only when verified.
 *
 * @module
 */
import type { BootstrapOutcome } from "../lib/bootstrap/bootstrap.ts";
import type { CommandSpec } from "../lib/cli/command.ts";
import { CliError } from "../lib/cli/errors.ts";
import { resolveBootstrapConfig } from "../lib/config/spike_config.ts";
import { toTrustRoots } from "../lib/config/trust_roots.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { isKeeper, isNexus } from "../lib/spiffe/roles.ts";
import { logLevel, resolveOrFail } from "./role_runner.ts";
import { parseDuration } from "../lib/config/parse.ts";

/** The `bootstrap` command. */
export const bootstrapCommand: CommandSpec = {
  name: "bootstrap",
  summary: "Create the root key, give its shards to the Keepers, verify Nexus",
  details: "Uses SPIKE_NEXUS_API_URL, SPIKE_NEXUS_KEEPER_PEERS, SPIKE_NEXUS_SHAMIR_SHARES/THRESHOLD.\n" +
    "Refuses when Nexus already has a key or data unless SPIKE_BOOTSTRAP_FORCE=true.\n" +
    "SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED=true (Kubernetes Job, systemd oneshot): an initialized\n" +
    "deployment is success (exit 0, nothing handed out); a Nexus with data is waited for.\n" +
    "SPIKE_BOOTSTRAP_TIMEOUT (default 2m) bounds the whole run.",
  positionals: { min: 0, max: 0 },
  run: async ({ io }) => {
    const config = resolveOrFail(() => resolveBootstrapConfig(io.env));
    const timeoutMs = resolveOrFail(() =>
      parseDuration("SPIKE_BOOTSTRAP_TIMEOUT", io.env.SPIKE_BOOTSTRAP_TIMEOUT ?? "2m")
    );
    const level = logLevel(io);
    // Loaded when the command runs, not with the command tree.
    const [{ BootstrapError, runBootstrap }, { createMtlsClient }, { selectIdentitySource }, { createLogger }] =
      await Promise.all([
        import("../lib/bootstrap/bootstrap.ts"),
        import("../lib/spiffe/mtls_client.ts"),
        import("../lib/spiffe/source_select.ts"),
        import("../lib/log/logger.ts"),
      ]);
    const log = createLogger({ component: "bootstrap", level });
    const identity = selectIdentitySource(config.identity, { log });
    const roots = toTrustRoots(config.trustRoots);
    let outcome: BootstrapOutcome;
    try {
      try {
        await identity.ready();
      } catch (error) {
        throw new CliError(`no SPIFFE identity: ${(error as Error).message}`);
      }
      const nexus = createMtlsClient({ identity, serverId: (id) => isNexus(id, roots), timeoutMs: 10_000 });
      const keepers = createMtlsClient({ identity, serverId: (id) => isKeeper(id, roots), timeoutMs: 10_000 });
      try {
        outcome = await runBootstrap({
          nexusUrl: config.nexusUrl,
          keeperPeers: config.keeperPeers,
          threshold: config.shamirThreshold,
          force: config.force,
          skipIfInitialized: config.skipIfInitialized,
          nexus,
          keepers,
          random: systemRandom,
          log,
          timeoutMs,
        });
      } catch (error) {
        if (error instanceof BootstrapError) throw new CliError(error.message);
        throw error;
      } finally {
        nexus.close();
        keepers.close();
      }
    } finally {
      await identity.close();
    }
    io.stdout(outcome === "bootstrapped" ? "bootstrap: verified\n" : "bootstrap: already initialized, nothing to do\n");
    return 0;
  },
};
