/**
 * Nexus ↔ Keepers: at start, gather shards from the Keepers until the
 * threshold is met and rebuild the root key of every version the store
 * needs (one, or two while a rotation is sealing); afterwards, push every
 * Keeper its shards on a fixed interval (and right after a key is
 * installed), so a restarted Keeper is rehydrated; and keep this Nexus's
 * keys in line with the store's key state when another Nexus rotates.
 *
 * Shards always travel with their root key version (`keeper_client.ts`),
 * and a version's key is accepted only when it opens that version's check
 * value, so shares of different keys are never combined into a key that is
 * used. A Keeper that does not keep versions apart (SPIKE's) is found out
 * from its first answer and from then on only gets the shard of the
 * version every record is sealed under (the current one; the new one once
 * a rotation has finished), so a rotation never overwrites the only shard
 * it holds with one of a key that is not settled yet. Its shard is
 * unversioned: at recovery it is tried with every version, and combinations
 * that do not open the version's check value are skipped.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { combineShares, type Share, splitSecret } from "../crypto/shamir.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Transport } from "../client/transport.ts";
import { INITIAL_KEY_STATE } from "../store/key_state.ts";
import type { KeyState } from "../store/types.ts";
import type { NexusDeps } from "./deps.ts";
import { type ContributeAnswer, contributeShard, fetchShard } from "./keeper_client.ts";
import type { KeeperStatus } from "./keeper_status.ts";
import { offerRootKey } from "./key_installer.ts";
import { checkVersion, identifyRootKey, versionsNeeded } from "./key_versions.ts";

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
  /** Where rounds and pushes are noted for `GET /ready` and `/metrics` (optional). */
  readonly status?: KeeperStatus;
  /**
   * How often the store's key state is read to notice a rotation made by
   * another Nexus, in ms (default: the push interval, at most 5 s).
   */
  readonly keyStatePollMs?: number;
}

/** What Nexus knows of one Keeper. */
export interface KeeperView {
  /** Base URL. */
  readonly url: string;
  /** Its share index. */
  readonly index: number;
  /** Whether it keeps key versions apart (ours); `false`: SPIKE's; absent: not heard from yet. */
  readonly versioned?: boolean;
  /** The key versions it said it holds at the last push (versioned Keepers only). */
  readonly versions: readonly number[];
  /** When it last took a shard (RFC 3339). */
  readonly lastAccepted?: string;
  /** Why the last push to it failed, if it did. */
  readonly lastError?: string;
}

/** A running exchange; `stop()` ends its timers. */
export interface KeeperSync {
  /** Resolves when Nexus holds its keys (from the Keepers or a restore), or at `stop()`. */
  readonly recovered: Promise<void>;
  /** Pushes shards to every Keeper now; resolves with how many took the shard of the settled version. */
  pushNow(): Promise<number>;
  /**
   * Hands every Keeper that keeps versions apart its shard of `version`
   * (held by this Nexus); resolves how many hand exactly that share back
   * when asked for the version. Keepers not heard from yet are first asked
   * (with the settled version's shard) whether they keep versions apart.
   */
  distribute(version: number): Promise<number>;
  /**
   * Hands every Keeper its shard of `version` and tells it to drop lower
   * versions; resolves how many took it.
   */
  retireBelow(version: number): Promise<number>;
  /** Fetches version `version`'s shards and rebuilds its key if they open its check value (the caller zeroes it). */
  fetchKey(state: KeyState, version: number): Promise<Uint8Array | undefined>;
  /**
   * Brings this Nexus's keys in line with the store's key state: fetches
   * versions it lacks, switches the write version, drops retired versions.
   * Calls made together share one run. Resolves whether it now holds every
   * version the store needs.
   */
  catchUp(): Promise<boolean>;
  /** What is known of each Keeper. */
  keepers(): KeeperView[];
  /**
   * Stops recovery, pushes and polling. Resolves once no store write of the
   * exchange is in flight, so the store can be closed; calls to Keepers
   * still in flight end on their own (closing the transport cuts most
   * short) and change nothing afterwards.
   */
  stop(): Promise<void>;
}

/**
 * Most threshold-sized subsets of the fetched shards tried per version and
 * round. Keepers that disagree (one was handed a shard of another key) are
 * worked around by trying other subsets; the cap bounds the work for large
 * share counts.
 */
const MAX_SUBSETS_PER_ROUND = 64;

interface MutableView {
  url: string;
  index: number;
  versioned?: boolean;
  versions: number[];
  lastAccepted?: string;
  lastError?: string;
}

