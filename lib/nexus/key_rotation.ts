/**
 * Online root key rotation (`spike operator rotate`): a new root key,
 * handed to the Keepers, then every stored record re-sealed under it in
 * bounded batches while Nexus keeps serving reads and writes, then the old
 * key dropped everywhere. The protocol, and why each step is safe to crash
 * in, is in `docs/CRYPTO.md` ("Root key rotation"); in short:
 *
 * 1. **claim** (`idle(n)` → `preparing(n→n+1)`): make K(n+1) in memory and
 *    record its check value and this Nexus's lease in the key state (a
 *    compare-and-swap, so one rotation runs at a time). Nothing is sealed
 *    under n+1 yet; writes still seal under n.
 * 2. **distribute**: hand K(n+1)'s shards to every Keeper that keeps key
 *    versions apart; go on only when `threshold` of them confirm (else give
 *    the rotation up: back to `idle(n)`, nothing lost).
 * 3. **seal** (`preparing` → `sealing`): store the new check value, then
 *    raise the store's minimum write version to n+1; from then on every new
 *    record is sealed under n+1 and no write sealed under n commits, on any
 *    Nexus (`Store.changeKeyState`).
 * 4. **re-seal**: policies, then secrets path by path (every kept version),
 *    in batches, each record with a compare-and-swap, so a concurrent write
 *    wins and the record is simply seen again. Versions or rows that fail
 *    authentication are removed (logged at error level).
 * 5. **finish** (`sealing` → `idle(n+1)`): only when no record is under n
 *    (checked by the store in the same change); record when n was retired.
 * 6. **retire**: tell the Keepers to drop n's shards, zero K(n).
 *
 * Whoever holds the lease drives; a Nexus that finds a rotation whose lease
 * ran out (its owner crashed) takes it over from the step the key state
 * says, after recovering from the Keepers the keys it needs.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { refusal } from "../api/errors.ts";
import { open, seal } from "../crypto/aead.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { generateRootKey } from "../crypto/root_key.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { Logger } from "../log/logger.ts";
import type {
  KeyState,
  KeyStateChange,
  PolicyReplacement,
  SealedPolicyRow,
  SecretRecord,
  SecretVersion,
  SecretWrite,
  Store,
} from "../store/types.ts";
import { IDLE_KEY_STATE_CHANGE } from "../store/key_state.ts";
import type { KeeperSync } from "./keeper_sync.ts";
import { keyCheckMetaKey, sealKeyCheck } from "./key_check.ts";
import { recordRetired } from "./key_versions.ts";
import { openPolicy, sealPolicy } from "./policy_seal.ts";
import type { RootKeyState } from "./root_key_state.ts";
import { secretAad, secretMetadataAad } from "./secret_service.ts";
import { isDestroyed, withoutVersions } from "./secret_state.ts";

/** Points of the protocol a test hook can stop at (to kill the process there). */
export type RotationStep =
  /** The rotation is claimed (`preparing`), K(n+1) made; no Keeper has it yet. */
  | "claimed"
  /** The Keepers confirmed K(n+1); the store still takes writes under n only. */
  | "distributed"
  /** The store takes new data under n+1 only; nothing re-sealed yet. */
  | "sealing"
  /** A batch of re-sealed records was written (called after every batch). */
  | "batch"
  /** The store says `idle(n+1)`; the Keepers still hold n. */
  | "finished";

/** What the rotation needs. */
export interface KeyRotationDeps {
  readonly store: Store;
  readonly keys: RootKeyState;
  readonly random: RandomBytes;
  readonly log: Logger;
  readonly clock: () => Date;
}

