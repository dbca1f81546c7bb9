/**
 * The Keeper HTTP application: `/v1/store/contribute` (Nexus or Bootstrap
 * hands over the shard) and `/v1/store/shard` (Nexus takes it back), plus
 * plain `GET /health`, `GET /ready` (ready once a shard is held) and
 * `GET /metrics` (Prometheus text; see `metrics.ts`). The plain GETs need no
 * client certificate and never show a shard byte.
 *
 * Key versions **[ours]**, additive to SPIKE's contract: `contribute` may
 * carry `"keyVersion": n` (the shard is kept as that version's, beside the
 * others) and `"retireBelow": n` (shards of lower versions, and the
 * unversioned one, are dropped), and then answers `{"keyVersion", "versions"}`
 * so Nexus knows this Keeper keeps versions apart. `shard` may ask for
 * `"keyVersion": n` and answers with the version it hands out; a shard
 * without `keyVersion` in the answer is unversioned (could be any version).
 * Without the fields both routes behave exactly as SPIKE's Keeper.
 *
 * @module
 */
import { Hono } from "hono";
import { ApiError } from "../api/errors.ts";
import { CLIENT_CLOSED_STATUS, ClientClosedError } from "../api/client_closed.ts";
import { PATHS } from "../api/paths.ts";
import * as v from "../api/validate.ts";
import type { Logger } from "../log/logger.ts";
import { noCache } from "../api/no_cache.ts";
import { parseJsonBody, readBodyCapped } from "../api/body.ts";
import type { PeerBindings } from "../nexus/peer.ts";
import { isAllZero } from "../crypto/constant_time.ts";
import { zeroize } from "../crypto/zeroize.ts";
import { isBootstrap, isNexus, type TrustRoots } from "../spiffe/roles.ts";
import { SPIKE_VERSION } from "../version.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import { KeeperMetrics } from "./metrics.ts";
import { type ShardHolder, UNVERSIONED } from "./shard_holder.ts";

/** Largest key version accepted (far above any real one; keeps the field a small integer). */
const MAX_KEY_VERSION = 2 ** 31 - 1;

/** An optional key version field [ours]: absent, or a whole number from 1. */
function optionalVersion(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_KEY_VERSION) {
    throw new ApiError("api_bad_request", `${field} must be a whole number from 1`);
  }
  return value;
}

/** What the Keeper app needs. */
export interface KeeperDeps {
  /** Where the shard lives. */
  readonly shard: ShardHolder;
  /** Accepted trust domains per role. */
  readonly trustRoots: TrustRoots;
  /** Structured log; never given shard bytes. */
  readonly log: Logger;
  /** Request and shard metrics for `GET /metrics` (default: a fresh registry). */
  readonly metrics?: KeeperMetrics;
  /** Wall clock, in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

/** Largest Keeper request body: a 32-integer array fits easily in 4 KiB. */
export const KEEPER_MAX_BODY_BYTES = 4096;

/** Creates the Keeper app. */
export function createKeeperApp(deps: KeeperDeps): Hono<{ Bindings: PeerBindings }> {
  const app = new Hono<{ Bindings: PeerBindings }>();
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? new KeeperMetrics({ startedAt: now(), shardHeld: () => deps.shard.held });

  app.use(async (c, next) => {
    await next();
    metrics.observe(c.req.path, c.res.status);
  });
  app.use(noCache);

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get(
    "/ready",
    (c) =>
      deps.shard.held
        ? c.json({ ready: true, version: SPIKE_VERSION })
        : c.json({ ready: false, reason: "no shard held yet", version: SPIKE_VERSION }, 503),
  );
  app.get("/metrics", async (c) => c.body(await metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));

  app.all("*", async (c) => {
    const path = c.req.path;
    const action = c.req.query("action") ?? "";
    const known = path === PATHS.keeperContribute || path === PATHS.keeperShard;
    if (c.req.method !== "POST" || !known || action !== "") throw new ApiError("api_bad_request");
    const peer = c.env?.peer;
    if (!peer?.ok) throw new ApiError("access_unauthorized", peer ? peer.reason : "no peer identity");
    const fromNexus = isNexus(peer.spiffeId, deps.trustRoots);
    const allowed = path === PATHS.keeperShard ? fromNexus : fromNexus || isBootstrap(peer.spiffeId, deps.trustRoots);
    if (!allowed) {
      // A wrong identity asking a Keeper for anything is worth an operator's eye.
      deps.log.warn("request refused: role not allowed", { caller: peer.spiffeId, path });
      throw new ApiError("access_unauthorized", "role not allowed on this route");
    }
    const body = v.object(parseJsonBody(await readBodyCapped(c.req.raw, KEEPER_MAX_BODY_BYTES)));

    const keyVersion = optionalVersion(body.keyVersion, "keyVersion");
    if (path === PATHS.keeperShard) {
      const held = deps.shard.find(keyVersion);
      if (!held) throw new ApiError("api_not_found", "no shard held");
      try {
        deps.log.info("shard handed out", { to: peer.spiffeId, keyVersion: held.version || null });
        const versioned = held.version === UNVERSIONED ? {} : { keyVersion: held.version };
        return c.json({ shard: Array.from(held.shard), ...versioned });
      } finally {
        zeroize(held.shard);
      }
    }
    const retireBelow = optionalVersion(body.retireBelow, "retireBelow");
    const shard = v.shardBytes(body.shard);
    try {
      // SPIKE's Nexus may push an all-zero shard before it has a key; a
      // Keeper must not let that erase the shard it holds.
      if (!isAllZero(shard)) {
        // Nexus re-sends the same shard on every push; only a change is news.
        const fields = { from: peer.spiffeId, keyVersion: keyVersion ?? null };
        if (deps.shard.set(shard, keyVersion ?? UNVERSIONED)) deps.log.info("shard stored", fields);
        else deps.log.debug("shard refreshed", fields);
        metrics.shardReceived(now());
        // Retiring only after a newer shard is in hand: a Keeper is never left empty by it.
        if (retireBelow !== undefined && keyVersion !== undefined && retireBelow <= keyVersion) {
          const dropped = deps.shard.retireBelow(retireBelow);
          if (dropped.length > 0) {
            deps.log.info("shards of retired root key versions dropped", { versions: dropped.join(", ") });
          }
        }
      }
      if (keyVersion === undefined) return c.json({});
      return c.json({ keyVersion, versions: deps.shard.versions().filter((v) => v !== UNVERSIONED) });
    } finally {
      zeroize(shard);
    }
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json({ err: error.code }, error.status as 400);
    if (error instanceof ClientClosedError) {
      deps.log.debug("request aborted by the client", { path: c.req.path });
      return new Response(null, { status: CLIENT_CLOSED_STATUS });
    }
    deps.log.error("unexpected error", { error: String((error as Error)?.message ?? error) });
    return c.json({ err: "api_internal_error" }, 500);
  });
  return app;
}
