/**
 * The expiry sweep [ours]: destroys what has expired, in bounded batches.
 * Reads already treat an expired secret as absent and an expired version as
 * deleted (`secret_state.ts`); the sweep makes that permanent in the store:
 * an expired secret's record is removed with every version, an expired
 * version's sealed bytes are dropped (the version stays as a destroyed
 * entry, so its number is never reused).
 *
 * Each pass asks the store for at most `batchSize` paths with something
 * expired, rewrites each through the same compare-and-swap as every write
 * (so a put landing meanwhile wins, and the sweep re-reads), in the same
 * per-path turn as this Nexus's writers, several paths at once so their
 * writes share the store's group commits, and repeats
 * while batches come back full, up to `maxBatches` per pass. The whole pass
 * runs under the store's exclusive lock: Nexus instances sharing a Postgres
 * database take turns (`pg_try_advisory_xact_lock`), and one that finds the
 * lock taken skips its pass instead of doing the same work twice.
 *
 * No key is needed: nothing is opened, only removed.
 *
 * Audited like a request's change, though no request asks for it: before a
 * batch changes anything, an `audit-sweep` intent record names its paths,
 * and the batch runs only once the trail has stored it as its mode requires
 * (fail-closed: synced; audit table: its row committed); afterwards an
 * outcome record says which paths were removed, which versions destroyed
 * and which paths were left for the next pass (`sweep_audit.ts`). A batch
 * whose intent could not be stored changes nothing, and the pass ends.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/types.ts";
import type { AuditSink } from "./audit.ts";
import type { KeyedQueue } from "./keyed_queue.ts";
import { expireVersions, secretExpired } from "./secret_state.ts";
import { groupsWithin, sweepDoneRecords, sweepIntentRecord } from "./sweep_audit.ts";

/** What the sweeper needs. */
export interface ExpirySweeperDeps {
  /** Backend. */
  readonly store: Store;
  /** Wall clock (injected: tests move it). */
  readonly clock: () => Date;
  /** Structured log; told how much each pass removed. */
  readonly log: Logger;
  /** Most paths one batch handles. */
  readonly batchSize: number;
  /** Most batches one pass runs (default 20): bounds a pass after a mass expiry. */
  readonly maxBatches?: number;
  /** Called after every pass that held the lock (tests and metrics). */
  readonly onPass?: (report: SweepReport) => void;
  /** Where the sweep's `audit-sweep` records go (Nexus's audit trail). */
  readonly audit: Pick<AuditSink, "sweep">;
  /**
   * The Nexus's per-path write turns (`NexusDeps.secretWrites`): the sweep
   * of a path waits for that path's writers in this process instead of
   * racing them into failed swaps. Absent: the compare-and-swap alone.
   */
  readonly writes?: KeyedQueue;
}

/** What one pass did. */
export interface SweepReport {
  /** Whether this pass held the exclusive lock (`false`: another holder was sweeping; nothing was done). */
  readonly ran: boolean;
  /** Paths removed because the whole secret expired. */
  readonly removedSecrets: number;
  /** Versions destroyed because they expired. */
  readonly destroyedVersions: number;
  /** Batches run. */
  readonly batches: number;
  /** Whether a batch was held back, changing nothing, because its audit intent could not be stored. */
  readonly auditRefused: boolean;
  /**
   * `performance.now()` when the pass's work started and ended, inside the
   * lock (tests check that passes of instances sharing a store never
   * overlap); for a skipped pass, when it was tried.
   */
  readonly startedMs: number;
  /** See `startedMs`. */
  readonly endedMs: number;
}

/** How often one path's rewrite is retried against concurrent writers before the next pass gets it. */
const MAX_ATTEMPTS = 5;

/**
 * Paths of a group swept at once. Their writes reach the store together,
 * so a store that commits in groups (SQLite) makes them durable with one
 * fsync instead of one each; the bound keeps a large batch from holding
 * thousands of records in memory at a time.
 */
const SWEEP_CONCURRENCY = 32;

/** Sweeps on demand (`sweep`) or on an interval (`start`). */
export class ExpirySweeper {
  readonly #deps: ExpirySweeperDeps;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  /** Creates a sweeper; nothing runs until `sweep` or `start`. */
  constructor(deps: ExpirySweeperDeps) {
    if (!Number.isSafeInteger(deps.batchSize) || deps.batchSize < 1) throw new RangeError("batchSize must be >= 1");
    this.#deps = deps;
  }