/** Settings of the rotation. */
export interface KeyRotationOptions {
  /** Keepers that must confirm the new key before anything is sealed under it. */
  readonly threshold: number;
  /** Secret paths re-sealed per batch (one store transaction each; default 100). */
  readonly batchSize?: number;
  /** How long a lease lasts without renewal, in ms (default 30 s). */
  readonly leaseMs?: number;
  /** How long to keep trying to reach `threshold` Keepers before giving up, in ms (default 60 s). */
  readonly distributeTimeoutMs?: number;
  /** How often an orphaned rotation is looked for, in ms (default: a third of the lease). */
  readonly checkIntervalMs?: number;
  /** Called at each step; may wait (tests pause there to kill the process). */
  readonly at?: (step: RotationStep) => Promise<void>;
}

/** How a rotation stands, for `spike operator status` and the metrics. */
export interface RotationStatus {
  /** The version every record is under when idle (the one being retired while rotating). */
  readonly keyVersion: number;
  /** The version new data is sealed under by this Nexus, or `null` when it holds no key. */
  readonly writeKeyVersion: number | null;
  /** The versions this Nexus holds. */
  readonly heldKeyVersions: readonly number[];
  /** `idle`, `preparing` or `sealing`. */
  readonly phase: KeyState["phase"];
  /** The version being rotated to, or `null`. */
  readonly targetKeyVersion: number | null;
  /** When the rotation started (RFC 3339), or `null`. */
  readonly startedAt: string | null;
  /** Whether this Nexus drives it (`this`), another does (`other`), or none (`null`). */
  readonly driver: "this" | "other" | null;
  /** Records under the old version when sealing began. */
  readonly toReseal: number;
  /**
   * Records still under the old version (0 when idle): counted by a Nexus
   * that does not drive the rotation; the driver reports what it has not
   * re-sealed yet of the count taken when sealing began.
   */
  readonly remaining: number;
  /** Records this Nexus re-sealed in the rotation it drives or drove last. */
  readonly resealedHere: number;
  /** Why the last rotation this Nexus drove was given up, if it was. */
  readonly lastError?: string;
}

const DEFAULT_BATCH = 100;
const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_DISTRIBUTE_TIMEOUT_MS = 60_000;

/** Drives root key rotations and takes over ones whose driver died. */
export class KeyRotation {
  readonly #deps: KeyRotationDeps;
  readonly #sync: KeeperSync;
  readonly #options: KeyRotationOptions;
  /** This process's lease owner id: random, so two processes never share one. */
  readonly #me = crypto.randomUUID();
  #running: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #resealed = 0;
  #lastError: string | undefined;

  /** Creates the coordinator; `watch()` starts looking for orphaned rotations. */
  constructor(deps: KeyRotationDeps, sync: KeeperSync, options: KeyRotationOptions) {
    this.#deps = deps;
    this.#sync = sync;
    this.#options = options;
  }

  get #leaseMs(): number {
    return this.#options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Records this Nexus re-sealed in the rotation it drives or drove last. */
  get resealedHere(): number {
    return this.#resealed;
  }

  /** Whether a rotation is being driven by this process now. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Looks for a rotation left by a Nexus that died, now and then periodically; takes it over. */
  watch(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    void this.resumeOrphaned();
    this.#timer = setInterval(() => void this.resumeOrphaned(), this.#options.checkIntervalMs ?? this.#leaseMs / 3);
  }

