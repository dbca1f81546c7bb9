/**
 * What an application imports to read its secrets from Nexus (and use the
 * cipher API), authenticated by its own SPIFFE identity — no token, no
 * "secret zero".
 *
 * ```ts
 * import { connectSpike } from "./lib/sdk/mod.ts";
 *
 * const spike = await connectSpike({ env: Deno.env.toObject() });
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
import { ApiCallError } from "../client/errors.ts";
import { DEFAULT_RETRY, withRetries } from "./retry.ts";
import { NexusClient } from "../client/nexus_client.ts";
import { type Env, resolvePilotConfig } from "../config/spike_config.ts";
import { toTrustRoots } from "../config/trust_roots.ts";
import type { IdentitySource } from "../spiffe/identity.ts";
import { createMtlsClient } from "../spiffe/mtls_client.ts";
import { isNexus } from "../spiffe/roles.ts";
import { selectIdentitySource } from "../spiffe/source_select.ts";

export { ApiCallError } from "../client/errors.ts";
export type { IdentitySource, X509Identity } from "../spiffe/identity.ts";

/** How to reach Nexus. Everything has a default taken from `env`. */
export interface ConnectOptions {
  /**
   * Environment to read `SPIKE_NEXUS_API_URL`, `SPIKE_SVID_DIR`,
   * `SPIFFE_ENDPOINT_SOCKET` and `SPIKE_TRUST_ROOT_NEXUS` from (pass
   * `Deno.env.toObject()`; the SDK never reads the environment itself).
   */
  readonly env?: Env;
  /** Nexus URL; overrides `SPIKE_NEXUS_API_URL`. */
  readonly nexusUrl?: string;
  /** This workload's identity; default: SVID files or the Workload API, as configured in `env`. */
  readonly identity?: IdentitySource;
  /** Per-call timeout in ms (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * Attempts per call, the first included (default 3; 1 turns retries off).
   * Retried: 503 while Nexus is not ready and 429 (after its `Retry-After`),
   * with backoff; a broken connection, for reads and the cipher API only.
   */
  readonly attempts?: number;
}

/** A connected client. Reuses TLS connections; follows SVID rotation. */
export interface SpikeClient {
  /** All key/value pairs of a secret (version 0 or absent = current). */
  getSecret(path: string, options?: { version?: number }): Promise<Record<string, string>>;
  /** One value of a secret; rejects with `ApiCallError` (404) when the key is missing. */
  getSecretValue(path: string, key: string, options?: { version?: number }): Promise<string>;
  /** Writes a new version (needs `write` on the path). */
  putSecret(path: string, values: Readonly<Record<string, string>>): Promise<void>;
  /** Encrypts with Nexus's key (cipher API; the key never leaves Nexus). */
  encrypt(plaintext: Uint8Array): Promise<Uint8Array>;
  /** Decrypts what `encrypt` returned. */
  decrypt(ciphertext: Uint8Array): Promise<Uint8Array>;
  /** Closes connections (and the identity source, when the SDK opened it). */
  close(): Promise<void>;
}

/**
 * Connects to Nexus as this workload. Resolves once the workload's SVID is
 * available; the Nexus SPIFFE ID is checked on every new connection.
 */
export async function connectSpike(options: ConnectOptions = {}): Promise<SpikeClient> {
  const config = resolvePilotConfig({ HOME: "/", ...options.env });
  const ownsIdentity = options.identity === undefined;
  const identity = options.identity ?? selectIdentitySource(config.identity);
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
  const nexus = new NexusClient(options.nexusUrl ?? config.nexusUrl, transport);
  const retry = { ...DEFAULT_RETRY, attempts: options.attempts ?? DEFAULT_RETRY.attempts };
  const read = <T>(call: () => Promise<T>) => withRetries(call, true, retry);
  return {
    getSecret: (path, o) => read(() => nexus.getSecret(path, o?.version ?? 0)),
    async getSecretValue(path, key, o) {
      const values = await read(() => nexus.getSecret(path, o?.version ?? 0));
      if (!Object.hasOwn(values, key)) throw new ApiCallError(404, "api_not_found");
      return values[key]!;
    },
    // A write is not repeated after a broken connection: it may have landed.
    putSecret: (path, values) => withRetries(() => nexus.putSecret(path, values), false, retry),
    encrypt: (plaintext) => read(() => nexus.encryptBytes(plaintext)),
    decrypt: (ciphertext) => read(() => nexus.decryptBytes(ciphertext)),
    async close() {
      transport.close();
      if (ownsIdentity) await identity.close();
    },
  };
}
