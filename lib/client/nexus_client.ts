/**
 * A typed client for the Nexus API (SPIKE v1 wire contract). The CLI and
 * the SDK both use it; it knows paths, actions and field names, and turns
 * error answers into `ApiCallError`.
 *
 * @module
 */
import type { ErrorCode } from "../api/errors.ts";
import { type Action, PATHS, urlFor } from "../api/paths.ts";
import type { Permission } from "../api/validate.ts";
import { ApiCallError, apiCallError, UnsupportedExtensionError } from "./errors.ts";
import type { Transport, TransportResponse } from "./transport.ts";

/** One version's facts in {@linkcode SecretMetadata}. */
export interface SecretVersionMetadata {
  /** RFC 3339. */
  readonly createdTime: string;
  /** Version number. */
  readonly version: number;
  /** RFC 3339, or `null` while not deleted. */
  readonly deletedTime: string | null;
  /** `true` when the version's values were destroyed for good [ours]; absent otherwise. */
  readonly destroyed?: true;
  /** RFC 3339: when this version expires [ours]; absent when it does not. */
  readonly expiresAt?: string;
}

/** Secret metadata as the wire shows it. */
export interface SecretMetadata {
  /** Per-version facts keyed by version number. */
  readonly versions: Readonly<Record<string, SecretVersionMetadata>>;
  /** Path-level facts. */
  readonly metadata: {
    readonly currentVersion: number;
    readonly oldestVersion: number;
    readonly createdTime: string;
    readonly updatedTime: string;
    readonly maxVersions: number;
    /** The secret's custom metadata [ours]; absent when it has none. */
    readonly customMetadata?: Readonly<Record<string, string>>;
    /** RFC 3339: when the whole secret expires [ours]; absent when it does not. */
    readonly expiresAt?: string;
  };
}

/** What a metadata put changes [ours]; absent fields stay as they are. */
export interface MetadataUpdate {
  /** Replaces all custom metadata (at most 64 keys of ≤ 128 bytes, values ≤ 512 bytes); `{}` clears it. */
  readonly customMetadata?: Readonly<Record<string, string>>;
  /** The whole secret expires this long from now: a duration (`"24h"`, `"1h30m"`) or seconds. */
  readonly ttl?: string | number;
  /** The whole secret expires at this time; `null` removes its expiry. */
  readonly expiresAt?: string | Date | null;
}

/** A policy as the wire shows it. */
export interface PolicyView {
  readonly id: string;
  readonly name: string;
  readonly spiffiedPattern: string;
  readonly pathPattern: string;
  readonly permissions: Permission[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Fields of a policy to create or update. */
export interface PolicyInput {
  readonly name: string;
  readonly spiffeidPattern: string;
  readonly pathPattern: string;
  readonly permissions: readonly Permission[];
}

/** Cipher API JSON-mode envelope. */
export interface CipherEnvelope {
  readonly version: number;
  readonly nonce: string;
  readonly ciphertext: string;
}

/** Recovery shards and the root key version they rebuild. */
export interface RecoveryShards {
  /** Shard by index (the caller zeroes them). */
  readonly shards: Map<number, Uint8Array>;
  /** The root key version [ours]; `undefined` from a Nexus that does not say (SPIKE's). */
  readonly keyVersion?: number;
  /** Shards needed to restore [ours], when Nexus says. */
  readonly threshold?: number;
}

/** Restore progress. */
export interface RestoreProgress {
  readonly collected: number;
  readonly remaining: number;
  readonly restored: boolean;
}

/** Check-and-set and expiry for a put or patch [ours]. */
export interface WriteOptions {
  /** Write only when the secret's current version is this number (0: no current version). */
  readonly cas?: number;
  /** The whole secret expires this long from now: a duration (`"24h"`, `"1h30m"`) or seconds. */
  readonly ttl?: string | number;
  /** The whole secret expires at this time (RFC 3339 or a `Date`). */
  readonly expiresAt?: string | Date;
  /** The version written expires this long from now. */
  readonly versionTtl?: string | number;
  /** The version written expires at this time. */
  readonly versionExpiresAt?: string | Date;
}

/** The option fields that were given, ready for the wire (none given: the old wire form exactly). */
function optionFields(options: WriteOptions | MetadataUpdate): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) out[key] = value instanceof Date ? value.toISOString() : value;
  }
  return out;
}