/** Starts recovering the keys from the Keepers, then pushing shards and following the key state. */
export function startKeeperSync(
  deps: Pick<NexusDeps, "store" | "keys" | "random" | "log"> & { readonly clock?: () => Date },
  transport: Transport,
  options: KeeperSyncOptions,
): KeeperSync {
  const { peers, threshold, pushIntervalMs } = options;
  const { keys, log } = deps;
  const clock = deps.clock ?? (() => new Date());
  const maxBackoff = options.maxBackoffMs ?? 5000;
  const views: MutableView[] = peers.map((url, i) => ({ url, index: i + 1, versions: [] }));
  let stopped = false;
  let wake: (() => void) | undefined;
  let timers: ReturnType<typeof setInterval>[] = [];
  let pushing: Promise<number> | undefined;
  let catchingUp: Promise<boolean> | undefined;
  let installing: Promise<unknown> | undefined;

  const keyState = async (): Promise<KeyState> => deps.store ? await deps.store.keyState() : INITIAL_KEY_STATE;

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

  /**
   * Asks every Keeper at once for its shard of `version` (its own, or an
   * unversioned one that may belong to it). Each time a shard arrives and
   * `threshold` are in, `attempt` runs on the shards in so far (attempts
   * one after the other); the gathering ends as soon as one returns a value,
   * without waiting for the other Keepers — a slow or hung Keeper does not
   * hold a start up — or once every Keeper answered. Every shard is zeroed
   * before this resolves; one arriving later is zeroed unused.
   */
  const gather = async <T>(
    version: number,
    attempt: (found: readonly Share[]) => Promise<T | undefined>,
  ): Promise<{ have: number; value?: T }> => {
    const found: Share[] = [];
    let value: T | undefined;
    let over = false;
    let end!: () => void;
    const ended = new Promise<void>((resolve) => end = resolve);
    let attempts: Promise<void> = Promise.resolve();
    const arrivals = peers.map(async (url, i) => {
      let shard;
      try {
        shard = await fetchShard(transport, url, version);
        options.status?.recordContact(i, true);
      } catch (error) {
        options.status?.recordContact(i, false);
        log.debug("no usable shard from keeper", { keeper: url, error: (error as Error).message });
        return;
      }
      if (!shard) return;
      if (over || stopped || (shard.keyVersion !== undefined && shard.keyVersion !== version)) {
        return zeroize(shard.value);
      }
      found.push({ index: i + 1, value: shard.value });
      if (found.length < threshold) return;
      const shares = [...found];
      attempts = attempts.then(async () => {
        if (over || stopped || value !== undefined) return;
        value = await attempt(shares);
        if (value !== undefined) end();
      });
    });
    void Promise.all(arrivals).then(() => attempts).then(end, end);
    await ended;
    over = true;
    await attempts.catch(() => {});
    for (const share of found) zeroize(share.value);
    return { have: found.length, ...(value === undefined ? {} : { value }) };
  };

  /**
   * Tries threshold-sized subsets of `found` until one rebuilds a key that
   * opens version `version`'s check value (or, in a store without any, the
   * first key of a new store). The caller zeroes `found` and the result.
   */
  const combine = async (found: readonly Share[], state: KeyState, version: number) => {
    let tried = 0;
    for (const subset of subsets(found, threshold)) {
      if (stopped || tried++ >= MAX_SUBSETS_PER_ROUND) break;
      let rootKey: Uint8Array;
      try {
        rootKey = combineShares(subset);
      } catch (error) {
        // Valid shares of different keys may interpolate to zero.
        log.debug("keeper shards did not combine", { error: (error as Error).message });
        continue;
      }
      if (!deps.store || await keyFits(rootKey, state, version)) return rootKey;
      zeroize(rootKey);
    }
    return undefined;
  };

  const keyFits = async (rootKey: Uint8Array, state: KeyState, version: number): Promise<boolean> => {
    const store = deps.store!;
    if ((await checkVersion(store, state, rootKey, version)).result === "match") return true;
    return version === 1 && (await identifyRootKey(store, state, rootKey)).kind === "new";
  };

  const fetchKey = async (state: KeyState, version: number): Promise<Uint8Array | undefined> => {
    try {
      const gathered = await gather(version, (found) => combine(found, state, version));
      return gathered.value;
    } catch (error) {
      log.debug("keeper shards could not be combined", { error: (error as Error).message, keyVersion: version });
      return undefined;
    }
  };

  /** One recovery round: rebuild and offer every version the store needs that is not held. */
  const recoverRound = async (): Promise<void> => {
    const state = await keyState();
    const needed = versionsNeeded(state);
    for (const version of [...needed.required, ...needed.optional]) {
      if (stopped || keys.ready || keys.holds(version)) continue;
      const required = needed.required.includes(version);
      const { have, value: rootKey } = await gather(version, (found) => combine(found, state, version));
      if (version === needed.write) options.status?.recordRound(have);
      if (!rootKey) {
        if (!required) continue;
        if (have < threshold) {
          log.info("waiting for keeper shards", { have, need: threshold, keyVersion: version });
        } else {
          log.error("keeper shards do not rebuild the root key of this Nexus's data", {
            have,
            need: threshold,
            keyVersion: version,
          });
        }
        continue;
      }
      try {
        if (stopped || keys.ready) return;
        const offer = await (installing = offerRootKey(deps, rootKey));
        if (offer.result === "installed" || offer.result === "pending") {
          log.info("root key rebuilt from keepers", { shards: have, keyVersion: version });
        }
      } finally {
        zeroize(rootKey);
      }
    }
  };

  const recover = async (): Promise<void> => {
    let backoff = options.initialBackoffMs ?? 100;
    while (!stopped && !keys.ready) {
      try {
        await recoverRound();
      } catch (error) {
        // The store failed (not the shards): try again next round.
        log.error("could not install the root key rebuilt from keepers", { error: (error as Error).message });
      }
      if (keys.ready || stopped) break;
      await sleep(backoff);
      backoff = Math.min(maxBackoff, backoff * 2);
    }
  };

  /** Hands Keeper `i` its share of held version `version`. */
  const pushTo = async (i: number, share: Share, version: number, retire?: number) => {
    const view = views[i]!;
    try {
      const answer = await contributeShard(transport, view.url, share.value, version, retire);
      options.status?.recordKeeperPush(i, answer.accepted ? "ok" : "refused");
      if (answer.accepted) {
        view.versioned = answer.versioned;
        if (answer.versioned) view.versions = [...answer.versions];
        view.lastAccepted = clock().toISOString();
        delete view.lastError;
      } else {
        view.lastError = `refused (${answer.status})`;
        log.warn("keeper refused its shard", { keeper: view.url, status: answer.status, keyVersion: version });
      }
      return answer;
    } catch (error) {
      options.status?.recordKeeperPush(i, "unreachable");
      view.lastError = (error as Error).message;
      log.warn("keeper unreachable for shard push", { keeper: view.url, error: (error as Error).message });
      return undefined;
    }
  };

  /** The shares of held version `version`, one per Keeper (the caller zeroes them). */
  const sharesOf = (version: number): Share[] =>
    keys.withRootKey((root) => splitSecret(root, peers.length, threshold), version);

  /** Pushes `version` to the Keepers `which` selects; resolves every Keeper's answer. */
  const pushVersion = async (
    version: number,
    which: (view: MutableView) => boolean,
    retire?: number,
  ): Promise<(ContributeAnswer | undefined)[]> => {
    const shares = sharesOf(version);
    try {
      return await Promise.all(
        shares.map((share, i) => which(views[i]!) ? pushTo(i, share, version, retire) : undefined),
      );
    } finally {
      for (const share of shares) zeroize(share.value);
    }
  };

  const push = async (): Promise<number> => {
    if (!keys.ready || stopped) return 0;
    let state: KeyState | undefined;
    try {
      state = await keyState();
    } catch (error) {
      log.warn("key state unreadable: pushing the write key only", { error: (error as Error).message });
    }
    if (state && !holdsAll(state)) await catchUp();
    if (!keys.ready || stopped) return 0;
    // The settled version: every record is under it, so every Keeper may hold it.
    const settled = state?.currentVersion ?? keys.writeVersion;
    if (!keys.holds(settled)) return 0;
    const retire = state?.phase === "idle" ? settled : undefined;
    const accepted = acceptedCount(await pushVersion(settled, () => true, retire));
    options.status?.recordPush(accepted);
    // The target of a rotation only goes to Keepers that keep versions apart.
    const target = state?.phase !== "idle" ? state?.targetVersion ?? undefined : undefined;
    if (target !== undefined && keys.holds(target)) await pushVersion(target, (view) => view.versioned === true);
    return accepted;
  };

  // One push at a time: a slow Keeper must not pile pushes up behind the interval.
  const pushNow = (): Promise<number> => {
    pushing ??= push().finally(() => pushing = undefined);
    return pushing;
  };

  const distribute = async (version: number): Promise<number> => {
    const state = await keyState();
    if (views.some((view) => view.versioned === undefined) && keys.holds(state.currentVersion)) {
      // Learn which Keepers keep versions apart with a shard they may hold anyway.
      await pushVersion(state.currentVersion, (view) => view.versioned === undefined);
    }
    await pushVersion(version, (view) => view.versioned === true);
    // Confirmed means: the Keeper hands back exactly the share it was given for this version.
    const shares = sharesOf(version);
    try {
      const confirmed = await Promise.all(shares.map(async (share, i) => {
        const view = views[i]!;
        if (view.versioned !== true) return false;
        try {
          const held = await fetchShard(transport, view.url, version);
          if (!held) return false;
          try {
            return held.keyVersion === version && constantTimeEqual(held.value, share.value);
          } finally {
            zeroize(held.value);
          }
        } catch {
          return false;
        }
      }));
      return confirmed.filter(Boolean).length;
    } finally {
      for (const share of shares) zeroize(share.value);
    }
  };

  const retireBelow = async (version: number): Promise<number> => {
    return acceptedCount(await pushVersion(version, () => true, version));
  };

  const holdsAll = (state: KeyState): boolean => {
    const needed = versionsNeeded(state);
    if (!needed.required.every((v) => keys.holds(v))) return false;
    if (keys.ready && keys.writeVersion !== needed.write) return false;
    return keys.heldVersions().every((v) => needed.required.includes(v) || needed.optional.includes(v));
  };

  const follow = async (): Promise<boolean> => {
    if (!deps.store || !keys.ready) return keys.ready;
    const state = await deps.store.keyState();
    const needed = versionsNeeded(state);
    for (const version of [...needed.required, ...needed.optional]) {
      if (stopped || keys.holds(version)) continue;
      const rootKey = await fetchKey(state, version);
      if (!rootKey) {
        if (needed.required.includes(version)) {
          log.error("the store uses a root key version the Keepers do not hand out (yet)", { keyVersion: version });
        }
        continue;
      }
      try {
        await keys.add(rootKey, version);
      } finally {
        zeroize(rootKey);
      }
      log.info("root key version fetched from keepers", { keyVersion: version });
    }
    if (!needed.required.every((v) => keys.holds(v))) return false;
    if (keys.writeVersion !== needed.write) {
      keys.useForWrites(needed.write);
      log.info("new data is sealed under another root key version now", { keyVersion: needed.write });
    }
    for (const version of keys.heldVersions()) {
      if (needed.required.includes(version) || needed.optional.includes(version)) continue;
      keys.drop(version);
      log.info("retired root key version dropped from memory", { keyVersion: version });
    }
    return true;
  };

  const catchUp = (): Promise<boolean> => {
    catchingUp ??= follow().finally(() => catchingUp = undefined);
    return catchingUp;
  };

  /**
   * Reads the key state; a change made by another Nexus is followed at once,
   * and a catch-up that could not finish (a Keeper slow to answer) is tried
   * again at the next poll.
   */
  const poll = async () => {
    if (!deps.store || !keys.ready || stopped) return;
    try {
      if (!holdsAll(await deps.store.keyState())) await catchUp();
    } catch (error) {
      log.debug("key state poll failed", { error: (error as Error).message });
    }
  };

  const unsubscribe = keys.onInstall(() => {
    // A new key (rebuilt or restored) re-seeds every Keeper at once.
    wake?.();
    void pushNow();
  });
  const recovered = recover().then(() => {
    if (stopped) return;
    timers = [
      setInterval(() => void pushNow(), pushIntervalMs),
      setInterval(() => void poll(), options.keyStatePollMs ?? Math.min(pushIntervalMs, 5000)),
    ];
  });

  return {
    recovered,
    pushNow,
    distribute,
    retireBelow,
    fetchKey,
    catchUp,
    keepers: () => views.map((view) => ({ ...view, versions: [...view.versions] })),
    async stop() {
      stopped = true;
      unsubscribe();
      wake?.();
      for (const timer of timers) clearInterval(timer);
      await installing?.catch(() => {});
      await catchingUp?.catch(() => {});
    },
  };
}

/** How many Keepers took their shard. */
function acceptedCount(answers: readonly (ContributeAnswer | undefined)[]): number {
  return answers.filter((a) => a?.accepted).length;
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
