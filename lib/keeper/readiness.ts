/**
 * A Keeper's state for the service manager: it does its job as soon as it
 * listens (Nexus and Bootstrap must reach it to hand it a shard), and the
 * status line says whether it holds one.
 *
 * @module
 */
import type { Readiness } from "../systemd/service_notifier.ts";
import type { ShardHolder } from "./shard_holder.ts";

/** Always ready; the status says whether a shard is held. */
export function keeperReadiness(shard: ShardHolder, port: number): Promise<Readiness> {
  return Promise.resolve({
    ready: true,
    status: shard.held
      ? `holding a shard; listening on port ${port}`
      : `listening on port ${port}; no shard yet (bootstrap or Nexus hands it one)`,
  });
}