/** A paged, scoped list request [ours]. */
export interface ListQuery {
  /** Only paths starting with this (default: all). */
  readonly prefix?: string;
  /** Page size, 1–1000 (default 100). */
  readonly limit?: number;
  /** The previous page's `cursor`. */
  readonly cursor?: string;
}

/** One page of a paged list [ours]. */
export interface ListPage {
  /** Paths, in byte order. */
  readonly keys: string[];
  /** Where the next page starts; absent on the last page. */
  readonly cursor?: string;
}

/** One path's answer in a batch read [ours]: its values, or why not. */
export type BatchReadResult =
  | { readonly data: Record<string, string> }
  | { readonly err: "api_not_found" | "access_unauthorized" | "api_internal_error" };

/** Typed Nexus API calls over a transport. */
export class NexusClient {
  readonly #base: string;
  readonly #transport: Transport;
  /** Whether Nexus is ours: `"yes"`, or the status its `GET /health` answered; asked once. */
  #ours: Promise<string> | undefined;

  /** Creates a client for the Nexus at `baseUrl` (e.g. `https://localhost:8553`). */
  constructor(baseUrl: string, transport: Transport) {
    this.#base = baseUrl.replace(/\/+$/, "");
    this.#transport = transport;
  }

  /**
   * Writes a new version of a secret. With `cas` [ours], only when the
   * current version is that number (0: none); else a `ConflictError` (409).
   * Without options the body is SPIKE's `{"path","values"}` exactly. With
   * `cas` or an expiry, the first such put of this client asks whether
   * Nexus is ours and throws `UnsupportedExtensionError` before writing
   * when it is not.
   */
  async putSecret(path: string, values: Readonly<Record<string, string>>, options: WriteOptions = {}): Promise<void> {
    const extensions = optionFields(options);
    if (Object.keys(extensions).length > 0) await this.#requireOurs("check-and-set (cas) and expiry on put");
    await this.#json(PATHS.secrets, "", { ...extensions, path, values });
  }

  /**
   * Merges `changes` into the current version as a new version [ours]
   * (`null` removes a key); Nexus does it atomically. `cas` as for
   * `putSecret`. 404 when the secret has no current version.
   */
  async patchSecret(
    path: string,
    changes: Readonly<Record<string, string | null>>,
    options: WriteOptions = {},
  ): Promise<void> {
    await this.#json(PATHS.secrets, "patch", { ...optionFields(options), path, values: changes });
  }

  /** Reads a secret's values (version 0 = current). */
  async getSecret(path: string, version = 0): Promise<Record<string, string>> {
    const out = await this.#json(PATHS.secrets, "get", { path, version });
    return (out.data ?? {}) as Record<string, string>;
  }

  /**
   * Reads the current version of up to 100 paths in one request [ours],
   * each authorized on its own: per path its values, or `api_not_found`,
   * or `access_unauthorized`.
   */
  async getSecrets(paths: readonly string[]): Promise<Record<string, BatchReadResult>> {
    const out = await this.#json(PATHS.secrets, "getMany", { paths: [...paths] });
    return (out.results ?? {}) as Record<string, BatchReadResult>;
  }

  /** Soft-deletes versions (`[]` = current). */
  async deleteSecret(path: string, versions: readonly number[] = []): Promise<void> {
    await this.#json(PATHS.secrets, "delete", { path, versions });
  }

  /**
   * Restores soft-deleted versions. `0` = the current version; `[]` = the
   * current version, or the newest deleted one when every version is
   * deleted. 404 when nothing was restored.
   */
  async undeleteSecret(path: string, versions: readonly number[] = []): Promise<void> {
    await this.#json(PATHS.secrets, "undelete", { path, versions });
  }

  /** Changes a secret's metadata without making a new version [ours]. */
  async putSecretMetadata(path: string, update: MetadataUpdate): Promise<void> {
    await this.#json(PATHS.secretsMetadata, "", { ...optionFields(update), path });
  }

  /** Destroys versions for good [ours]: their values are removed, not just marked deleted. */
  async destroySecret(path: string, versions: readonly number[]): Promise<void> {
    await this.#json(PATHS.secrets, "destroy", { path, versions });
  }

