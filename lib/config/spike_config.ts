/**
 * Resolves the environment (and command-line overrides) into one frozen,
 * validated configuration object per role. This is the only place that knows
 * SPIKE_* variable names; everything under `lib/` receives these objects.
 *
 * @module
 */
import {
  ConfigError,
  type ListenAddress,
  parseBoolean,
  parseDuration,
  parseHttpsUrl,
  parseInteger,
  parseList,
  parseListenAddress,
  parseNumber,
  parsePostgresUrl,
} from "./parse.ts";
import { SQLITE_SYNCHRONOUS_LEVELS, type SqliteSynchronous } from "../store/sqlite_types.ts";

/** Environment variables as a plain record (tests pass their own). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Where this process gets its X.509-SVID from. */
export interface IdentityConfig {
  /** `SPIKE_SVID_DIR`: spiffe-helper layout directory; wins when set. */
  readonly svidDir?: string;
  /** `SPIFFE_ENDPOINT_SOCKET`: the Workload API address. */
  readonly endpointSocket: string;
}

/** Trust domains accepted for each peer role (`SPIKE_TRUST_ROOT_*`). */
export interface TrustRootsConfig {
  readonly nexus: readonly string[];
  readonly keeper: readonly string[];
  readonly pilot: readonly string[];
  readonly bootstrap: readonly string[];
  readonly liteWorkload: readonly string[];
}

/** Settings common to every role. */
export interface CommonConfig {
  /** Identity source selection. */
  readonly identity: IdentityConfig;
  /** Accepted trust domains per role. */
  readonly trustRoots: TrustRootsConfig;
}

/** Storage backends Nexus can run with. */
export type BackendStore = "sqlite" | "sqlite-worker" | "postgres" | "memory" | "lite";

/** Where the `postgres` backend connects [ours]. */
export interface PostgresConfig {
  /** `SPIKE_NEXUS_POSTGRES_URL`: `postgres://user[:password]@host[:port]/database[?sslmode=…]`. */
  readonly url: string;
  /** `SPIKE_NEXUS_POSTGRES_PASSWORD_FILE`: file holding the password (trailing newline ignored). */
  readonly passwordFile?: string;
  /** `SPIKE_NEXUS_POSTGRES_CA_FILE`: PEM CA(s) of the server; when set, TLS with full verification. */
  readonly caFile?: string;
  /** `SPIKE_NEXUS_POSTGRES_MAX_CONNECTIONS` (default 10). */
  readonly maxConnections: number;
  /** `SPIKE_NEXUS_POSTGRES_STATEMENT_TIMEOUT` in ms (default 10s): longest a statement may run or wait for locks. */
  readonly statementTimeoutMs: number;
}

/** Which backend Nexus keeps its data in, and where (`spike nexus` and the backup commands). */
export interface StoreConfig {
  /** `SPIKE_NEXUS_BACKEND_STORE` (default `sqlite`). */
  readonly backendStore: BackendStore;
  /** `SPIKE_NEXUS_DATA_DIR` (default `~/.spike/data`); present exactly for the SQLite backends. */
  readonly dataDir?: string;
  /**
   * `SPIKE_NEXUS_DB_SYNCHRONOUS` [ours] (default `full`): what an
   * acknowledged SQLite write survives (`full`: power loss; `normal`: a
   * crash of the process; `off`: a crash of the process, and power loss may
   * corrupt the file). Present exactly for the SQLite backends.
   */
  readonly sqliteSynchronous?: SqliteSynchronous;
  /** Connection settings; present exactly when `backendStore` is `postgres`. */
  readonly postgres?: PostgresConfig;
}

