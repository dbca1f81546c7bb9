/**
 * What an application imports to read its secrets from Nexus (and use the
 * cipher API), authenticated by its own SPIFFE identity — no token, no
 * "secret zero". The same code runs on Deno and, built as the npm package
 * in `packages/sdk/`, on Node ≥ 20: it uses `node:*` modules only.
 *
 * ```ts
 * import { connect } from "./lib/sdk/mod.ts"; // Node: from "@spike/sdk"
 *
 * const spike = await connect({ env: process.env }); // Deno: Deno.env.toObject()
 * try {
 *   const db = await spike.getSecret("app/db");
 *   connectToDatabase(db.user, db.pass);
 * } finally {
 *   await spike.close();
 * }
 * ```
 *
 * @module
 */
import { NotFoundError } from "../client/errors.ts";
import {
  type BatchReadResult,
  type ListPage,
  type ListQuery,
  type MetadataUpdate,
  NexusClient,
  type PolicyView,
  type SecretMetadata,
  type WriteOptions,
} from "../client/nexus_client.ts";
import { pagedSecretPaths } from "../client/paged_list.ts";
import { deletePolicyByName, getPolicyByName } from "../client/policy_by_name.ts";
import type { Permission } from "../api/validate.ts";
import { type Env, resolveWorkloadConfig } from "../config/spike_config.ts";
import { toTrustRoots } from "../config/trust_roots.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { createMtlsClient } from "../spiffe/mtls_client.ts";
import { isNexus } from "../spiffe/roles.ts";
import { selectIdentitySource } from "../spiffe/source_select.ts";
import { DEFAULT_RETRY, withRetries } from "./retry.ts";
import { type SecretChangeHandler, type SecretWatch, watchSecret, type WatchSecretOptions } from "./watch.ts";

export {
  ApiCallError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
  UnsupportedExtensionError,
} from "../client/errors.ts";
export type { ErrorCode } from "../api/errors.ts";
export type { Permission } from "../api/validate.ts";
export type { MetadataUpdate, SecretMetadata, SecretVersionMetadata, WriteOptions } from "../client/nexus_client.ts";
export { ConfigError } from "../config/parse.ts";
export type { Env } from "../config/spike_config.ts";
export { IdentitySourceError, type IdentitySourceErrorReason } from "../spiffe/identity_check.ts";
export { MtlsError, type MtlsErrorReason } from "../spiffe/errors.ts";
export type { IdentitySource, X509Identity } from "../spiffe/identity.ts";
export type { SecretChangeHandler, SecretVersionInfo, SecretWatch, WatchSecretOptions } from "./watch.ts";

/** How to reach Nexus. Every option has a default taken from `env`. */
export interface ConnectOptions {
  /**
   * Environment to read `SPIKE_NEXUS_API_URL`, `SPIKE_SVID_DIR`,
   * `SPIFFE_ENDPOINT_SOCKET` and `SPIKE_TRUST_ROOT_NEXUS` from: pass
   * `process.env` (Node) or `Deno.env.toObject()` (Deno). The SDK never
   * reads the environment by itself.
   */
  readonly env?: Env;
  /** Nexus URL (`https://host:port`); overrides `SPIKE_NEXUS_API_URL`. */
  readonly nexusUrl?: string;
  /** SVID directory in spiffe-helper's layout; overrides `SPIKE_SVID_DIR`. */
  readonly svidDir?: string;
  /** Workload API endpoint (`unix:///path` or `tcp://IP:port`); overrides `SPIFFE_ENDPOINT_SOCKET`. */
  readonly endpointSocket?: string;
  /** This workload's identity, from your own source; default: SVID files or the Workload API, as configured. */
  readonly identity?: IdentitySource;
  /** How long `connect` waits for the first SVID, in ms (default 10 s). */
  readonly readyTimeoutMs?: number;
  /** Per-call timeout in ms (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * Attempts per call, the first included (default 3; 1 turns retries off).
   * Retried: 503 while Nexus is not ready and 429 (after its `Retry-After`),
   * with backoff; a broken connection, for reads and the cipher API only.
   */
  readonly attempts?: number;
}