  /** Removes a secret with every version and its metadata [ours]. */
  async deleteSecretMetadata(path: string): Promise<void> {
    await this.#json(PATHS.secretsMetadata, "delete", { path });
  }

  /**
   * Moves a secret with every version and its metadata to `to`, atomically
   * [ours]; `ConflictError` when `to` exists.
   */
  async moveSecret(from: string, to: string): Promise<void> {
    await this.#json(PATHS.secrets, "move", { from, to });
  }

  /** Lists secret paths. */
  async listSecrets(): Promise<string[]> {
    const out = await this.#json(PATHS.secrets, "list", {});
    return (out.keys ?? []) as string[];
  }

  /**
   * One page of the paths under `prefix` that the caller may read or list
   * [ours] (the superuser, and holders of `list` on `spike/system/secret`:
   * every path). Follow `cursor` until it is absent; a page may be short,
   * even empty, while it is present.
   */
  async listSecretsPage(query: ListQuery = {}): Promise<ListPage> {
    const out = await this.#json(PATHS.secrets, "list", {
      // Always a paged request, even for everything: `prefix` tells Nexus so.
      prefix: query.prefix ?? "",
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
    const keys = (out.keys ?? []) as string[];
    return typeof out.cursor === "string" ? { keys, cursor: out.cursor } : { keys };
  }

  /** Reads a secret's metadata. */
  async getSecretMetadata(path: string, version = 0): Promise<SecretMetadata> {
    return await this.#json(PATHS.secretsMetadata, "get", { path, version }) as unknown as SecretMetadata;
  }

  /** Creates or updates a policy by name. */
  async putPolicy(policy: PolicyInput): Promise<string> {
    const out = await this.#json(PATHS.policy, "", { ...policy, permissions: [...policy.permissions] });
    return String(out.id ?? "");
  }

  /** Reads a policy by name. */
  async getPolicy(name: string): Promise<PolicyView> {
    return await this.#json(PATHS.policy, "get", { id: name }) as unknown as PolicyView;
  }

  /** Deletes a policy by name. */
  async deletePolicy(name: string): Promise<void> {
    await this.#json(PATHS.policy, "delete", { id: name });
  }

  /** Lists policies, optionally filtered by exact patterns. */
  async listPolicies(filter: { spiffeidPattern?: string; pathPattern?: string } = {}): Promise<
    Array<{ id: string; name: string }>
  > {
    const out = await this.#json(PATHS.policy, "list", filter);
    return (out.policies ?? []) as Array<{ id: string; name: string }>;
  }

  /** Encrypts in JSON mode; `algorithm` is SPIKE's optional hint (AES-GCM is the only one). */
  async encryptJson(plaintextBase64: string, algorithm?: string): Promise<CipherEnvelope> {
    const body = algorithm === undefined ? { plaintext: plaintextBase64 } : { plaintext: plaintextBase64, algorithm };
    return await this.#json(PATHS.encrypt, "", body) as unknown as CipherEnvelope;
  }