/** `spike nexus` settings. */
export interface NexusConfig extends CommonConfig, StoreConfig {
  /** `SPIKE_NEXUS_TLS_PORT` (default `:8553`). */
  readonly listen: ListenAddress;
  /** `SPIKE_NEXUS_MAX_SECRET_VERSIONS` (default 10). */
  readonly maxSecretVersions: number;
  /** `SPIKE_NEXUS_KEEPER_PEERS`: Keeper URLs; position i+1 is the share index. */
  readonly keeperPeers: readonly string[];
  /** `SPIKE_NEXUS_SHAMIR_SHARES` (default 3). */
  readonly shamirShares: number;
  /** `SPIKE_NEXUS_SHAMIR_THRESHOLD` (default 2). */
  readonly shamirThreshold: number;
  /** `SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL` in ms (default 5m). */
  readonly keeperUpdateIntervalMs: number;
  /**
   * `SPIKE_NEXUS_ROTATION_LEASE` [ours] in ms (default 30s): how long a
   * root key rotation's driver may go silent before another Nexus (or the
   * same one restarted) takes it over.
   */
  readonly rotationLeaseMs: number;
  /** `SPIKE_NEXUS_ROTATION_BATCH` [ours] (default 25 on SQLite, 100 on Postgres): secret paths re-sealed per store transaction. */
  readonly rotationBatch: number;
  /** `SPIKE_NEXUS_CRYPTO_MAX_CIPHERTEXT_SIZE` (default 65536). */
  readonly maxCiphertextSize: number;
  /** `SPIKE_NEXUS_MAX_BODY_SIZE` [ours]: request body cap in bytes (default 1 MiB). */
  readonly maxBodyBytes: number;
  /** `SPIKE_NEXUS_AUDIT_LOG` [ours]: `stdout` (default) or a file the audit trail is appended to. */
  readonly auditLog: string;
  /**
   * `SPIKE_NEXUS_AUDIT_FAIL_CLOSED` [ours]: refuse (503) a request whose
   * audit record cannot be written durably, before it changes anything
   * (default false: log the failure and serve).
   */
  readonly auditFailClosed: boolean;
  /**
   * `SPIKE_NEXUS_AUDIT_TABLE` [ours]: also write audit records to the
   * database's `audit_logs` table, a change's record in the change's own
   * transaction (Postgres backend only; default false).
   */
  readonly auditTable: boolean;
  /**
   * `SPIKE_NEXUS_RATE_LIMIT` (requests per second per caller) and
   * `SPIKE_NEXUS_RATE_LIMIT_BURST` [ours]; absent when no limit is set.
   */
  readonly rateLimit?: { readonly perSecond: number; readonly burst: number };
  /** `SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT` [ours] in ms (default 10s): a connection must finish TLS by then. */
  readonly tlsHandshakeTimeoutMs: number;
  /** `SPIKE_NEXUS_MAX_CONNECTIONS` [ours] (default 1024): more open connections are closed on arrival. */
  readonly maxConnections: number;
  /** `SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL` [ours] in ms (default 1m; 0: no sweep): how often expired secrets are destroyed. */
  readonly expirySweepIntervalMs: number;
  /** `SPIKE_NEXUS_EXPIRY_SWEEP_BATCH` [ours] (default 500): most paths one sweep batch handles. */
  readonly expirySweepBatch: number;
}

/** `spike keeper` settings. */
export interface KeeperConfig extends CommonConfig {
  /** `SPIKE_KEEPER_TLS_PORT` (default `:8443`). */
  readonly listen: ListenAddress;
  /** `SPIKE_KEEPER_TLS_HANDSHAKE_TIMEOUT` [ours] in ms (default 10s). */
  readonly tlsHandshakeTimeoutMs: number;
  /** `SPIKE_KEEPER_MAX_CONNECTIONS` [ours] (default 128; only Nexus and Bootstrap call a Keeper). */
  readonly maxConnections: number;
}

/** Operator CLI (`secret`, `policy`, `operator`, `cipher`) settings. */
export interface PilotConfig extends CommonConfig {
  /** `SPIKE_NEXUS_API_URL` (default `https://localhost:8553`). */
  readonly nexusUrl: string;
  /** `SPIKE_PILOT_RECOVERY_DIR` (default `~/.spike/recover`). */
  readonly recoveryDir: string;
}

/** What an application using the SDK needs: where Nexus is, and its own identity. */
export interface WorkloadConfig extends CommonConfig {
  /** `SPIKE_NEXUS_API_URL` (default `https://localhost:8553`). */
  readonly nexusUrl: string;
}

/** `spike bootstrap` settings. */
export interface BootstrapConfig extends CommonConfig {
  /** `SPIKE_NEXUS_API_URL`. */
  readonly nexusUrl: string;
  /** `SPIKE_NEXUS_KEEPER_PEERS`. */
  readonly keeperPeers: readonly string[];
  /** `SPIKE_NEXUS_SHAMIR_SHARES`. */
  readonly shamirShares: number;
  /** `SPIKE_NEXUS_SHAMIR_THRESHOLD`. */
  readonly shamirThreshold: number;
  /** `SPIKE_BOOTSTRAP_FORCE`: overwrite the key of a Nexus that has data. */
  readonly force: boolean;
  /** `SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED` [ours]: an initialized deployment is success (Jobs, oneshots). */
  readonly skipIfInitialized: boolean;
}

const DEFAULT_TRUST_DOMAIN = "spike.ist";
const DEFAULT_ENDPOINT_SOCKET = "unix:///tmp/spire-agent/public/api.sock";

