/**
 * Starts a Nexus: store, root key state, the mTLS API server, and the
 * Keeper exchange. `cmd/nexus.ts` calls this with real dependencies; tests
 * call it with their own.
 *
 * @module
 */
import { systemRandom } from "../crypto/random.ts";
import type { RandomBytes } from "../crypto/random.ts";
import type { NexusConfig } from "../config/spike_config.ts";
import type { Logger } from "../log/logger.ts";
import { markStartup } from "../log/startup.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { createMtlsClient } from "../spiffe/mtls_client.ts";
import { createMtlsServer, type MtlsServer } from "../spiffe/mtls_server.ts";
import { isKeeper } from "../spiffe/roles.ts";
import { toTrustRoots } from "../config/trust_roots.ts";
import { postgresStoreOptions } from "../store/postgres_options.ts";
import { measureStore } from "../store/measured_store.ts";
import type { SqliteStoreOptions } from "../store/sqlite_types.ts";
import type { Store } from "../store/types.ts";
import { createNexusApp } from "./app.ts";
import { createNexusHttpHandler } from "./http_handler.ts";
import type { AuditSink } from "./audit.ts";
import { rootKeyAuditKeys } from "./audit_key.ts";
import { type AuditOutput, openAuditOutput } from "./audit_output.ts";
import type { AuditRowSink, AuditTrail } from "./audit_trail.ts";
import type { NexusDeps } from "./deps.ts";
import { ExpirySweeper, type SweepReport } from "./expiry_sweeper.ts";
import { KeeperStatus } from "./keeper_status.ts";
import { type KeeperSync, startKeeperSync } from "./keeper_sync.ts";
import { KeyManager } from "./key_manager.ts";
import { KeyRotation, type KeyRotationOptions } from "./key_rotation.ts";
import { versionsNeeded } from "./key_versions.ts";
import { LINEAR_REGEX_V8_FLAG, linearRegexAvailable } from "./linear_regex.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { NexusMetrics } from "./metrics.ts";
import { RestoreSession } from "./restore_session.ts";
import { RootKeyState } from "./root_key_state.ts";

/** A running Nexus. */
export interface RunningNexus {
  /** The bound TLS port. */
  readonly port: number;
  /** Its dependencies (tests inspect the store and key state). */
  readonly deps: NexusDeps;
  /** The Keeper exchange, when Keepers are configured. */
  readonly keeperSync: KeeperSync | undefined;
  /** The expiry sweep, when the store keeps data and the interval is not 0 [ours]. */
  readonly sweeper: ExpirySweeper | undefined;
  /** The rotation coordinator, when Keepers and a store are configured. */
  readonly rotation: KeyRotation | undefined;
  /** Reopens the audit file by its path (log rotation; SIGHUP in `spike nexus`). */
  reopenAuditLog(): void;
  /** Stops serving, ends timers, closes the store, zeroes the key. */
  close(): Promise<void>;
}

/** What `startNexus` needs besides the config. */
export interface StartNexusOptions {
  /** Resolved settings. */
  readonly config: NexusConfig;
  /** This Nexus's SVID source. */
  readonly identity: IdentitySource;
  /** Structured log. */
  readonly log: Logger;
  /** Wall clock (default: system). */
  readonly clock?: () => Date;
  /** Random source (default: system CSPRNG). */
  readonly random?: RandomBytes;
  /** A store to use instead of the configured backend (tests). */
  readonly store?: Store;
  /** Recovery backoff overrides (tests; defaults: 100 ms doubling to 5 s). */
  readonly keeperBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Per-call timeout towards Keepers in ms (default 5000). */
  readonly keeperTimeoutMs?: number;
  /** Where audit records go instead of `config.auditLog` (tests). */
  readonly audit?: AuditSink;
  /** Show process and runtime metrics on `/metrics` (default true). */
  readonly processMetrics?: boolean;
  /** Told of every expiry sweep pass that ran (tests). */
  readonly onSweep?: (report: SweepReport) => void;
  /** Rotation settings over the configured ones (tests: a step hook, a short lease, small batches). */
  readonly rotation?: Partial<Omit<KeyRotationOptions, "threshold">>;
}

/**
 * Opens the configured backend. Only the chosen backend's module is loaded
 * (the Postgres driver alone costs tens of milliseconds at start).
 */
export async function openStore(config: NexusConfig): Promise<Store | undefined> {
  switch (config.backendStore) {
    case "sqlite":
      return (await import("../store/sqlite_store.ts")).createSqliteStore(sqliteOptions(config));
    case "sqlite-worker":
      return (await import("../store/sqlite_worker_store.ts")).createSqliteWorkerStore(sqliteOptions(config));
    case "postgres":
      return (await import("../store/postgres_store.ts")).createPostgresStore(postgresStoreOptions(config.postgres!));
    case "memory":
      return (await import("../store/memory_store.ts")).createMemoryStore();
    case "lite":
      return undefined;
  }
}

