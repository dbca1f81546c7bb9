/**
 * Opens an authenticated Nexus client for one CLI invocation: resolves the
 * Pilot config, picks the identity source, and checks the server's ID is a
 * Nexus ID.
 *
 * Every command module imports this one, and `spike --help` loads them
 * all, so the TLS client, the identity sources and the API client are
 * imported when a session opens, not with this module.
 *
 * @module
 */
import { CliError } from "../lib/cli/errors.ts";
import type { CliIo } from "../lib/cli/io.ts";
import { ApiCallError } from "../lib/client/errors.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { ConfigError } from "../lib/config/parse.ts";
import { type PilotConfig, resolvePilotConfig } from "../lib/config/spike_config.ts";
import { MtlsError } from "../lib/spiffe/errors.ts";
import { isNexus } from "../lib/spiffe/roles.ts";
import { toTrustRoots } from "../lib/config/trust_roots.ts";

/** An open client and the config it came from. */
export interface PilotSession {
  /** Typed Nexus API. */
  readonly nexus: NexusClient;
  /** Resolved settings. */
  readonly config: PilotConfig;
}

/** Resolves the Pilot config, reporting bad settings as CLI errors. */
export function pilotConfig(io: CliIo): PilotConfig {
  try {
    return resolvePilotConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

/** Runs `use` with a connected session and closes everything afterwards. */
export async function withNexus<T>(io: CliIo, use: (session: PilotSession) => Promise<T>): Promise<T> {
  const config = pilotConfig(io);
  await requireIdentityAvailable(config);
  const [{ selectIdentitySource }, { createMtlsClient }, { NexusClient }] = await Promise.all([
    import("../lib/spiffe/source_select.ts"),
    import("../lib/spiffe/mtls_client.ts"),
    import("../lib/client/nexus_client.ts"),
  ]);
  // No directory watch: a command reads its SVID once (the poll still follows a rotation in a long one).
  const identity = selectIdentitySource(config.identity, { watchFiles: false });
  try {
    try {
      await identity.ready();
    } catch (error) {
      throw new CliError(`no SPIFFE identity: ${(error as Error).message}`);
    }
    const roots = toTrustRoots(config.trustRoots);
    const client = createMtlsClient({ identity, serverId: (id) => isNexus(id, roots), timeoutMs: 30_000 });
    try {
      return await use({ nexus: new NexusClient(config.nexusUrl, client), config });
    } catch (error) {
      if (error instanceof ApiCallError) throw new CliError(error.message, error.status === 404 ? 3 : 1);
      if (error instanceof MtlsError) throw new CliError(error.message);
      throw error;
    } finally {
      await client.close();
    }
  } finally {
    await identity.close();
  }
}

/**
 * A CLI call should fail at once, not after the source's ready timeout,
 * when there is plainly no identity to be had: no SVID directory set and no
 * Workload API socket file. (Servers keep waiting instead: an agent may
 * start after them.)
 */
export async function requireIdentityAvailable(config: PilotConfig): Promise<void> {
  if (config.identity.svidDir !== undefined) return;
  const socket = config.identity.endpointSocket;
  if (!socket.startsWith("unix://")) return;
  const path = socket.slice("unix://".length);
  try {
    await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CliError(
        `no SPIFFE identity: SPIKE_SVID_DIR is not set and there is no Workload API socket at ${path} ` +
          "(set SPIKE_SVID_DIR, or SPIFFE_ENDPOINT_SOCKET to a running SPIRE agent; with 'spike dev', source its pilot.env)",
      );
    }
  }
}
