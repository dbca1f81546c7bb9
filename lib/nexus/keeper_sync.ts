/**
 * Nexus ↔ Keepers: at start, gather shards from the Keepers until the
 * threshold is met and rebuild the root key; afterwards, push every Keeper
 * its shard on a fixed interval (and right after a key is installed), so a
 * restarted Keeper is rehydrated.
 *
 * @module
 */
import { PATHS } from "../api/paths.ts";
import { combineShares, type Share, splitSecret } from "../crypto/shamir.ts";
import { isValidScalar } from "../crypto/scalar.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Transport } from "../client/transport.ts";
import type { NexusDeps } from "./deps.ts";
import { installRootKey } from "./key_installer.ts";

/** Settings of the Keeper exchange. */
export interface KeeperSyncOptions {
  /** Keeper base URLs; position i holds share index i+1. */
  readonly peers: readonly string[];
  /** Shares needed to rebuild the key. */
  readonly threshold: number;
  /** How often shards are pushed, in ms. */
  readonly pushIntervalMs: number;
  /** Largest wait between recovery attempts, in ms (default 5000). */
  readonly maxBackoffMs?: number;
  /** First wait between recovery attempts, in ms (default 100). */
  readonly initialBackoffMs?: number;
}

/** A running exchange; `stop()` ends its timers. */
export interface KeeperSync {
  /** Resolves when a root key is installed (by the Keepers or a restore). */
  readonly recovered: Promise<void>;
  /** Pushes shards to every Keeper now; resolves with how many accepted. */
  pushNow(): Promise<number>;
  /** Stops recovery and pushes. */
  stop(): void;
}

/** Starts recovering the key from the Keepers, then pushing shards. */
export function startKeeperSync(
  deps: Pick<NexusDeps, "store" | "keys" | "random" | "log">,
  transport: Transport,
  options: KeeperSyncOptions,
): KeeperSync {
  const { peers, threshold, pushIntervalMs } = options;
  const maxBackoff = options.maxBackoffMs ?? 5000;
  let stopped = false;
  let wake: (() => void) | undefined;
  let pushTimer: ReturnType<typeof setInterval> | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const fetchShard = async (url: string, index: number): Promise<Share | undefined> => {
    try {
      const response = await transport.post(`${url}${PATHS.keeperShard}`, "{}", { "content-type": "application/json" });
      if (response.status !== 200) return undefined;
      const values = JSON.parse(new TextDecoder().decode(response.body))?.shard;
      if (!Array.isArray(values) || values.length !== 32) return undefined;
      const value = Uint8Array.from(values.map((v) => Number(v) & 0xff));
      values.fill(0);
      if (!isValidScalar(value)) {
        zeroize(value);
        return undefined;
      }
      return { index, value };
    } catch (error) {
      deps.log.debug("keeper unreachable", { keeper: url, error: (error as Error).message });
      return undefined;
    }
  };

  const pushNow = async (): Promise<number> => {
    if (!deps.keys.ready) return 0;
    const shares = deps.keys.withRootKey((root) => splitSecret(root, peers.length, threshold));
    try {
      const results = await Promise.all(shares.map(async (share, i) => {
        const body = JSON.stringify({ shard: Array.from(share.value) });
        try {
          const response = await transport.post(`${peers[i]}${PATHS.keeperContribute}`, body, {
            "content-type": "application/json",
          });
          if (response.status === 200) return 1;
          deps.log.warn("keeper refused its shard", { keeper: peers[i], status: response.status });
        } catch (error) {
          deps.log.warn("keeper unreachable for shard push", { keeper: peers[i], error: (error as Error).message });
        }
        return 0;
      }));
      return results.reduce<number>((a, b) => a + b, 0);
    } finally {
      for (const share of shares) zeroize(share.value);
    }
  };

  const recover = async (): Promise<void> => {
    let backoff = options.initialBackoffMs ?? 100;
    while (!stopped && !deps.keys.ready) {
      const found = (await Promise.all(peers.map((url, i) => fetchShard(url, i + 1))))
        .filter((s): s is Share => s !== undefined);
      if (!deps.keys.ready && found.length >= threshold) {
        let rootKey: Uint8Array | undefined;
        try {
          rootKey = combineShares(found.slice(0, threshold));
          const result = await installRootKey(deps, rootKey);
          if (result === "installed") deps.log.info("root key rebuilt from keepers", { shards: found.length });
        } catch (error) {
          deps.log.error("keeper shards did not combine", { error: (error as Error).message });
        } finally {
          zeroize(rootKey);
        }
      } else if (!deps.keys.ready) {
        deps.log.info("waiting for keeper shards", { have: found.length, need: threshold });
      }
      for (const share of found) zeroize(share.value);
      if (deps.keys.ready || stopped) break;
      await sleep(backoff);
      backoff = Math.min(maxBackoff, backoff * 2);
    }
  };

  const unsubscribe = deps.keys.onInstall(() => {
    // A new key (rebuilt or restored) re-seeds every Keeper at once.
    void pushNow();
  });
  const recovered = recover().then(() => {
    if (stopped) return;
    pushTimer = setInterval(() => void pushNow(), pushIntervalMs);
  });

  return {
    recovered,
    pushNow,
    stop() {
      stopped = true;
      unsubscribe();
      wake?.();
      if (pushTimer !== undefined) clearInterval(pushTimer);
    },
  };
}
