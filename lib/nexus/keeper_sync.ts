/**
 * Nexus ↔ Keepers: at start, gather shards from the Keepers until the
 * threshold is met and rebuild the root key; afterwards, push every Keeper
 * its shard on a fixed interval (and right after a key is installed), so a
 * restarted Keeper is rehydrated.
 *
 * @module
 */
import { PATHS } from "../api/paths.ts";
import { shardBytes } from "../api/validate.ts";
import { combineShares, type Share, splitSecret } from "../crypto/shamir.ts";
import { isValidScalar } from "../crypto/scalar.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Transport } from "../client/transport.ts";
import type { NexusDeps } from "./deps.ts";
import { checkRootKey } from "./key_check.ts";
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
  /** Resolves when a root key is installed (by the Keepers or a restore), or at `stop()`. */
  readonly recovered: Promise<void>;
  /** Pushes shards to every Keeper now; resolves with how many accepted. */
  pushNow(): Promise<number>;
  /**
   * Stops recovery and pushes. Resolves once no store write of the exchange
   * is in flight, so the store can be closed; calls to Keepers still in
   * flight end on their own (closing the transport cuts most short) and
   * change nothing afterwards.
   */
  stop(): Promise<void>;
}

/**
 * Most threshold-sized subsets of the fetched shards tried per recovery
 * round. Keepers that disagree (one was handed a shard of another key) are
 * worked around by trying other subsets; the cap bounds the work for large
 * share counts.
 */
const MAX_SUBSETS_PER_ROUND = 64;

const JSON_HEADERS = Object.freeze({ "content-type": "application/json" });

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
  let pushing: Promise<number> | undefined;
  let installing: Promise<unknown> | undefined;

  // A sleep that an installed key (or stop) cuts short, so a restore does
  // not leave the recovery loop waiting out its backoff.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const fetchShard = async (url: string, index: number): Promise<Share | undefined> => {
    let value: Uint8Array | undefined;
    try {
      const response = await transport.post(`${url}${PATHS.keeperShard}`, "{}", { ...JSON_HEADERS });
      // 404 (no shard yet) is the normal answer of a fresh Keeper.
      if (response.status !== 200) return undefined;
      const parsed = JSON.parse(new TextDecoder().decode(response.body));
      const values = parsed?.shard;
      value = shardBytes(values);
      if (Array.isArray(values)) values.fill(0);
      if (!isValidScalar(value)) throw new Error("shard is not a valid share value");
      return { index, value };
    } catch (error) {
      zeroize(value);
      deps.log.debug("no usable shard from keeper", { keeper: url, error: (error as Error).message });
      return undefined;
    }
  };

  const push = async (): Promise<number> => {
    if (!deps.keys.ready || stopped) return 0;
    const shares = deps.keys.withRootKey((root) => splitSecret(root, peers.length, threshold));
    try {
      const results = await Promise.all(shares.map(async (share, i) => {
        const body = JSON.stringify({ shard: Array.from(share.value) });
        try {
          const response = await transport.post(`${peers[i]}${PATHS.keeperContribute}`, body, { ...JSON_HEADERS });
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

  // One push at a time: a slow Keeper must not pile pushes up behind the interval.
  const pushNow = (): Promise<number> => {
    pushing ??= push().finally(() => pushing = undefined);
    return pushing;
  };

  /** Tries threshold-sized subsets of `found` until one gives the key of this Nexus's data. */
  const tryInstall = async (found: readonly Share[]): Promise<"installed" | "mismatch" | "failed"> => {
    let tried = 0;
    for (const subset of subsets(found, threshold)) {
      if (deps.keys.ready || stopped || tried++ >= MAX_SUBSETS_PER_ROUND) break;
      let rootKey: Uint8Array | undefined;
      try {
        try {
          rootKey = combineShares(subset);
        } catch (error) {
          // Valid shares of different keys may interpolate to zero.
          deps.log.debug("keeper shards did not combine", { error: (error as Error).message });
          continue;
        }
        // Checked here first so a bad subset is skipped quietly; the
        // installer checks again (the store may have changed meanwhile).
        if (deps.store && (await checkRootKey(deps.store, rootKey)).result === "mismatch") continue;
        if (deps.keys.ready) break;
        if (await installRootKey(deps, rootKey) === "installed") {
          deps.log.info("root key rebuilt from keepers", { shards: found.length });
          return "installed";
        }
      } catch (error) {
        // The store failed (not the shards): try again next round.
        deps.log.error("could not install the root key rebuilt from keepers", { error: (error as Error).message });
        return "failed";
      } finally {
        zeroize(rootKey);
      }
    }
    if (deps.keys.ready) return "installed";
    return stopped ? "failed" : "mismatch";
  };

  const recover = async (): Promise<void> => {
    let backoff = options.initialBackoffMs ?? 100;
    while (!stopped && !deps.keys.ready) {
      const found = (await Promise.all(peers.map((url, i) => fetchShard(url, i + 1))))
        .filter((s): s is Share => s !== undefined);
      try {
        if (deps.keys.ready || stopped) break;
        if (found.length < threshold) {
          deps.log.info("waiting for keeper shards", { have: found.length, need: threshold });
        } else if (await (installing = tryInstall(found)) === "mismatch") {
          deps.log.error("keeper shards do not rebuild the root key of this Nexus's data", {
            have: found.length,
            need: threshold,
          });
        }
      } finally {
        for (const share of found) zeroize(share.value);
      }
      if (deps.keys.ready || stopped) break;
      await sleep(backoff);
      backoff = Math.min(maxBackoff, backoff * 2);
    }
  };

  const unsubscribe = deps.keys.onInstall(() => {
    // A new key (rebuilt or restored) re-seeds every Keeper at once.
    wake?.();
    void pushNow();
  });
  const recovered = recover().then(() => {
    if (stopped) return;
    pushTimer = setInterval(() => void pushNow(), pushIntervalMs);
  });

  return {
    recovered,
    pushNow,
    async stop() {
      stopped = true;
      unsubscribe();
      wake?.();
      if (pushTimer !== undefined) clearInterval(pushTimer);
      await installing?.catch(() => {});
    },
  };
}

/** The `size`-element subsets of `items`, in lexicographic order of position. */
function* subsets<T>(items: readonly T[], size: number): Generator<T[]> {
  if (size < 1 || size > items.length) return;
  const at = Array.from({ length: size }, (_, i) => i);
  while (true) {
    yield at.map((i) => items[i]!);
    let k = size - 1;
    while (k >= 0 && at[k] === items.length - size + k) k--;
    if (k < 0) return;
    at[k]!++;
    for (let j = k + 1; j < size; j++) at[j] = at[j - 1]! + 1;
  }
}