/** Resolves the settings every role shares. */
export function resolveCommon(env: Env): CommonConfig {
  const svidDir = nonEmpty(env.SPIKE_SVID_DIR);
  return {
    identity: Object.freeze({
      ...(svidDir ? { svidDir } : {}),
      endpointSocket: nonEmpty(env.SPIFFE_ENDPOINT_SOCKET) ?? DEFAULT_ENDPOINT_SOCKET,
    }),
    trustRoots: Object.freeze({
      nexus: trustRoot(env, "SPIKE_TRUST_ROOT_NEXUS"),
      keeper: trustRoot(env, "SPIKE_TRUST_ROOT_KEEPER"),
      pilot: trustRoot(env, "SPIKE_TRUST_ROOT_PILOT"),
      bootstrap: trustRoot(env, "SPIKE_TRUST_ROOT_BOOTSTRAP"),
      liteWorkload: trustRoot(env, "SPIKE_TRUST_ROOT_LITE_WORKLOAD"),
    }),
  };
}

/** Resolves `spike nexus` settings. */
export function resolveNexusConfig(env: Env): NexusConfig {
  const shares = integer(env, "SPIKE_NEXUS_SHAMIR_SHARES", 3, 1, 1000);
  const threshold = integer(env, "SPIKE_NEXUS_SHAMIR_THRESHOLD", 2, 1, 1000);
  if (threshold > shares) {
    throw new ConfigError(
      "SPIKE_NEXUS_SHAMIR_THRESHOLD",
      `${threshold} is more than SPIKE_NEXUS_SHAMIR_SHARES (${shares})`,
    );
  }
  const keeperPeers = keeperPeerList(env);
  if (keeperPeers.length > 0 && keeperPeers.length !== shares) {
    throw new ConfigError(
      "SPIKE_NEXUS_KEEPER_PEERS",
      `lists ${keeperPeers.length} Keepers but SPIKE_NEXUS_SHAMIR_SHARES is ${shares}`,
    );
  }
  const store = resolveStoreConfig(env);
  const auditTable = parseBoolean("SPIKE_NEXUS_AUDIT_TABLE", nonEmpty(env.SPIKE_NEXUS_AUDIT_TABLE) ?? "false");
  if (auditTable && store.backendStore !== "postgres") {
    throw new ConfigError(
      "SPIKE_NEXUS_AUDIT_TABLE",
      `needs SPIKE_NEXUS_BACKEND_STORE=postgres (it is '${store.backendStore}')`,
    );
  }
  return Object.freeze({
    ...resolveCommon(env),
    listen: parseListenAddress("SPIKE_NEXUS_TLS_PORT", nonEmpty(env.SPIKE_NEXUS_TLS_PORT) ?? ":8553"),
    ...store,
    maxSecretVersions: integer(env, "SPIKE_NEXUS_MAX_SECRET_VERSIONS", 10, 1, 1000),
    keeperPeers,
    shamirShares: shares,
    shamirThreshold: threshold,
    keeperUpdateIntervalMs: duration(env, "SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL", "5m"),
    rotationLeaseMs: duration(env, "SPIKE_NEXUS_ROTATION_LEASE", "30s"),
    // Measured (BENCHMARKS.md): on SQLite every batch commits on the event loop, so smaller
    // batches keep reads served during a rotation; Postgres pays a commit per batch instead.
    rotationBatch: integer(env, "SPIKE_NEXUS_ROTATION_BATCH", store.backendStore === "postgres" ? 100 : 25, 1, 10_000),
    maxCiphertextSize: integer(env, "SPIKE_NEXUS_CRYPTO_MAX_CIPHERTEXT_SIZE", 65536, 1, 64 * 1024 * 1024),
    maxBodyBytes: integer(env, "SPIKE_NEXUS_MAX_BODY_SIZE", 1024 * 1024, 1024, 256 * 1024 * 1024),
    auditLog: nonEmpty(env.SPIKE_NEXUS_AUDIT_LOG) ?? "stdout",
    tlsHandshakeTimeoutMs: duration(env, "SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT", "10s"),
    maxConnections: integer(env, "SPIKE_NEXUS_MAX_CONNECTIONS", 1024, 1, 1_000_000),
    auditFailClosed: parseBoolean(
      "SPIKE_NEXUS_AUDIT_FAIL_CLOSED",
      nonEmpty(env.SPIKE_NEXUS_AUDIT_FAIL_CLOSED) ?? "false",
    ),
    auditTable,
    expirySweepIntervalMs: durationOrOff(env, "SPIKE_NEXUS_EXPIRY_SWEEP_INTERVAL", "1m"),
    expirySweepBatch: integer(env, "SPIKE_NEXUS_EXPIRY_SWEEP_BATCH", 500, 1, 100_000),
    ...rateLimitOf(env),
  });
}

