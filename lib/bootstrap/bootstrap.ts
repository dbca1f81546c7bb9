/**
 * Bootstrap, the one-shot that gives a new deployment its root key: make a
 * random key, split it, hand shard i to Keeper i, then prove Nexus rebuilt
 * the same key through `/v1/bootstrap/verify`.
 *
 * Before making a key it asks Nexus what it holds (a throw-away verify call):
 * `503` with `initialized: false` means a new deployment; `503` with
 * `initialized: true` means Nexus keeps data sealed under some earlier key;
 * `400` (ours) or `500` (SPIKE's Nexus) means a key is loaded. Nexus itself never accepts a key that does not
 * open the check value stored with its data, so this probe is a courtesy that
 * stops Bootstrap before it hands the Keepers shards nobody can use.
 *
 * With `skipIfInitialized` (a Kubernetes Job or a systemd oneshot that runs
 * at every install or boot) an initialized deployment is success, not an
 * error: a Nexus holding its key means "done"; a Nexus with data but no key
 * yet is waited for (it is usually fetching its shards from the Keepers), and
 * nothing is ever handed out to it.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { encodeBase64 } from "../api/base64.ts";
import { PATHS } from "../api/paths.ts";
import { encryptGcm } from "../crypto/aead.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { generateRootKey } from "../crypto/root_key.ts";
import { splitSecret } from "../crypto/shamir.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Transport, TransportResponse } from "../client/transport.ts";
import type { Logger } from "../log/logger.ts";

/** Why Bootstrap stopped without success. */
export class BootstrapError extends Error {
  /** Creates an error with an operator-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "BootstrapError";
  }
}

/** What Bootstrap needs. */
export interface BootstrapOptions {
  /** Nexus base URL. */
  readonly nexusUrl: string;
  /** Keeper base URLs; Keeper i gets share index i+1. Every one must take its shard. */
  readonly keeperPeers: readonly string[];
  /** Shamir threshold. */
  readonly threshold: number;
  /**
   * Hand out a new key even though Nexus keeps data sealed under an earlier
   * one. Nexus accepts the new key only once that data is wiped.
   */
  readonly force: boolean;
  /**
   * An initialized deployment is success: exit quietly when Nexus holds its
   * key, wait for it when it has data but no key yet. Never hands out a key
   * to a Nexus that has data. Not together with `force`.
   */
  readonly skipIfInitialized?: boolean;
  /** mTLS transport that accepts only Nexus IDs (its own timeout bounds each call). */
  readonly nexus: Transport;
  /** mTLS transport that accepts only Keeper IDs (its own timeout is the per-Keeper timeout). */
  readonly keepers: Transport;
  /** Random source. */
  readonly random: RandomBytes;
  /** Structured log (never given key material). */
  readonly log: Logger;
  /** Overall deadline in ms (default 120 s). */
  readonly timeoutMs?: number;
  /** First wait between retries in ms (default 200; doubles up to 5 s, 2 s while verifying). */
  readonly initialBackoffMs?: number;
  /** Clock for the deadline (default `Date.now`). */
  readonly now?: () => number;
}

const JSON_HEADERS = Object.freeze({ "content-type": "application/json" });

/** What the probe learned about Nexus: no key and no data, a key loaded, or data sealed under a key it lacks. */
export type NexusState = "empty" | "has-key" | "has-data";

/** Deadline, clock and cancellation shared by one run. */
interface Run {
  readonly options: BootstrapOptions;
  readonly deadline: number;
  readonly now: () => number;
  readonly initialBackoff: number;
}

/** Thrown inside a retry loop that another failure has cancelled. */
class Cancelled extends Error {}

/** How a successful run ended. */
export type BootstrapOutcome =
  /** A new root key was handed out and Nexus proved it holds it. */
  | "bootstrapped"
  /** `skipIfInitialized`: Nexus already held its root key; nothing was made or handed out. */
  | "already-initialized";

/**
 * Runs Bootstrap; resolves when Nexus has proven it holds the new key (or,
 * with `skipIfInitialized`, that it holds its existing one).
 *
 * @throws {BootstrapError} with an operator-facing reason otherwise
 */
export async function runBootstrap(options: BootstrapOptions): Promise<BootstrapOutcome> {
  const now = options.now ?? Date.now;
  const run: Run = {
    options,
    now,
    deadline: now() + (options.timeoutMs ?? 120_000),
    initialBackoff: options.initialBackoffMs ?? 200,
  };
  const { log } = options;
  if (options.skipIfInitialized && options.force) {
    throw new BootstrapError("skipping an initialized deployment and forcing a new key contradict each other");
  }

  const state = await probeNexus(run);
  if (options.skipIfInitialized && state !== "empty") {
    await waitForExistingKey(run, state);
    log.info("Nexus already holds its root key: nothing to bootstrap");
    return "already-initialized";
  }
  if (state === "has-key") {
    // A running Nexus never swaps its key, so a new one could never be
    // verified; handing it out would only leave the Keepers holding shards
    // of a key nobody uses until Nexus pushes its own back.
    throw new BootstrapError(
      "Nexus is already running with a root key and never replaces it, so there is nothing to bootstrap" +
        (options.force
          ? " (SPIKE_BOOTSTRAP_FORCE does not change that: to start over, stop Nexus and every Keeper, " +
            "wipe Nexus's data, start them again and rerun bootstrap)"
          : ""),
    );
  }
  if (state === "has-data") {
    if (!options.force) {
      throw new BootstrapError(
        "Nexus already keeps data sealed under a root key; refusing to make a new one. " +
          "If its Keepers lost their shards, use 'spike operator restore'; " +
          "to throw that data away and start over, set SPIKE_BOOTSTRAP_FORCE=true",
      );
    }
    log.warn(
      "Nexus keeps data sealed under another root key; handing out a new key because SPIKE_BOOTSTRAP_FORCE=true " +
        "(Nexus accepts it only once its data is wiped)",
    );
  }

  const rootKey = generateRootKey(options.random);
  try {
    await distributeAndVerify(run, rootKey);
  } finally {
    zeroize(rootKey);
  }
  log.info("bootstrap complete: Nexus holds the new root key");
  return "bootstrapped";
}

/**
 * Waits until a Nexus that keeps data has its key back (from its Keepers,
 * or a restore), probing with doubling backoff until the deadline.
 */
async function waitForExistingKey(run: Run, first: NexusState): Promise<void> {
  let state = first;
  let backoff = run.initialBackoff;
  while (state !== "has-key") {
    if (state === "empty") {
      // Only a wipe between two probes gets here; bootstrapping it now would
      // race whoever wiped it.
      throw new BootstrapError(
        "Nexus lost its data while bootstrap waited for it to load its key; run bootstrap again",
      );
    }
    if (run.now() + backoff > run.deadline) {
      throw new BootstrapError(
        "Nexus keeps data sealed under a root key but has not loaded that key before the deadline " +
          "(SPIKE_BOOTSTRAP_TIMEOUT): too few Keepers hold their shards. Bring the Keepers back, " +
          "or use 'spike operator restore' with the recovery shards; bootstrap never replaces that key",
      );
    }
    run.options.log.info("waiting for Nexus to load its existing root key from the Keepers");
    await sleep(backoff);
    backoff = Math.min(2000, backoff * 2);
    state = await probeNexus(run);
  }
}

/**
 * Asks Nexus what Bootstrap would ask first (retrying until it answers or
 * the deadline passes), without changing anything: `spike dev unlock` uses
 * it to choose between bootstrap and restore.
 */
export async function probeNexusState(options: BootstrapOptions): Promise<NexusState> {
  const now = options.now ?? Date.now;
  return await probeNexus({
    options,
    now,
    deadline: now() + (options.timeoutMs ?? 120_000),
    initialBackoff: options.initialBackoffMs ?? 200,
  });
}

/** Asks Nexus whether it already has a key (or data) before making one. */
async function probeNexus(run: Run): Promise<NexusState> {
  const { options } = run;
  // A verify call with a throw-away ciphertext: 503 means "no key yet",
  // 400 means "a key is loaded and this did not open under it".
  const body = JSON.stringify({
    nonce: encodeBase64(options.random(12)),
    ciphertext: encodeBase64(options.random(32)),
  });
  const response = await retry(
    run,
    `Nexus at ${options.nexusUrl}`,
    () => options.nexus.post(`${options.nexusUrl}${PATHS.bootstrapVerify}`, body, { ...JSON_HEADERS }),
  );
  if (response.status === 503) return parse(response)?.initialized === true ? "has-data" : "empty";
  if (response.status === 400 || response.status === 200) return "has-key";
  // SPIKE's Nexus answers 503 until it has a key, then 500 to a ciphertext
  // that does not open under it: a key is loaded. Taking a 500 so is safe
  // whatever caused it: with a key, nothing is ever handed out.
  if (response.status === 500) return "has-key";
  throw new BootstrapError(`Nexus answered ${describe(response)} to the bootstrap probe`);
}

/**
 * Hands shard i to Keeper i, all in parallel, and verifies Nexus as soon as
 * `threshold` Keepers hold theirs (that is when Nexus can rebuild the key).
 * Keepers still missing keep being retried until the deadline. Verified is
 * success even if a Keeper never took its shard: Nexus re-sends every Keeper
 * its shard on each push, so that one is seeded once it is reachable; the
 * operator is warned.
 */
async function distributeAndVerify(run: Run, rootKey: Uint8Array): Promise<void> {
  const { options } = run;
  const shares = splitSecret(rootKey, options.keeperPeers.length, options.threshold);
  const cancel = new AbortController();
  const delivered = new Set<number>();
  let reached!: () => void;
  const thresholdReached = new Promise<void>((resolve) => reached = resolve);
  try {
    const settled = Promise.allSettled(shares.map(async (share, i) => {
      const url = options.keeperPeers[i]!;
      const body = JSON.stringify({ shard: Array.from(share.value) });
      const response = await retry(
        run,
        `Keeper ${url}`,
        () => options.keepers.post(`${url}${PATHS.keeperContribute}`, body, { ...JSON_HEADERS }),
        cancel.signal,
      );
      if (response.status !== 200) {
        throw new BootstrapError(`Keeper ${url} refused its shard: ${describe(response)}`);
      }
      options.log.info("shard delivered", { keeper: url, index: share.index });
      delivered.add(i);
      if (delivered.size >= options.threshold) reached();
    }));
    const enough = await Promise.race([
      thresholdReached.then(() => true),
      settled.then(() => delivered.size >= options.threshold),
    ]);
    if (!enough) {
      throw new BootstrapError(
        `only ${delivered.size} of ${shares.length} Keepers took their shards, ${options.threshold} are needed: ` +
          failureText(await settled),
      );
    }
    try {
      await verify(run, rootKey);
    } catch (error) {
      cancel.abort();
      await settled;
      throw error;
    }
    const failures = failureText(await settled);
    if (failures !== "") {
      options.log.warn(
        `Nexus holds the new key, but not every Keeper took its shard (${failures}); ` +
          "Nexus hands each Keeper its shard on every push, once it is reachable",
      );
    }
  } finally {
    for (const share of shares) zeroize(share.value);
  }
}

function failureText(results: PromiseSettledResult<void>[]): string {
  return results
    .flatMap((r) => r.status === "rejected" && !(r.reason instanceof Cancelled) ? [(r.reason as Error).message] : [])
    .join("; ");
}

/** Proves Nexus rebuilt `rootKey`, waiting while it answers 503 (still collecting shards). */
async function verify(run: Run, rootKey: Uint8Array): Promise<void> {
  const { options, now, deadline } = run;
  const text = options.random(32);
  const nonce = options.random(12);
  try {
    const ciphertext = await encryptGcm(rootKey, nonce, text, new Uint8Array(0));
    const expected = new TextEncoder().encode(bytesToHex(sha256(text)));
    const body = JSON.stringify({ nonce: encodeBase64(nonce), ciphertext: encodeBase64(ciphertext) });
    let backoff = run.initialBackoff;
    while (true) {
      const response = await retry(
        run,
        `Nexus at ${options.nexusUrl}`,
        () => options.nexus.post(`${options.nexusUrl}${PATHS.bootstrapVerify}`, body, { ...JSON_HEADERS }),
      );
      if (response.status === 200) {
        const hash = new TextEncoder().encode(String(parse(response)?.hash ?? ""));
        if (constantTimeEqual(hash, expected)) return;
        throw new BootstrapError("Nexus answered the verification with a wrong hash: it holds a different root key");
      }
      if (response.status === 400) {
        throw new BootstrapError(
          "Nexus loaded a different root key than the one just handed out " +
            "(another Bootstrap ran, or the Keepers held shards of an older key); check the Keepers and rerun",
        );
      }
      if (response.status !== 503) {
        throw new BootstrapError(`Nexus answered ${describe(response)} to the verification`);
      }
      if (now() + backoff > deadline) {
        throw new BootstrapError(
          parse(response)?.initialized === true
            ? "Nexus did not take the new root key: it keeps data sealed under another key " +
              "(wipe its data and restart it, then rerun bootstrap)"
            : "timed out waiting for Nexus to rebuild the root key from the Keepers (is it configured with " +
              "the same SPIKE_NEXUS_KEEPER_PEERS, in the same order?)",
        );
      }
      options.log.info("waiting for Nexus to rebuild the root key");
      await sleep(backoff);
      backoff = Math.min(2000, backoff * 2);
    }
  } finally {
    zeroize(text);
  }
}

/**
 * Retries `call` while the peer is unreachable (connection refused, reset,
 * per-call timeout), with doubling backoff, until the run's deadline.
 */
async function retry(
  run: Run,
  what: string,
  call: () => Promise<TransportResponse>,
  signal?: AbortSignal,
): Promise<TransportResponse> {
  let backoff = run.initialBackoff;
  while (true) {
    if (signal?.aborted) throw new Cancelled();
    try {
      return await call();
    } catch (error) {
      if (signal?.aborted) throw new Cancelled();
      const message = (error as Error).message;
      if (run.now() + backoff > run.deadline) {
        throw new BootstrapError(`could not reach ${what} before the deadline (SPIKE_BOOTSTRAP_TIMEOUT): ${message}`);
      }
      run.options.log.info("waiting for peer", { peer: what, error: message });
      await sleep(backoff, signal);
      backoff = Math.min(5000, backoff * 2);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function parse(response: TransportResponse): Record<string, unknown> | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(response.body));
  } catch {
    return undefined;
  }
}

function describe(response: TransportResponse): string {
  const code = parse(response)?.err;
  return typeof code === "string" && code !== "" ? `${response.status} ${code}` : String(response.status);
}
