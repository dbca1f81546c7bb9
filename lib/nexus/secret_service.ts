/**
 * Secret operations on top of the store: seals values with the secrets key
 * (path and version bound in as associated data) and retries the store's
 * compare-and-swap until a write lands, so concurrent writers on one path —
 * in this process or in other Nexus processes — never lose an update.
 * Writers of one path in this process take turns (`deps.writes`, one
 * queue per Nexus), so they do not race each other into failed swaps and
 * backoff; the swap and its retries remain for writers in other processes.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import { open, seal } from "../crypto/aead.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { SecretRecord, Store } from "../store/types.ts";
import type { KeyedQueue } from "./keyed_queue.ts";
import type { RootKeyState } from "./root_key_state.ts";
import {
  deleteVersions,
  type MetadataView,
  metadataView,
  nextVersionForPut,
  nextVersionNumber,
  selectVersion,
  undeleteVersions,
} from "./secret_state.ts";

/** What the secret service needs. */
export interface SecretServiceDeps {
  /** Backend. */
  readonly store: Store;
  /** Source of the secrets key. */
  readonly keys: RootKeyState;
  /** Wall clock. */
  readonly clock: () => Date;
  /** Nonce source. */
  readonly random: RandomBytes;
  /** Versions kept per path. */
  readonly maxVersions: number;
  /** Where writes of one path take turns (one queue per Nexus, shared by every request). */
  readonly writes: KeyedQueue;
}

/** How often a contended write is retried before giving up with a 500. */
const MAX_ATTEMPTS = 100;

const encoder = new TextEncoder();

/**
 * Associated data binding a sealed record to its identity, so a ciphertext
 * copied to another path or version fails to open.
 */
export function secretAad(path: string, version: number): Uint8Array {
  return encoder.encode(`spike/v1/secret\0${path}\0${version}`);
}

/** Secret operations used by the routes. */
export class SecretService {
  readonly #deps: SecretServiceDeps;

  /** Creates the service around its dependencies. */
  constructor(deps: SecretServiceDeps) {
    this.#deps = deps;
  }

  /** Writes a new version of `path` holding `values`. */
  async put(path: string, values: Readonly<Record<string, string>>): Promise<void> {
    const plaintext = encoder.encode(JSON.stringify(values));
    const key = this.#deps.keys.keys().secrets;
    try {
      await this.#update(path, async (record, now) => {
        // The version number is part of the associated data, so seal once
        // the next number is known, inside the compare-and-swap loop.
        const version = nextVersionNumber(record);
        const sealed = await seal(key, plaintext, secretAad(path, version), this.#deps.random);
        return nextVersionForPut(record, now, this.#deps.maxVersions, () => sealed);
      });
    } finally {
      zeroize(plaintext);
    }
  }

  /** Reads version `version` (0 = current) of `path`; 404 when missing or deleted. */
  async get(path: string, version: number): Promise<Record<string, string>> {
    const record = await this.#deps.store.readSecret(path);
    const selected = record && selectVersion(record, version);
    if (!selected) throw new ApiError("api_not_found");
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = await open(this.#deps.keys.keys().secrets, selected.sealed, secretAad(path, selected.version));
      return JSON.parse(new TextDecoder().decode(plaintext));
    } catch {
      // A record that fails to open was tampered with or sealed under another
      // root key; say nothing more to the client.
      throw new ApiError("api_internal_error", `secret record failed to open (path length ${path.length})`);
    } finally {
      zeroize(plaintext);
    }
  }

  /** Soft-deletes versions (`[]` or 0 = current); 404 when the path is unknown. */
  async delete(path: string, versions: readonly number[]): Promise<void> {
    await this.#update(path, (record, now) => {
      if (!record) throw new ApiError("api_not_found");
      return deleteVersions(record, versions, now);
    });
  }

  /**
   * Restores versions (0 = current; `[]` = current, or the highest deleted
   * one when all are deleted); 404 when the path is unknown or nothing was
   * restored.
   */
  async undelete(path: string, versions: readonly number[]): Promise<void> {
    await this.#update(path, (record, now) => {
      const next = record && undeleteVersions(record, versions, now);
      if (!next) throw new ApiError("api_not_found");
      return next;
    });
  }

  /** Metadata of `path`; 404 when unknown (or when an explicit `version` is missing or deleted). */
  async metadata(path: string, version: number): Promise<MetadataView> {
    const record = await this.#deps.store.readSecret(path);
    const view = record && metadataView(record, version);
    if (!view) throw new ApiError("api_not_found");
    return view;
  }

  /** Every secret path, sorted. */
  list(): Promise<string[]> {
    return this.#deps.store.listSecretPaths();
  }

  #update(
    path: string,
    change: (record: SecretRecord | undefined, now: Date) => SecretRecord | Promise<SecretRecord>,
  ): Promise<void> {
    return this.#deps.writes.run(path, () => this.#swap(path, change));
  }

  /** Read, compute, compare-and-swap; again after a lost swap (a writer in another process). */
  async #swap(
    path: string,
    change: (record: SecretRecord | undefined, now: Date) => SecretRecord | Promise<SecretRecord>,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = await this.#deps.store.readSecret(path);
      const next = await change(record, this.#deps.clock());
      if (next === record) return;
      if (await this.#deps.store.writeSecret(path, record?.revision ?? 0, next)) return;
      // Lost the race: back off a little (randomized so writers spread out).
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
    }
    throw new ApiError("api_internal_error", "secret write kept conflicting; gave up");
  }
}