/** The SQLite stores' options from the config (both SQLite backends have a data directory). */
function sqliteOptions(config: NexusConfig): SqliteStoreOptions {
  return { dataDir: config.dataDir!, ...(config.sqliteSynchronous ? { synchronous: config.sqliteSynchronous } : {}) };
}

/** The audit table of `store` (checked by the config: the table needs the Postgres backend). */
function auditTableOf(store: Store | undefined): AuditRowSink {
  const insert = store?.insertAuditRows?.bind(store);
  if (!insert) throw new Error("SPIKE_NEXUS_AUDIT_TABLE: this backend store keeps no audit table");
  return { insert };
}

/** Starts Nexus and resolves once it listens. */
export async function startNexus(options: StartNexusOptions): Promise<RunningNexus> {
  const { config, identity, log } = options;
  if (!linearRegexAvailable()) {
    throw new Error(`Nexus needs V8's linear-time regex engine: run Deno with --v8-flags=${LINEAR_REGEX_V8_FLAG}`);
  }
  await identity.ready();
  markStartup(log, "identity ready");
  const store = options.store ?? await openStore(config);
  markStartup(log, "store open");
  const keys = new RootKeyState();
  const keyManager = new KeyManager();
  const clock = options.clock ?? (() => new Date());
  const random = options.random ?? systemRandom;
  // A policy row under a version this Nexus lacks is tampering unless the store uses that version
  // (another Nexus rotated): then this one catches up, and the row is obeyed once it can be opened.
  const versionInUse = store &&
    (async (version: number) => {
      const inUse = versionsNeeded(await store!.keyState()).required.includes(version);
      if (inUse) void keyManager.catchUp();
      return inUse;
    });
  const policies = new PolicySnapshot({ log, keys, ...(versionInUse ? { versionInUse } : {}) });
  const keeperStatus = config.keeperPeers.length > 0
    ? new KeeperStatus(config.keeperPeers.length, config.shamirThreshold)
    : undefined;
  // Every store call is timed for /metrics; checkpoint and close use the store itself.
  const measured = store && measureStore(store, { storeOperation: (...args) => metrics.storeOperation(...args) });
  const metrics: NexusMetrics = new NexusMetrics({
    startedAt: Date.now(),
    keys,
    keeperStatus,
    keeperPushIntervalMs: config.keeperUpdateIntervalMs,
    ...(measured ? { counts: () => measured.counts(), keyState: () => measured.keyState() } : {}),
    resealedHere: () => keyManager.rotation?.resealedHere,
    tampered: { total: () => policies.tamperedTotal, now: () => policies.lastGeneration?.tampered.length },
    processMetrics: options.processMetrics ?? true,
  });
  let auditOutput: Pick<AuditOutput, "reopen" | "close"> & { sink: AuditSink | AuditTrail };
  try {
    auditOutput = options.audit
      ? { sink: options.audit, reopen() {}, close: () => Promise.resolve() }
      : await openAuditOutput(config.auditLog, log, {
        keys: rootKeyAuditKeys(keys),
        failClosed: config.auditFailClosed,
        onWriteFailure: (records) => metrics.auditWriteFailed(records),
        ...(config.auditTable ? { table: auditTableOf(store) } : {}),
      });
  } catch (error) {
    metrics.close();
    await store?.close().catch(() => {});
    throw error;
  }
  const trail = auditOutput.sink;
  // Each change of the write key (an install, or a rotation switching new data to the next
  // version) hands the chain that version's audit key: a `key` record follows, signed with it.
  if ("keyChanged" in trail) keys.onWriteKeyChange(() => trail.keyChanged());
  const trustRoots = toTrustRoots(config.trustRoots);
  const deps: NexusDeps = {
    settings: {
      trustRoots,
      maxSecretVersions: config.maxSecretVersions,
      maxCiphertextSize: config.maxCiphertextSize,
      maxBodyBytes: config.maxBodyBytes,
      shamirShares: config.shamirShares,
      shamirThreshold: config.shamirThreshold,
    },
    store: measured,
    keys,
    keyManager,
    restore: new RestoreSession(config.shamirThreshold),
    clock,
    random,
    log,
    secretWrites: new KeyedQueue(),
    policies,
    audit: auditOutput.sink,
    ...(config.rateLimit ? { rateLimiter: new RateLimiter(config.rateLimit) } : {}),
    metrics,
    ...(keeperStatus ? { keeperStatus } : {}),
  };

  let server: MtlsServer | undefined;
  let keeperClient: ReturnType<typeof createMtlsClient> | undefined;
  let keeperSync: KeeperSync | undefined;
  let rotation: KeyRotation | undefined;
  let checkpointTimer: ReturnType<typeof setInterval> | undefined;
  let sweeper: ExpirySweeper | undefined;
  try {
    server = await createMtlsServer({
      identity,
      handler: createNexusHttpHandler(createNexusApp(deps), { maxBodyBytes: config.maxBodyBytes }),
      handshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
      maxConnections: config.maxConnections,
      onError: (error) => log.debug("tls", { error: error.message }),
    });
    const port = await server.listen(config.listen.port, config.listen.host);
    log.info("nexus listening", { port, store: config.backendStore });
    markStartup(log, "listening");

    const unmark = deps.keys.onInstall(() => {
      markStartup(log, "root key installed");
      unmark();
    });
    if (config.keeperPeers.length > 0) {
      keeperClient = createMtlsClient({
        identity,
        serverId: (id) => isKeeper(id, trustRoots),
        timeoutMs: options.keeperTimeoutMs ?? 5000,
      });
      keeperSync = startKeeperSync(deps, keeperClient, {
        peers: config.keeperPeers,
        threshold: config.shamirThreshold,
        pushIntervalMs: config.keeperUpdateIntervalMs,
        initialBackoffMs: options.keeperBackoff?.initialMs,
        maxBackoffMs: options.keeperBackoff?.maxMs,
        status: deps.keeperStatus,
      });
      if (store) {
        rotation = new KeyRotation({ store: measured!, keys, random, log, clock }, keeperSync, {
          threshold: config.shamirThreshold,
          leaseMs: config.rotationLeaseMs,
          batchSize: config.rotationBatch,
          ...options.rotation,
        });
        const started = rotation;
        // A rotation a crashed Nexus left is finished once this one holds its keys.
        void keeperSync.recovered.then(() => started.watch());
      }
      keyManager.attach(keeperSync, rotation);
    } else {
      log.warn("no SPIKE_NEXUS_KEEPER_PEERS: the root key can only arrive through 'spike operator restore'");
    }
    // Pruned secret versions are overwritten on disk at a WAL checkpoint;
    // run one on the Keeper push cadence so that happens predictably.
    if (store && "checkpoint" in store && typeof store.checkpoint === "function") {
      const checkpoint = store.checkpoint.bind(store) as () => Promise<unknown>;
      checkpointTimer = setInterval(() => {
        checkpoint().catch((error) => log.warn("checkpoint failed", { error: (error as Error).message }));
      }, config.keeperUpdateIntervalMs);
    }

    // Expired secrets are destroyed in the background; needs no key, so it
    // runs from the start (reads hide expired data whether or not it ran).
    // Each batch is audited like a change (`audit-sweep` records).
    if (measured && config.expirySweepIntervalMs > 0) {
      sweeper = new ExpirySweeper({
        store: measured,
        clock: deps.clock,
        log,
        audit: auditOutput.sink,
        batchSize: config.expirySweepBatch,
        writes: deps.secretWrites,
        ...(options.onSweep ? { onPass: options.onSweep } : {}),
      });
      sweeper.start(config.expirySweepIntervalMs);
    }

    const running: RunningNexus = {
      port,
      deps,
      keeperSync,
      sweeper,
      rotation,
      reopenAuditLog: () => auditOutput.reopen(),
      async close() {
        // Stop first and drop the Keeper connections so a recovery round or
        // push in flight ends now, before the store it may write to closes.
        const rotating = rotation?.stop();
        const stopping = keeperSync?.stop();
        keeperClient?.close();
        await stopping;
        await rotating;
        if (checkpointTimer !== undefined) clearInterval(checkpointTimer);
        await sweeper?.stop();
        await server?.close();
        // The stop record is signed while the key is still here, and the
        // table gets its last rows before the store closes.
        await auditOutput.close();
        await store?.close();
        metrics.close();
        deps.keys.clear();
        deps.restore.reset();
      },
    };
    return running;
  } catch (error) {
    await rotation?.stop();
    const stopping = keeperSync?.stop();
    keeperClient?.close();
    await stopping;
    if (checkpointTimer !== undefined) clearInterval(checkpointTimer);
    await sweeper?.stop();
    await server?.close().catch(() => {});
    await auditOutput.close().catch(() => {});
    await store?.close().catch(() => {});
    metrics.close();
    throw error;
  }
}