  /**
   * Starts a rotation from the current version to the next (the operator's
   * request). Resolves once it is claimed, with the versions; the rest runs
   * in the background (`status()` follows it).
   *
   * @throws {ApiError} (400, with a reason) when it cannot start
   */
  async start(): Promise<{ from: number; to: number }> {
    const { store, keys, random, log, clock } = this.#deps;
    if (this.#stopped) throw refusal("Nexus is shutting down");
    const state = await store.keyState();
    if (state.phase !== "idle") {
      throw refusal(`a rotation to root key version ${state.targetVersion} is already in progress`);
    }
    if (!keys.ready || keys.writeVersion !== state.currentVersion) {
      throw refusal("this Nexus has not caught up with the store's root key version yet; try again shortly");
    }
    const from = state.currentVersion;
    const to = from + 1;
    const rootKey = generateRootKey(random);
    try {
      const now = clock();
      const claimed = await store.changeKeyState(state.revision, {
        currentVersion: from,
        phase: "preparing",
        targetVersion: to,
        targetCheck: await sealKeyCheck(rootKey, to, random),
        minWriteVersion: from,
        leaseOwner: this.#me,
        leaseUntil: new Date(now.getTime() + this.#leaseMs),
        startedAt: now,
        toReseal: 0,
      });
      if (!claimed) throw refusal("another rotation started at the same moment");
      await keys.add(rootKey, to);
    } finally {
      zeroize(rootKey);
    }
    this.#resealed = 0;
    this.#lastError = undefined;
    log.info("root key rotation started", { from, to });
    this.#drive("claimed");
    return { from, to };
  }

  /** Takes over a rotation whose lease ran out (its driver died), if there is one. */
  async resumeOrphaned(): Promise<void> {
    if (this.#running || this.#stopped || !this.#deps.keys.ready) return;
    let state: KeyState;
    try {
      state = await this.#deps.store.keyState();
    } catch {
      return;
    }
    if (state.phase === "idle") return;
    const orphaned = state.leaseOwner === null || state.leaseUntil === null ||
      state.leaseUntil.getTime() < this.#deps.clock().getTime();
    if (!orphaned) return;
    this.#deps.log.warn("taking over a root key rotation whose driver stopped", {
      from: state.currentVersion,
      to: state.targetVersion,
      phase: state.phase,
    });
    this.#resealed = 0;
    this.#drive();
  }

  /** Where the rotation stands. */
  async status(): Promise<RotationStatus> {
    const { store, keys, clock } = this.#deps;
    const state = await store.keyState();
    const leased = state.leaseOwner !== null && state.leaseUntil !== null &&
      state.leaseUntil.getTime() >= clock().getTime();
    const driving = this.#running !== undefined && state.leaseOwner === this.#me;
    // The driver knows its progress; anyone else counts (a full scan of the versions table).
    const remaining = state.phase !== "sealing" || state.targetVersion === null
      ? undefined
      : driving
      ? { secretVersions: Math.max(0, state.toReseal - this.#resealed), policies: 0 }
      : await store.countSealedBelow(state.targetVersion);
    return {
      keyVersion: state.currentVersion,
      writeKeyVersion: keys.ready ? keys.writeVersion : null,
      heldKeyVersions: keys.heldVersions(),
      phase: state.phase,
      targetKeyVersion: state.targetVersion,
      startedAt: state.startedAt?.toISOString() ?? null,
      driver: state.phase === "idle" ? null : driving ? "this" : leased ? "other" : null,
      toReseal: state.toReseal,
      remaining: remaining ? remaining.secretVersions + remaining.policies : 0,
      resealedHere: this.#resealed,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /** Stops driving (a rotation in progress is left for a restart or another Nexus to finish). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }

  /**
   * Runs the rotation to its end (or until it is lost to another driver) in
   * the background, after announcing `first` when given.
   */
  #drive(first?: RotationStep): void {
    if (this.#running) return;
    this.#running = (first ? this.#at(first) : Promise.resolve()).then(() => this.#loop())
      .catch((error) => {
        this.#lastError = (error as Error).message;
        this.#deps.log.error("root key rotation stopped; it resumes after the lease runs out", {
          error: (error as Error).message,
        });
      })
      .finally(() => this.#running = undefined);
  }

  async #loop(): Promise<void> {
    const { store } = this.#deps;
    let state = await store.keyState();
    while (!this.#stopped && state.phase !== "idle") {
      const owned = await this.#lease(state);
      if (!owned) return;
      state = owned.phase === "preparing" ? await this.#prepare(owned) : await this.#reseal(owned);
    }
  }

  /**
   * Renews (or takes) the lease; resolves the state as changed, or
   * `undefined` when another driver holds it.
   */
  async #lease(state: KeyState): Promise<KeyState | undefined> {
    const { store, clock } = this.#deps;
    const now = clock().getTime();
    const ours = state.leaseOwner === this.#me;
    const free = state.leaseOwner === null || state.leaseUntil === null || state.leaseUntil.getTime() < now;
    if (!ours && !free) return undefined;
    const next: KeyStateChange = {
      ...withoutRevision(state),
      leaseOwner: this.#me,
      leaseUntil: new Date(now + this.#leaseMs),
    };
    if (!await store.changeKeyState(state.revision, next)) {
      return await this.#lease(await store.keyState()).catch(() => undefined);
    }
    return { ...next, revision: state.revision + 1 };
  }

  /** `preparing`: make sure this Nexus holds the target key, get it to the Keepers, then let sealing begin. */
  async #prepare(state: KeyState): Promise<KeyState> {
    const { store, keys, log } = this.#deps;
    const to = state.targetVersion!;
    if (!keys.holds(to)) state = await this.#obtainTarget(state);
    const distributed = await this.#distribute(state);
    if (!distributed) return await store.keyState();
    const { confirmed } = distributed;
    state = distributed.state;
    if (confirmed < this.#options.threshold) return await this.#giveUp(state, confirmed);
    await this.#at("distributed");
    // The check value goes where every later reader looks before any record depends on the key.
    await store.putMeta(keyCheckMetaKey(to), state.targetCheck!);
    const below = await store.countSealedBelow(to);
    const sealing: KeyStateChange = {
      ...withoutRevision(state),
      phase: "sealing",
      minWriteVersion: to,
      toReseal: below.secretVersions + below.policies,
    };
    if (!await store.changeKeyState(state.revision, sealing)) return await store.keyState();
    keys.useForWrites(to);
    log.info("new data is sealed under the new root key; re-sealing stored records", {
      to,
      records: sealing.toReseal,
      keepers: confirmed,
    });
    await this.#at("sealing");
    return { ...sealing, revision: state.revision + 1 };
  }

  /**
   * A taken-over rotation in `preparing`: the target key comes from the
   * Keepers if they hold it (checked against the target check value), or is
   * made afresh (nothing was sealed under it yet, so a new one is as good).
   */
  async #obtainTarget(state: KeyState): Promise<KeyState> {
    const { store, keys, random } = this.#deps;
    const to = state.targetVersion!;
    const fetched = await this.#sync.fetchKey(state, to);
    if (fetched) {
      try {
        await keys.add(fetched, to);
      } finally {
        zeroize(fetched);
      }
      return state;
    }
    const rootKey = generateRootKey(random);
    try {
      const next = { ...withoutRevision(state), targetCheck: await sealKeyCheck(rootKey, to, random) };
      if (!await store.changeKeyState(state.revision, next)) throw new Error("the key state changed meanwhile");
      await keys.add(rootKey, to);
      return { ...next, revision: state.revision + 1 };
    } finally {
      zeroize(rootKey);
    }
  }

  /**
   * Hands the target's shards out until `threshold` Keepers confirm (they
   * are read back and compared) or the time is up. The lease is renewed
   * before every round, so no other Nexus takes the rotation over (and
   * hands out another key for the same version) while this one is at it;
   * `undefined` when it was lost anyway.
   */
  async #distribute(state: KeyState): Promise<{ state: KeyState; confirmed: number } | undefined> {
    const version = state.targetVersion!;
    const deadline = this.#deps.clock().getTime() +
      (this.#options.distributeTimeoutMs ?? DEFAULT_DISTRIBUTE_TIMEOUT_MS);
    let wait = 200;
    while (true) {
      const leased = await this.#lease(await this.#deps.store.keyState());
      if (!leased || leased.phase !== "preparing" || leased.targetVersion !== version) return undefined;
      state = leased;
      const confirmed = await this.#sync.distribute(version);
      if (confirmed >= this.#options.threshold || this.#stopped) return { state, confirmed };
      if (this.#deps.clock().getTime() + wait > deadline) return { state, confirmed };
      this.#deps.log.warn("too few Keepers hold the new root key yet; trying again", {
        keyVersion: version,
        confirmed,
        need: this.#options.threshold,
      });
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(5000, wait * 2);
    }
  }

  /** Back to `idle(n)`: nothing was sealed under the target, so nothing is lost. */
  async #giveUp(state: KeyState, confirmed: number): Promise<KeyState> {
    const { store, keys, log } = this.#deps;
    const to = state.targetVersion!;
    const reason = `only ${confirmed} Keeper(s) that keep key versions apart confirmed the new root key; ` +
      `${this.#options.threshold} are needed`;
    const idle: KeyStateChange = {
      ...IDLE_KEY_STATE_CHANGE,
      currentVersion: state.currentVersion,
      minWriteVersion: state.currentVersion,
    };
    if (await store.changeKeyState(state.revision, idle)) {
      if (keys.holds(to) && keys.writeVersion !== to) keys.drop(to);
      this.#lastError = reason;
      log.error("root key rotation given up; nothing was sealed under the new key", { keyVersion: to, reason });
    }
    return await store.keyState();
  }

  /** `sealing`: re-seal every record under the old version in batches, then finish. */
  async #reseal(state: KeyState): Promise<KeyState> {
    const { store, keys } = this.#deps;
    const to = state.targetVersion!;
    if (!keys.holds(to) || !keys.holds(state.currentVersion)) {
      throw new Error(`this Nexus does not hold root key versions ${state.currentVersion} and ${to}`);
    }
    if (keys.writeVersion !== to) keys.useForWrites(to);
    await this.#resealPolicies(to);
    let after = "";
    while (!this.#stopped) {
      const paths = await store.secretPathsSealedBelow(to, after, this.#options.batchSize ?? DEFAULT_BATCH);
      if (paths.length === 0) {
        if (after === "") break;
        // A pass is done; records a concurrent write made us skip are found by the next pass.
        after = "";
        continue;
      }
      await this.#resealSecrets(paths, to);
      after = paths[paths.length - 1]!;
      // Let requests in between batches: with small records sealed by
      // synchronous node:crypto, a batch on a store that answers without
      // waiting (memory; SQLite when a commit needs no fsync) settles in
      // microtasks alone, and no request would be served until the whole
      // rotation was done.
      await new Promise((resolve) => setImmediate(resolve));
      const renewed = await this.#lease(await store.keyState());
      if (!renewed || renewed.phase !== "sealing") return renewed ?? await store.keyState();
      await this.#at("batch");
    }
    if (this.#stopped) return state;
    return await this.#finish(await store.keyState());
  }

  async #finish(state: KeyState): Promise<KeyState> {
    const { store, keys, log, clock } = this.#deps;
    const from = state.currentVersion;
    const to = state.targetVersion!;
    const idle: KeyStateChange = { ...IDLE_KEY_STATE_CHANGE, currentVersion: to, minWriteVersion: to };
    // The store checks, in the same change, that nothing is left under the old version.
    if (!await store.changeKeyState(state.revision, idle, { requireNoneBelow: to })) return await store.keyState();
    await recordRetired(store, from, clock());
    log.info("root key rotation finished: every record is sealed under the new root key", { from, to });
    await this.#at("finished");
    const took = await this.#sync.retireBelow(to);
    if (keys.holds(from)) keys.drop(from);
    log.info("the old root key is dropped from memory and the Keepers were told to drop theirs", {
      keyVersion: from,
      keepers: took,
    });
    return await store.keyState();
  }

  /** Re-seals the policy rows under older versions (a row that fails authentication is removed). */
  async #resealPolicies(to: number): Promise<void> {
    const { store, keys, random, log } = this.#deps;
    const rows = (await store.listPolicies()).filter((r): r is SealedPolicyRow =>
      r.kind === "sealed" && r.keyVersion < to
    );
    const target = keys.keysFor(to)!;
    for (let from = 0; from < rows.length; from += 256) {
      const replacements: PolicyReplacement[] = await Promise.all(
        rows.slice(from, from + 256).map(async (row) => {
          const key = keys.keysFor(row.keyVersion)?.policies;
          try {
            if (!key) throw new Error("key version not held");
            const record = await openPolicy(key, row);
            return { expected: row, next: await sealPolicy(target.policies, to, record, random) };
          } catch {
            log.error("rotation removes a policy row that fails authentication (tampered)", { policy: row.name });
            return { expected: row, next: null };
          }
        }),
      );
      const applied = await store.replacePolicies(replacements);
      this.#resealed += applied.filter(Boolean).length;
    }
  }