/** A policy as the SDK shows it (the wire's `spiffiedPattern` spelled properly). */
export interface Policy {
  /** Nexus's id of the policy (this implementation uses the name). */
  readonly id: string;
  /** Unique name. */
  readonly name: string;
  /** Regex the caller's SPIFFE ID must match. */
  readonly spiffeIdPattern: string;
  /** Regex the secret path must match. */
  readonly pathPattern: string;
  /** What the policy grants (`super` implies all). */
  readonly permissions: readonly Permission[];
  /** RFC 3339 creation time. */
  readonly createdAt: string;
  /** RFC 3339 time of the last change. */
  readonly updatedAt: string;
}

/** The fields of a policy to create or replace. */
export interface PolicySpec {
  /** Unique name (`[a-zA-Z0-9-_ ]`, 1–250 characters); an existing policy of that name is replaced. */
  readonly name: string;
  /** Regex the caller's SPIFFE ID must match (anchor it: `^spiffe://td/app/web$`). */
  readonly spiffeIdPattern: string;
  /** Regex the secret path must match. */
  readonly pathPattern: string;
  /** What the policy grants. */
  readonly permissions: readonly Permission[];
}

/** A row of {@linkcode SpikeClient.listPolicies}. */
export interface PolicySummary {
  /** Nexus's id. */
  readonly id: string;
  /** Name. */
  readonly name: string;
}

/** Exact-match filter of {@linkcode SpikeClient.listPolicies}. */
export interface PolicyFilter {
  /** Only policies with exactly this SPIFFE ID pattern. */
  readonly spiffeIdPattern?: string;
  /** Only policies with exactly this path pattern. */
  readonly pathPattern?: string;
}

/** Selects a version; 0 or absent means the current one. */
export interface VersionOption {
  /** Version number (1, 2, …); 0 or absent = current. */
  readonly version?: number;
}

/**
 * A connected client. Reuses TLS connections; follows SVID rotation.
 *
 * Every call rejects with an {@linkcode ApiCallError} subclass when Nexus
 * answers with an error (`NotFoundError`, `UnauthorizedError`, …), or an
 * `MtlsError` when no answer arrived (connection refused, timeout, a server
 * that is not Nexus).
 */
