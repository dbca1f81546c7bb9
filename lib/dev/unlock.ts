/**
 * `spike dev unlock`: gives a development Nexus its root key however it came
 * up, the way `spike dev` does on every start, for stacks whose roles run as
 * separate processes or containers (the compose demo):
 *
 * - recovery shards saved in the recovery directory → restore them (a Nexus
 *   and Keepers restarted empty get the same key back; a Nexus that already
 *   holds it just confirms the first shard);
 * - none saved and Nexus fresh → Bootstrap, then save the shards;
 * - none saved and Nexus holding its key → save the shards;
 * - none saved and Nexus holding data without its key → stop: the key can
 *   only come from shards a human keeps.
 *
 * Then it waits until Nexus is ready. Development only: keeping recovery
 * shards beside the data defeats their purpose in production.
 *
 * @module
 */
import { type NexusState, probeNexusState, runBootstrap } from "../bootstrap/bootstrap.ts";
import { NexusClient } from "../client/nexus_client.ts";
import type { RandomBytes } from "../crypto/random.ts";
import type { Logger } from "../log/logger.ts";
import type { Probe } from "../ops/probe.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { createMtlsClient } from "../spiffe/mtls_client.ts";
import { isKeeper, isNexus, type TrustRoots } from "../spiffe/roles.ts";
import { DevStackError } from "./errors.ts";
import { readSavedShards, restoreFromShards, saveRecoveryShards } from "./recovery_shards.ts";

/** What `unlockDevNexus` needs. */
export interface UnlockOptions {
  /** Nexus base URL. */
  readonly nexusUrl: string;
  /** Keeper URLs in share order (Bootstrap hands them out). */
  readonly keeperPeers: readonly string[];
  /** Shamir threshold. */
  readonly threshold: number;
  /** The identities used, one per role. */
  readonly identities: {
    readonly bootstrap: IdentitySource;
    readonly recover: IdentitySource;
    readonly restore: IdentitySource;
  };
  /** Accepted trust domains per role. */
  readonly roots: TrustRoots;
  /** Where the recovery shards are kept (development only). */
  readonly recoveryDir: string;
  /** Asks Nexus's `/ready` at the end. */
  readonly probe: Probe;
  /** Random source for Bootstrap. */
  readonly random: RandomBytes;
  /** Structured log (Bootstrap's); never given key material. */
  readonly log: Logger;
  /** Progress lines for the operator. */
  readonly say: (line: string) => void;
  /** Overall deadline in ms. */
  readonly timeoutMs: number;
  /** Clock (default `Date.now`). */
  readonly now?: () => number;
}

/** How Nexus got (or already had) its key. */
export type UnlockOutcome = "restored" | "bootstrapped" | "already";

/** Unlocks Nexus as described above; resolves once it is ready. */
export async function unlockDevNexus(options: UnlockOptions): Promise<UnlockOutcome> {
  const now = options.now ?? Date.now;
  const deadline = now() + options.timeoutMs;
  const left = () => Math.max(1, deadline - now());
  const { say } = options;
  const saved = await readSavedShards(options.recoveryDir);
  let outcome: UnlockOutcome;
  if (saved.length >= options.threshold) {
    say(`restoring the root key from the ${saved.length} recovery shards in ${options.recoveryDir} (development only)`);
    outcome = await withNexus(options, options.identities.restore, async (nexus) => {
      await waitUntilAnswering(options, left);
      return await restoreFromShards(nexus, saved, options.threshold);
    });
  } else {
    for (const { shard } of saved) shard.fill(0);
    const state = await withTransports(
      options,
      (nexus, keepers) => probeNexusState(bootstrapOptions(options, nexus, keepers, left())),
    );
    outcome = await fromState(options, state, left);
  }
  await waitUntilReady(options, left);
  say(
    outcome === "restored"
      ? "Nexus rebuilt its root key from the saved shards and is ready"
      : outcome === "bootstrapped"
      ? "Nexus is ready with a new root key"
      : "Nexus already held its root key and is ready",
  );
  return outcome;
}

async function fromState(options: UnlockOptions, state: NexusState, left: () => number): Promise<UnlockOutcome> {
  const { say } = options;
  if (state === "has-data") {
    throw new DevStackError(
      `Nexus keeps data but has no root key, and ${options.recoveryDir} holds fewer than ${options.threshold} ` +
        "recovery shards: restore it by hand ('spike operator restore'), or remove every volume to start over",
    );
  }
  if (state === "empty") {
    say("Nexus is fresh: bootstrapping a new root key");
    await withTransports(options, (nexus, keepers) => runBootstrap(bootstrapOptions(options, nexus, keepers, left())));
  }
  await withNexus(options, options.identities.recover, async (nexus) => {
    const count = await saveRecoveryShards(nexus, options.recoveryDir);
    say(
      `WARNING: ${count} recovery shards saved in ${options.recoveryDir} so restarts keep the data; ` +
        "development only: production never keeps shards beside the data",
    );
  });
  return state === "empty" ? "bootstrapped" : "already";
}

function bootstrapOptions(
  options: UnlockOptions,
  nexus: ReturnType<typeof createMtlsClient>,
  keepers: ReturnType<typeof createMtlsClient>,
  timeoutMs: number,
) {
  return {
    nexusUrl: options.nexusUrl,
    keeperPeers: options.keeperPeers,
    threshold: options.threshold,
    force: false,
    nexus,
    keepers,
    random: options.random,
    log: options.log,
    timeoutMs,
  };
}

async function withTransports<T>(
  options: UnlockOptions,
  use: (nexus: ReturnType<typeof createMtlsClient>, keepers: ReturnType<typeof createMtlsClient>) => Promise<T>,
): Promise<T> {
  const identity = options.identities.bootstrap;
  const nexus = createMtlsClient({ identity, serverId: (id) => isNexus(id, options.roots), timeoutMs: 10_000 });
  const keepers = createMtlsClient({ identity, serverId: (id) => isKeeper(id, options.roots), timeoutMs: 10_000 });
  try {
    return await use(nexus, keepers);
  } finally {
    nexus.close();
    keepers.close();
  }
}

async function withNexus<T>(
  options: UnlockOptions,
  identity: IdentitySource,
  use: (nexus: NexusClient) => Promise<T>,
): Promise<T> {
  const transport = createMtlsClient({ identity, serverId: (id) => isNexus(id, options.roots), timeoutMs: 10_000 });
  try {
    return await use(new NexusClient(options.nexusUrl, transport));
  } finally {
    transport.close();
  }
}

/** Polls Nexus's `path` until `accept` likes the answer or time runs out. */
async function poll(
  options: UnlockOptions,
  left: () => number,
  path: string,
  accept: (status: number) => boolean,
  what: string,
): Promise<void> {
  let last = "no answer yet";
  while (true) {
    try {
      const answer = await options.probe.get(options.nexusUrl, path, "nexus");
      if (accept(answer.status)) return;
      last = `HTTP ${answer.status}: ${answer.body.slice(0, 200)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (left() <= 250) throw new DevStackError(`Nexus at ${options.nexusUrl} did not ${what} in time (${last})`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(250, left())));
  }
}

function waitUntilAnswering(options: UnlockOptions, left: () => number): Promise<void> {
  return poll(options, left, "/health", (status) => status === 200, "answer");
}

function waitUntilReady(options: UnlockOptions, left: () => number): Promise<void> {
  return poll(options, left, "/ready", (status) => status === 200, "become ready");
}
