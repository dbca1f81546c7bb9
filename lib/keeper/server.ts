/**
 * Starts a Keeper: one shard in memory, served over mTLS.
 *
 * @module
 */
import type { KeeperConfig } from "../config/spike_config.ts";
import { toTrustRoots } from "../config/trust_roots.ts";
import type { Logger } from "../log/logger.ts";
import { markStartup } from "../log/startup.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { serveHono } from "../spiffe/mtls_server.ts";
import { createKeeperApp, KEEPER_MAX_BODY_BYTES } from "./app.ts";
import { KeeperMetrics } from "./metrics.ts";
import { ShardHolder } from "./shard_holder.ts";

/** A running Keeper. */
export interface RunningKeeper {
  /** The bound TLS port. */
  readonly port: number;
  /** The shard it holds (tests look at it). */
  readonly shard: ShardHolder;
  /** Stops serving and zeroes the shard. */
  close(): Promise<void>;
}

/** Starts a Keeper and resolves once it listens. */
export async function startKeeper(options: {
  config: KeeperConfig;
  identity: IdentitySource;
  log: Logger;
  /** Show process and runtime metrics on `/metrics` (default true). */
  processMetrics?: boolean;
}): Promise<RunningKeeper> {
  const { config, identity, log } = options;
  await identity.ready();
  markStartup(log, "identity ready");
  const shard = new ShardHolder();
  const metrics = new KeeperMetrics({
    startedAt: Date.now(),
    shardHeld: () => shard.held,
    processMetrics: options.processMetrics ?? true,
  });
  const app = createKeeperApp({ shard, trustRoots: toTrustRoots(config.trustRoots), log, metrics });
  const server = await serveHono(app, {
    identity,
    maxBodyBytes: KEEPER_MAX_BODY_BYTES,
    handshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    maxConnections: config.maxConnections,
    onError: (error) => log.debug("tls", { error: error.message }),
  });
  let port: number;
  try {
    port = await server.listen(config.listen.port, config.listen.host);
  } catch (error) {
    await server.close();
    metrics.close();
    throw error;
  }
  log.info("keeper listening", { port });
  markStartup(log, "listening");
  return {
    port,
    shard,
    async close() {
      await server.close();
      metrics.close();
      shard.clear();
    },
  };
}