export interface SpikeClient {
  /** All key/value pairs of a secret (needs `read`). */
  getSecret(path: string, options?: VersionOption): Promise<Record<string, string>>;
  /**
   * Reads the current version of up to 100 secrets in one call, each authorized on its own (needs `read` on each):
   * per path `{ data }`, or `{ err: "api_not_found" | "access_unauthorized" | "api_internal_error" }`. Rejects
   * (`BadRequestError`) only for a malformed path or more than 100.
   */
  getSecrets(paths: readonly string[]): Promise<Record<string, BatchReadResult>>;
  /** One value of a secret; rejects with `NotFoundError` when the key is missing. */
  getSecretValue(path: string, key: string, options?: VersionOption): Promise<string>;
  /**
   * Writes a new version (needs `write`). With `cas`, only when the secret's
   * current version is that number (0: none yet); otherwise rejects with
   * `ConflictError` and writes nothing.
   */
  putSecret(path: string, values: Readonly<Record<string, string>>, options?: WriteOptions): Promise<void>;
  /**
   * Writes a new version holding the current values with `changes` merged in
   * (`null` removes a key), atomically in Nexus: concurrent patches never lose
   * each other's keys (needs `write`). `cas` as for `putSecret`. Rejects with
   * `NotFoundError` when the secret has no current version.
   */
  patchSecret(path: string, changes: Readonly<Record<string, string | null>>, options?: WriteOptions): Promise<void>;
  /** Soft-deletes versions; none given = the current one (needs `write`). */
  deleteSecret(path: string, versions?: readonly number[]): Promise<void>;
  /**
   * Restores soft-deleted versions (needs `write`); none given = the current version, or the newest when every
   * version is deleted (SPIKE's rule). Rejects with `NotFoundError` when nothing was restored.
   */
  undeleteSecret(path: string, versions?: readonly number[]): Promise<void>;
  /**
   * Destroys versions for good (needs `write`): their values are removed from the store and cannot be undeleted;
   * metadata keeps their numbers, marked `destroyed`. Versions that do not exist are skipped.
   */
  destroySecret(path: string, versions: readonly number[]): Promise<void>;
  /**
   * Changes a secret's metadata without making a new version (needs `write`): `customMetadata` replaces all custom
   * metadata (`{}` clears it). `NotFoundError` when the secret does not exist.
   */
  putMetadata(path: string, update: MetadataUpdate): Promise<void>;
  /**
   * Moves a secret with every version and its metadata to `to`, atomically (needs `read` and `write` on `from`,
   * `write` on `to`). `ConflictError` when `to` exists, `NotFoundError` when `from` does not.
   */
  moveSecret(from: string, to: string): Promise<void>;
  /** Removes a secret with every version and its metadata (needs `write`); `NotFoundError` when there is none. */
  deleteMetadata(path: string): Promise<void>;
  /**
   * One page of the paths under `prefix` this workload may read or list
   * (the superuser and holders of `list` on `spike/system/secret`: every
   * path). Pass `cursor` back for the next page; it is absent on the last.
   * A page may hold fewer than `limit` paths, even none, before the end.
   */
  listSecretsPage(query?: ListQuery): Promise<ListPage>;
  /** Every path under `prefix` this workload may read or list, page by page (`pageSize`, default 500). */
  iterateSecrets(prefix?: string, options?: { pageSize?: number }): AsyncIterableIterator<string>;
  /** Every secret path, sorted (needs `list` on `spike/system/secret`). */
  listSecrets(): Promise<string[]>;
  /** Versions and times of a secret, no values (needs `read`). */
  getMetadata(path: string, options?: VersionOption): Promise<SecretMetadata>;
  /** Creates a policy, or replaces the one with the same name; resolves with its id (needs `write` on `spike/system/acl`). */
  putPolicy(policy: PolicySpec): Promise<string>;
  /** Reads a policy by name; `NotFoundError` when there is none (needs `read` on `spike/system/acl`). */
  getPolicy(name: string): Promise<Policy>;
  /** Deletes a policy by name; `NotFoundError` when there is none (needs `write` on `spike/system/acl`). */
  deletePolicy(name: string): Promise<void>;
  /** Lists policies (needs `list` on `spike/system/acl`). */
  listPolicies(filter?: PolicyFilter): Promise<PolicySummary[]>;
  /** Encrypts with Nexus's key (cipher API; the key never leaves Nexus). */
  encrypt(plaintext: Uint8Array): Promise<Uint8Array>;
  /** Decrypts what `encrypt` returned. */
  decrypt(ciphertext: Uint8Array): Promise<Uint8Array>;
  /**
   * Calls `onChange` with the secret's values now and whenever a new
   * version becomes current (polls its metadata; needs `read`). Errors go
   * to `options.onError`, and polling goes on with backoff.
   */
  watchSecret(path: string, onChange: SecretChangeHandler, options?: WatchSecretOptions): SecretWatch;
  /** The SPIFFE ID this client presents (follows rotation). */
  spiffeId(): string;
  /** Stops watches, closes connections (and the identity source, when the SDK opened it). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Connects to Nexus as this workload. Resolves once the workload's SVID is
 * available; the Nexus SPIFFE ID is checked on every new connection.
 *
 * @throws {ConfigError} for a malformed setting (e.g. an `http:` Nexus URL).
 * @throws {IdentitySourceError} when no SVID arrives (the message names the
 *   directory or socket and what is missing).
 */
export async function connect(options: ConnectOptions = {}): Promise<SpikeClient> {
  const config = resolveWorkloadConfig({
    ...options.env,
    ...(options.nexusUrl === undefined ? {} : { SPIKE_NEXUS_API_URL: options.nexusUrl }),
    ...(options.svidDir === undefined ? {} : { SPIKE_SVID_DIR: options.svidDir }),
    ...(options.endpointSocket === undefined ? {} : { SPIFFE_ENDPOINT_SOCKET: options.endpointSocket }),
  });
  const ownsIdentity = options.identity === undefined;
  const identity = options.identity ??
    selectIdentitySource(
      config.identity,
      options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs },
    );
  try {
    await identity.ready();
  } catch (error) {
    if (ownsIdentity) await identity.close();
    throw error;
  }
  const roots = toTrustRoots(config.trustRoots);
  const transport = createMtlsClient({
    identity,
    serverId: (id) => isNexus(id, roots),
    timeoutMs: options.timeoutMs ?? 30_000,
  });
  const nexus = new NexusClient(config.nexusUrl, transport);
  const retry = { ...DEFAULT_RETRY, attempts: options.attempts ?? DEFAULT_RETRY.attempts };
  // Reads and the cipher API may run twice; a write is not repeated after a
  // broken connection, because it may have landed.
  const read = <T>(call: () => Promise<T>) => withRetries(call, true, retry);
  const write = <T>(call: () => Promise<T>) => withRetries(call, false, retry);
  const watches = new Set<SecretWatch>();
  let closed = false;