  /** One pass: batches until one comes back short (or `maxBatches`), under the store's exclusive lock. */
  async sweep(): Promise<SweepReport> {
    const triedMs = performance.now();
    const outcome = await this.#deps.store.tryExclusive(async () => {
      const startedMs = performance.now();
      const counts = await this.#pass();
      return { ...counts, startedMs, endedMs: performance.now() };
    });
    const report: SweepReport = outcome.ran ? { ran: true, ...outcome.value } : {
      ran: false,
      removedSecrets: 0,
      destroyedVersions: 0,
      batches: 0,
      auditRefused: false,
      startedMs: triedMs,
      endedMs: triedMs,
    };
    if (outcome.ran) this.#deps.onPass?.(report);
    if (report.auditRefused) {
      this.#deps.log.warn("expiry sweep held back: its audit record could not be stored; the next pass tries again");
    }
    if (report.removedSecrets + report.destroyedVersions > 0) {
      this.#deps.log.info("expiry sweep", {
        removedSecrets: report.removedSecrets,
        destroyedVersions: report.destroyedVersions,
        batches: report.batches,
      });
    }
    return report;
  }

  /** Sweeps every `intervalMs` until `stop` (a pass that fails is logged; the next one tries again). */
  start(intervalMs: number): void {
    const tick = () => {
      if (this.#stopped) return;
      this.#running = this.sweep()
        .catch((error) => this.#deps.log.warn("expiry sweep failed", { error: (error as Error).message }))
        .finally(() => {
          this.#running = undefined;
          if (!this.#stopped) this.#timer = setTimeout(tick, intervalMs);
        });
    };
    this.#timer = setTimeout(tick, intervalMs);
  }

  /** Stops the interval and waits for a pass in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  async #pass(): Promise<
    { removedSecrets: number; destroyedVersions: number; batches: number; auditRefused: boolean }
  > {
    const { store, batchSize } = this.#deps;
    const maxBatches = this.#deps.maxBatches ?? 20;
    let removedSecrets = 0;
    let destroyedVersions = 0;
    let batches = 0;
    while (batches < maxBatches) {
      const paths = await store.listExpired(this.#deps.clock(), batchSize);
      batches++;
      for (const group of groupsWithin(paths)) {
        const done = await this.#sweepGroup(group);
        if (!done) return { removedSecrets, destroyedVersions, batches, auditRefused: true };
        removedSecrets += done.removed;
        destroyedVersions += done.destroyed;
      }
      if (paths.length < batchSize) break;
    }
    return { removedSecrets, destroyedVersions, batches, auditRefused: false };
  }

  /**
   * Sweeps `paths` behind one audit intent, up to `SWEEP_CONCURRENCY` at a
   * time, and records the outcome (also when a path failed: what was done
   * is recorded, the failed path and the paths not yet started are listed
   * as skipped, then the failure ends the pass). `undefined` when the
   * intent could not be stored: then nothing was changed.
   */
  async #sweepGroup(paths: readonly string[]): Promise<{ removed: number; destroyed: number } | undefined> {
    const { audit, clock } = this.#deps;
    const trail = crypto.randomUUID();
    if (!await audit.sweep(sweepIntentRecord(trail, clock(), paths))) return undefined;
    const removed: string[] = [];
    const destroyed: Array<{ path: string; versions: number[] }> = [];
    const skipped: string[] = [];
    let failure: { error: unknown } | undefined;
    for (let start = 0; start < paths.length; start += SWEEP_CONCURRENCY) {
      const chunk = paths.slice(start, start + SWEEP_CONCURRENCY);
      if (failure) {
        skipped.push(...chunk);
        continue;
      }
      const outcomes = await Promise.allSettled(chunk.map((path) => this.#inTurn(path)));
      outcomes.forEach((outcome, i) => {
        const path = chunk[i]!;
        if (outcome.status === "rejected") {
          failure ??= { error: outcome.reason };
          skipped.push(path);
        } else if (outcome.value === "busy") skipped.push(path);
        else if (outcome.value === "removed") removed.push(path);
        else if (outcome.value.length > 0) destroyed.push({ path, versions: outcome.value });
      });
    }
    for (const record of sweepDoneRecords(trail, clock(), { removed, destroyed, skipped })) {
      await audit.sweep(record);
    }
    if (failure) throw failure.error;
    return { removed: removed.length, destroyed: destroyed.reduce((sum, d) => sum + d.versions.length, 0) };
  }

  /** `#sweepPath` in `path`'s write turn, when the Nexus gave its queue. */
  #inTurn(path: string): Promise<"removed" | "busy" | number[]> {
    const { writes } = this.#deps;
    return writes ? writes.run(path, () => this.#sweepPath(path)) : this.#sweepPath(path);
  }

  /**
   * Removes the secret at `path` if it expired (`"removed"`), else destroys
   * its expired versions (their numbers; none when nothing had expired any
   * more). `"busy"` when writers kept changing it: the next pass finds it.
   */
  async #sweepPath(path: string): Promise<"removed" | "busy" | number[]> {
    const { store } = this.#deps;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = await store.readSecret(path);
      if (!record) return [];
      const now = this.#deps.clock();
      if (secretExpired(record, now)) {
        if (await store.deleteSecret(path, record.revision)) return "removed";
        continue;
      }
      const next = expireVersions(record, now);
      if (next === record) return [];
      if (await store.writeSecret(path, record.revision, next)) {
        const destroyed: number[] = [];
        for (const [n, v] of next.versions) if (v !== record.versions.get(n)) destroyed.push(n);
        return destroyed;
      }
    }
    return "busy";
  }
}
