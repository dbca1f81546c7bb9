/**
 * Starts a Nexus: store, root key state, the mTLS API server, and the
 * Keeper exchange. `cmd/nexus.ts` calls this with real dependencies; tests
 * call it with their own.
 *
 * @module
 */
import { systemRandom } from "../crypto/random.ts";
import type { RandomBytes } from "../crypto/random.ts";
import type { NexusConfig, PostgresConfig } from "../config/spike_config.ts";
import type { Logger } from "../log/logger.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { createMtlsClient } from "../spiffe/mtls_client.ts";
import { type MtlsServer, serveHono } from "../spiffe/mtls_server.ts";
import { isKeeper } from "../spiffe/roles.ts";
import { toTrustRoots } from "../config/trust_roots.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import { createPostgresStore } from "../store/postgres_store.ts";
import { createSqliteStore } from "../store/sqlite_store.ts";
import { createSqliteWorkerStore } from "../store/sqlite_worker_store.ts";
import type { Store } from "../store/types.ts";
import { createNexusApp } from "./app.ts";
import type { AuditSink } from "./audit.ts";
import { openAuditOutput } from "./audit_output.ts";
import type { NexusDeps } from "./deps.ts";
import { type KeeperSync, startKeeperSync } from "./keeper_sync.ts";
import { KeyManager } from "./key_manager.ts";
import { KeyRotation, type KeyRotationOptions } from "./key_rotation.ts";
import { versionsNeeded } from "./key_versions.ts";
import { LINEAR_REGEX_V8_FLAG, linearRegexAvailable } from "./linear_regex.ts";
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
  /** Rotation settings over the configured ones (tests: a step hook, a short lease, small batches). */
  readonly rotation?: Partial<Omit<KeyRotationOptions, "threshold">>;
}

/** Opens the configured backend. */
export function openStore(config: NexusConfig): Store | undefined {
  switch (config.backendStore) {
    case "sqlite":
      return createSqliteStore({ dataDir: config.dataDir! });
    case "sqlite-worker":
      return createSqliteWorkerStore({ dataDir: config.dataDir! });
    case "postgres":
      return openPostgresStore(config.postgres!);
    case "memory":
      return createMemoryStore();
    case "lite":
      return undefined;
  }
}

/**
 * Connects the `postgres` backend, reading the password and CA files when
 * configured (so the password needs to be in neither the URL nor the
 * environment).
 */
function openPostgresStore(settings: PostgresConfig): Store {
  const password = settings.passwordFile === undefined
    ? undefined
    : readSetting("SPIKE_NEXUS_POSTGRES_PASSWORD_FILE", settings.passwordFile).replace(/\r?\n$/, "");
  const caPem = settings.caFile === undefined
    ? undefined
    : readSetting("SPIKE_NEXUS_POSTGRES_CA_FILE", settings.caFile);
  return createPostgresStore({
    url: settings.url,
    maxConnections: settings.maxConnections,
    statementTimeoutMs: settings.statementTimeoutMs,
    ...(password === undefined ? {} : { password }),
    ...(caPem === undefined ? {} : { caPem }),
  });
}

/** Reads a file named by a setting; the error names the setting and the file, never the content. */
function readSetting(variable: string, file: string): string {
  try {
    return Deno.readTextFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${variable} ${file}: ${(error as Error).name}`);
  }
}

/** Starts Nexus and resolves once it listens. */
export async function startNexus(options: StartNexusOptions): Promise<RunningNexus> {
  const { config, identity, log } = options;
  if (!linearRegexAvailable()) {
    throw new Error(`Nexus needs V8's linear-time regex engine: run Deno with --v8-flags=${LINEAR_REGEX_V8_FLAG}`);
  }
  await identity.ready();
  const auditOutput = options.audit
    ? { sink: options.audit, reopen() {}, close() {} }
    : openAuditOutput(config.auditLog, log);
  let store: Store | undefined;
  try {
    store = options.store ?? openStore(config);
  } catch (error) {
    auditOutput.close();
    throw error;
  }
  const trustRoots = toTrustRoots(config.trustRoots);
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
  const deps: NexusDeps = {
    settings: {
      trustRoots,
      maxSecretVersions: config.maxSecretVersions,
      maxCiphertextSize: config.maxCiphertextSize,
      maxBodyBytes: config.maxBodyBytes,
      shamirShares: config.shamirShares,
      shamirThreshold: config.shamirThreshold,
    },
    store,
    keys,
    keyManager,
    restore: new RestoreSession(config.shamirThreshold),
    clock,
    random,
    log,
    policies: new PolicySnapshot({ log, keys, ...(versionInUse ? { versionInUse } : {}) }),
    audit: auditOutput.sink,
    ...(config.rateLimit ? { rateLimiter: new RateLimiter(config.rateLimit) } : {}),
    metrics: new NexusMetrics(Date.now()),
  };

  let server: MtlsServer | undefined;
  let keeperClient: ReturnType<typeof createMtlsClient> | undefined;
  let keeperSync: KeeperSync | undefined;
  let rotation: KeyRotation | undefined;
  let checkpointTimer: ReturnType<typeof setInterval> | undefined;
  try {
    server = await serveHono(createNexusApp(deps), {
      identity,
      maxBodyBytes: config.maxBodyBytes,
      onError: (error) => log.debug("tls", { error: error.message }),
    });
    const port = await server.listen(config.listen.port, config.listen.host);
    log.info("nexus listening", { port, store: config.backendStore });

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
      });
      if (store) {
        rotation = new KeyRotation({ store, keys, random, log, clock }, keeperSync, {
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

    const running: RunningNexus = {
      port,
      deps,
      keeperSync,
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
        await server?.close();
        await store?.close();
        auditOutput.close();
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
    await server?.close().catch(() => {});
    await store?.close().catch(() => {});
    auditOutput.close();
    throw error;
  }
}