/** Resolves which backend Nexus uses and where its data is. */
export function resolveStoreConfig(env: Env): StoreConfig {
  const backend = nonEmpty(env.SPIKE_NEXUS_BACKEND_STORE) ?? "sqlite";
  if (!(BACKEND_STORES as readonly string[]).includes(backend)) {
    throw new ConfigError("SPIKE_NEXUS_BACKEND_STORE", `'${backend}' is not one of ${BACKEND_STORES.join(", ")}`);
  }
  return Object.freeze({
    backendStore: backend as BackendStore,
    ...(backend === "postgres" ? { postgres: postgresConfig(env) } : {}),
    ...(backend === "sqlite" || backend === "sqlite-worker"
      ? {
        dataDir: nonEmpty(env.SPIKE_NEXUS_DATA_DIR) ?? `${home(env)}/.spike/data`,
        sqliteSynchronous: synchronousOf(env),
      }
      : {}),
  });
}

/** `SPIKE_NEXUS_DB_SYNCHRONOUS`, case-insensitive as SQLite's own PRAGMA is. */
function synchronousOf(env: Env): SqliteSynchronous {
  const level = (nonEmpty(env.SPIKE_NEXUS_DB_SYNCHRONOUS) ?? "full").toLowerCase();
  if (!(SQLITE_SYNCHRONOUS_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(
      "SPIKE_NEXUS_DB_SYNCHRONOUS",
      `'${level}' is not one of ${SQLITE_SYNCHRONOUS_LEVELS.join(", ")}`,
    );
  }
  return level as SqliteSynchronous;
}

/** The per-caller rate limit, when `SPIKE_NEXUS_RATE_LIMIT` sets one (0 or unset: none). */
function rateLimitOf(env: Env): { rateLimit?: { perSecond: number; burst: number } } {
  const rate = nonEmpty(env.SPIKE_NEXUS_RATE_LIMIT);
  const perSecond = rate === undefined ? 0 : parseNumber("SPIKE_NEXUS_RATE_LIMIT", rate, 0, 1_000_000);
  const burstText = nonEmpty(env.SPIKE_NEXUS_RATE_LIMIT_BURST);
  if (perSecond === 0) {
    if (burstText !== undefined) {
      throw new ConfigError("SPIKE_NEXUS_RATE_LIMIT_BURST", "is set but SPIKE_NEXUS_RATE_LIMIT is not");
    }
    return {};
  }
  // By default a caller may send two seconds' worth at once.
  const burst = burstText === undefined
    ? Math.max(1, Math.ceil(2 * perSecond))
    : parseInteger("SPIKE_NEXUS_RATE_LIMIT_BURST", burstText, 1, 10_000_000);
  return { rateLimit: Object.freeze({ perSecond, burst }) };
}

/** Resolves `spike keeper` settings. */
export function resolveKeeperConfig(env: Env): KeeperConfig {
  return Object.freeze({
    ...resolveCommon(env),
    listen: parseListenAddress("SPIKE_KEEPER_TLS_PORT", nonEmpty(env.SPIKE_KEEPER_TLS_PORT) ?? ":8443"),
    tlsHandshakeTimeoutMs: duration(env, "SPIKE_KEEPER_TLS_HANDSHAKE_TIMEOUT", "10s"),
    maxConnections: integer(env, "SPIKE_KEEPER_MAX_CONNECTIONS", 128, 1, 1_000_000),
  });
}

/** Resolves the operator CLI's settings. */
export function resolvePilotConfig(env: Env): PilotConfig {
  return Object.freeze({
    ...resolveCommon(env),
    nexusUrl: nexusUrl(env),
    recoveryDir: nonEmpty(env.SPIKE_PILOT_RECOVERY_DIR) ?? `${home(env)}/.spike/recover`,
  });
}

/** Resolves an SDK user's settings (no `HOME` needed: the SDK writes no files). */
export function resolveWorkloadConfig(env: Env): WorkloadConfig {
  return Object.freeze({ ...resolveCommon(env), nexusUrl: nexusUrl(env) });
}

/** Resolves `spike bootstrap` settings. */
export function resolveBootstrapConfig(env: Env): BootstrapConfig {
  const shares = integer(env, "SPIKE_NEXUS_SHAMIR_SHARES", 3, 1, 1000);
  const threshold = integer(env, "SPIKE_NEXUS_SHAMIR_THRESHOLD", 2, 1, 1000);
  if (threshold > shares) {
    throw new ConfigError(
      "SPIKE_NEXUS_SHAMIR_THRESHOLD",
      `${threshold} is more than SPIKE_NEXUS_SHAMIR_SHARES (${shares})`,
    );
  }
  const force = parseBoolean("SPIKE_BOOTSTRAP_FORCE", env.SPIKE_BOOTSTRAP_FORCE ?? "false");
  const skipIfInitialized = parseBoolean(
    "SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED",
    env.SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED ?? "false",
  );
  if (force && skipIfInitialized) {
    throw new ConfigError("SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED", "cannot be true together with SPIKE_BOOTSTRAP_FORCE");
  }
  const keeperPeers = keeperPeerList(env);
  if (keeperPeers.length !== shares) {
    throw new ConfigError(
      "SPIKE_NEXUS_KEEPER_PEERS",
      `lists ${keeperPeers.length} Keepers but SPIKE_NEXUS_SHAMIR_SHARES is ${shares}`,
    );
  }
  return Object.freeze({
    ...resolveCommon(env),
    nexusUrl: nexusUrl(env),
    keeperPeers,
    shamirShares: shares,
    shamirThreshold: threshold,
    force,
    skipIfInitialized,
  });
}

const BACKEND_STORES: readonly BackendStore[] = ["sqlite", "sqlite-worker", "postgres", "memory", "lite"];

function postgresConfig(env: Env): PostgresConfig {
  const url = nonEmpty(env.SPIKE_NEXUS_POSTGRES_URL);
  if (!url) throw new ConfigError("SPIKE_NEXUS_POSTGRES_URL", "is required when SPIKE_NEXUS_BACKEND_STORE is postgres");
  const passwordFile = nonEmpty(env.SPIKE_NEXUS_POSTGRES_PASSWORD_FILE);
  const caFile = nonEmpty(env.SPIKE_NEXUS_POSTGRES_CA_FILE);
  return Object.freeze({
    url: parsePostgresUrl("SPIKE_NEXUS_POSTGRES_URL", url),
    ...(passwordFile ? { passwordFile } : {}),
    ...(caFile ? { caFile } : {}),
    maxConnections: integer(env, "SPIKE_NEXUS_POSTGRES_MAX_CONNECTIONS", 10, 1, 1000),
    statementTimeoutMs: duration(env, "SPIKE_NEXUS_POSTGRES_STATEMENT_TIMEOUT", "10s"),
  });
}

function nexusUrl(env: Env): string {
  return parseHttpsUrl("SPIKE_NEXUS_API_URL", nonEmpty(env.SPIKE_NEXUS_API_URL) ?? "https://localhost:8553");
}

function keeperPeerList(env: Env): readonly string[] {
  const peers = parseList(env.SPIKE_NEXUS_KEEPER_PEERS ?? "").map((url) =>
    parseHttpsUrl("SPIKE_NEXUS_KEEPER_PEERS", url)
  );
  // Each position is a share index: one Keeper listed twice would hold two
  // shares and be fed a mix of them.
  const duplicate = peers.find((url, i) => peers.indexOf(url) !== i);
  if (duplicate) throw new ConfigError("SPIKE_NEXUS_KEEPER_PEERS", `${duplicate} is listed twice`);
  return Object.freeze(peers);
}

function trustRoot(env: Env, name: string): readonly string[] {
  const domains = parseList(env[name] ?? "");
  for (const domain of domains) {
    if (!/^[a-z0-9._-]+$/.test(domain)) throw new ConfigError(name, `'${domain}' is not a valid trust domain`);
  }
  return Object.freeze(domains.length > 0 ? domains : [DEFAULT_TRUST_DOMAIN]);
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = nonEmpty(env[name]);
  return value === undefined ? fallback : parseInteger(name, value, min, max);
}

/** Like `duration`, but `0` is allowed too (it turns the timed job off). */
function durationOrOff(env: Env, name: string, fallback: string): number {
  const ms = parseDuration(name, nonEmpty(env[name]) ?? fallback);
  if (ms !== 0 && ms < 100) throw new ConfigError(name, "must be 0 (off) or at least 100ms");
  return ms;
}

function duration(env: Env, name: string, fallback: string): number {
  const ms = parseDuration(name, nonEmpty(env[name]) ?? fallback);
  if (ms < 100) throw new ConfigError(name, "must be at least 100ms");
  return ms;
}

function home(env: Env): string {
  const dir = nonEmpty(env.HOME);
  if (!dir) throw new ConfigError("HOME", "is not set; set it, or set the data directory explicitly");
  return dir;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}