  /** Re-seals every old version of `paths` (one store transaction; concurrent writes win). */
  async #resealSecrets(paths: readonly string[], to: number): Promise<void> {
    const { store } = this.#deps;
    const writes = (await Promise.all(paths.map((path) => this.#resealedRecord(path, to))))
      .filter((w): w is SecretWrite & { count: number } => w !== undefined);
    if (writes.length === 0) return;
    const applied = await store.writeSecrets(writes);
    applied.forEach((ok, i) => {
      if (ok) this.#resealed += writes[i]!.count;
    });
  }

  async #resealedRecord(path: string, to: number): Promise<(SecretWrite & { count: number }) | undefined> {
    const { store, keys, log } = this.#deps;
    const record = await store.readSecret(path);
    if (!record) return undefined;
    const target = keys.keysFor(to)!.secrets;
    const versions = new Map<number, SecretVersion>(record.versions);
    const failed: number[] = [];
    let count = 0;
    for (const v of record.versions.values()) {
      if (v.keyVersion >= to) continue;
      if (isDestroyed(v)) {
        // Nothing is left to seal: only its label moves, so the old key can go.
        versions.set(v.version, { ...v, keyVersion: to });
        count++;
        continue;
      }
      const sealed = await this.#resealBytes(v.sealed, v.keyVersion, secretAad(path, v.version), target);
      if (sealed) {
        versions.set(v.version, { ...v, sealed, keyVersion: to });
        count++;
      } else failed.push(v.version);
    }
    let next: SecretRecord = { ...record, versions };
    const custom = record.customMetadata;
    if (custom !== undefined && custom.keyVersion < to) {
      // Custom metadata is sealed once per path (not per version), under its own key version.
      const sealed = await this.#resealBytes(custom.sealed, custom.keyVersion, secretMetadataAad(path), target);
      if (sealed) next = { ...next, customMetadata: { sealed, keyVersion: to } };
      else {
        log.error("rotation removes custom metadata that fails authentication (tampered)", { path });
        const { customMetadata: _tampered, ...rest } = next;
        next = rest;
      }
      count++;
    }
    if (failed.length > 0) {
      // Paths are not secret (they are plain in the store and in the audit trail).
      log.error("rotation removes secret versions that fail authentication (tampered)", {
        path,
        versions: failed.join(", "),
      });
      next = withoutVersions(next, failed);
      count += failed.length;
    }
    return { path, expectedRevision: record.revision, next, sealedUnder: to, count };
  }

  /**
   * `sealed`, sealed under root key version `keyVersion`, opened and sealed
   * again under `target` with the same associated data (computed once);
   * `undefined` when its key is not held or it fails authentication.
   */
  async #resealBytes(
    sealed: Uint8Array,
    keyVersion: number,
    aad: Uint8Array,
    target: CryptoKey,
  ): Promise<Uint8Array | undefined> {
    const key = this.#deps.keys.keysFor(keyVersion)?.secrets;
    if (!key) return undefined;
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = await open(key, sealed, aad);
      return await seal(target, plaintext, aad, this.#deps.random);
    } catch {
      return undefined;
    } finally {
      zeroize(plaintext);
    }
  }

  async #at(step: RotationStep): Promise<void> {
    await this.#options.at?.(step);
  }
}

function withoutRevision(state: KeyState): KeyStateChange {
  const { revision: _, ...rest } = state;
  return rest;
}