  const client: SpikeClient = {
    getSecret: (path, o) => read(() => nexus.getSecret(path, o?.version ?? 0)),
    async getSecretValue(path, key, o) {
      const values = await read(() => nexus.getSecret(path, o?.version ?? 0));
      if (!Object.hasOwn(values, key)) throw new NotFoundError(404, "api_not_found");
      return values[key]!;
    },
    getSecrets: (paths) => read(() => nexus.getSecrets(paths)),
    putSecret: (path, values, o) => write(() => nexus.putSecret(path, values, o)),
    patchSecret: (path, changes, o) => write(() => nexus.patchSecret(path, changes, o)),
    deleteSecret: (path, versions = []) => write(() => nexus.deleteSecret(path, versions)),
    undeleteSecret: (path, versions = []) => write(() => nexus.undeleteSecret(path, versions)),
    destroySecret: (path, versions) => write(() => nexus.destroySecret(path, versions)),
    putMetadata: (path, update) => write(() => nexus.putSecretMetadata(path, update)),
    deleteMetadata: (path) => write(() => nexus.deleteSecretMetadata(path)),
    moveSecret: (from, to) => write(() => nexus.moveSecret(from, to)),
    listSecrets: () => read(() => nexus.listSecrets()),
    listSecretsPage: (query = {}) => read(() => nexus.listSecretsPage(query)),
    iterateSecrets: (prefix = "", options = {}) =>
      pagedSecretPaths((query) => read(() => nexus.listSecretsPage(query)), prefix, options.pageSize ?? 500),
    getMetadata: (path, o) => read(() => nexus.getSecretMetadata(path, o?.version ?? 0)),
    putPolicy: (policy) =>
      write(() =>
        nexus.putPolicy({
          name: policy.name,
          spiffeidPattern: policy.spiffeIdPattern,
          pathPattern: policy.pathPattern,
          permissions: policy.permissions,
        })
      ),
    // By name through the helpers, so a missing name is NotFoundError against SPIKE's Nexus too (it answers 500).
    getPolicy: async (name) => fromWire(await read(() => getPolicyByName(nexus, name))),
    deletePolicy: (name) => write(() => deletePolicyByName(nexus, name)),
    async listPolicies(filter = {}) {
      const rows = await read(() =>
        nexus.listPolicies({
          ...(filter.spiffeIdPattern === undefined ? {} : { spiffeidPattern: filter.spiffeIdPattern }),
          ...(filter.pathPattern === undefined ? {} : { pathPattern: filter.pathPattern }),
        })
      );
      return rows.map(({ id, name }) => ({ id, name }));
    },
    encrypt: (plaintext) => read(() => nexus.encryptBytes(plaintext)),
    decrypt: (ciphertext) => read(() => nexus.decryptBytes(ciphertext)),
    watchSecret(path, onChange, watchOptions) {
      if (closed) throw new Error("watchSecret: the SPIKE client is closed");
      const watch = watchSecret(
        { getMetadata: client.getMetadata, getSecret: client.getSecret },
        path,
        onChange,
        watchOptions,
      );
      watches.add(watch);
      return {
        async stop() {
          watches.delete(watch);
          await watch.stop();
        },
      };
    },
    spiffeId: () => identity.current().spiffeId,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...watches].map((watch) => watch.stop()));
      watches.clear();
      transport.close();
      if (ownsIdentity) await identity.close();
    },
  };
  return client;
}

/** The name earlier versions of the SDK used for {@linkcode connect}; same function. */
export const connectSpike: (options?: ConnectOptions) => Promise<SpikeClient> = connect;

function fromWire(view: PolicyView): Policy {
  return {
    id: view.id,
    name: view.name,
    spiffeIdPattern: view.spiffiedPattern,
    pathPattern: view.pathPattern,
    permissions: view.permissions,
    createdAt: view.createdAt,
    updatedAt: view.updatedAt,
  };
}