  /** Decrypts in JSON mode; returns base64 plaintext. */
  async decryptJson(envelope: CipherEnvelope, algorithm?: string): Promise<string> {
    const out = await this.#json(
      PATHS.decrypt,
      "",
      algorithm === undefined ? { ...envelope } : { ...envelope, algorithm },
    );
    return String(out.plaintext ?? "");
  }

  /** Encrypts raw bytes (octet-stream mode). */
  encryptBytes(plaintext: Uint8Array): Promise<Uint8Array> {
    return this.#octets(PATHS.encrypt, plaintext);
  }

  /** Decrypts raw bytes (octet-stream mode). */
  decryptBytes(sealed: Uint8Array): Promise<Uint8Array> {
    return this.#octets(PATHS.decrypt, sealed);
  }

  /** Asks for every recovery shard (Pilot recover role). */
  async recover(): Promise<Map<number, Uint8Array>> {
    return (await this.recoverWithVersion()).shards;
  }

  /** Every recovery shard and the root key version they rebuild [ours] (Pilot recover role). */
  async recoverWithVersion(): Promise<RecoveryShards> {
    const out = await this.#json(PATHS.recover, "", {});
    const shards = new Map<number, Uint8Array>();
    for (const [index, values] of Object.entries((out.shards ?? {}) as Record<string, number[]>)) {
      shards.set(Number(index), Uint8Array.from(values));
    }
    const { keyVersion, threshold } = out;
    return {
      shards,
      ...(typeof keyVersion === "number" ? { keyVersion } : {}),
      ...(typeof threshold === "number" ? { threshold } : {}),
    };
  }

  /**
   * Sends one recovery shard (Pilot restore role); `keyVersion` [ours] is the
   * version its recovery file names, so a shard of a retired key is refused
   * at once.
   */
  async restore(index: number, shard: Uint8Array, keyVersion?: number): Promise<RestoreProgress> {
    const values = Array.from(shard);
    const body = JSON.stringify({ id: index, shard: values, ...(keyVersion === undefined ? {} : { keyVersion }) });
    values.fill(0);
    return await this.#send(PATHS.restore, "", body, "application/json") as unknown as RestoreProgress;
  }

  /**
   * [ours] Asks Nexus to check the MACs of audit record lines (Pilot
   * superuser; at most 1000 lines). One verdict per line, in order: `ok`,
   * `mismatch`, `unknown_key`, `unkeyed` or `malformed`.
   */
  async verifyAuditRecords(lines: readonly string[]): Promise<string[]> {
    const out = await this.#json(PATHS.auditVerify, "", { records: [...lines] });
    const results = out.results;
    if (!Array.isArray(results) || results.length !== lines.length) {
      throw new ApiCallError(200, "api_internal_error");
    }
    return results.map(String);
  }

  /** Starts a root key rotation [ours] (Pilot superuser); resolves the versions it rotates between. */
  async rotate(): Promise<{ from: number; to: number }> {
    const out = await this.#json(PATHS.rotate, "", {});
    return { from: Number(out.from), to: Number(out.to) };
  }

  /** Root key versions, rotation progress and Keepers [ours] (Pilot superuser). */
  async keyStatus(): Promise<Record<string, unknown>> {
    return await this.#json(PATHS.keyStatus, "", {});
  }

  /**
   * Throws `UnsupportedExtensionError` unless Nexus is ours: ours answers
   * `GET /health` with 200, SPIKE's (which has no such route) with 400. A
   * put's extension fields are the only ones SPIKE's Nexus would silently
   * ignore (its answer to our new actions is 400), so only they need this.
   * Asked once per client; a transport without GET is taken at its word.
   */
  async #requireOurs(feature: string): Promise<void> {
    if (this.#transport.request === undefined) return;
    this.#ours ??= this.#transport.request("GET", `${this.#base}/health`).then(
      (response) => response.status === 200 ? "yes" : `${response.status}`,
      (error) => {
        this.#ours = undefined;
        throw error;
      },
    );
    const answer = await this.#ours;
    if (answer !== "yes") throw new UnsupportedExtensionError(feature, answer);
  }

  async #json(path: string, action: Action, body: unknown): Promise<Record<string, unknown>> {
    return await this.#send(path, action, JSON.stringify(body), "application/json");
  }

  async #send(path: string, action: Action, body: string, contentType: string): Promise<Record<string, unknown>> {
    const response = await this.#transport.post(urlFor(this.#base, path, action), body, {
      "content-type": contentType,
    });
    const parsed = parseJson(response);
    if (response.status !== 200) throw errorOf(response, parsed);
    if (!parsed) throw new ApiCallError(response.status, "api_internal_error");
    return parsed;
  }

  async #octets(path: string, body: Uint8Array): Promise<Uint8Array> {
    const response = await this.#transport.post(urlFor(this.#base, path), body, {
      "content-type": "application/octet-stream",
    });
    if (response.status !== 200) throw errorOf(response, parseJson(response));
    return response.body;
  }
}

/** The error for a non-200 answer: status, wire code, and `Retry-After` when given in seconds. */
function errorOf(response: TransportResponse, parsed: Record<string, unknown> | undefined): ApiCallError {
  const header = response.headers["retry-after"];
  const text = Array.isArray(header) ? header[0] : header;
  const seconds = text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
  const reason = typeof parsed?.reason === "string" ? parsed.reason : undefined;
  return apiCallError(response.status, parsed?.err as ErrorCode | undefined, seconds, reason);
}

function parseJson(response: TransportResponse): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(response.body));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}
