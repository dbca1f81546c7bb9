/**
 * Secret operations on top of the store: seals values with the secrets key
 * of the write key version (path and version bound in as associated data),
 * opens each stored version with the key of the version it was sealed under,
 * and retries the store's compare-and-swap until a write lands, so
 * concurrent writers on one path — in this process or in other Nexus
 * processes — never lose an update.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import { open, seal } from "../crypto/aead.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { zeroize } from "../crypto/zeroize.ts";
import { StaleKeyVersionError } from "../store/errors.ts";
import type { SecretRecord, Store } from "../store/types.ts";
import type { DerivedKeys, RootKeyState } from "./root_key_state.ts";
import {
  deleteVersions,
  type MetadataView,
  metadataView,
  nextVersionForPut,
  nextVersionNumber,
  selectVersion,
  undeleteVersions,
} from "./secret_state.ts";

/** Brings this Nexus's keys in line with the store's key state (another Nexus rotated). */
export interface KeyCatchUp {
  /** Resolves whether this Nexus now holds every version the store needs. */
  catchUp(): Promise<boolean>;
}

/** What the secret service needs. */
export interface SecretServiceDeps {
  /** Backend. */
  readonly store: Store;
  /** Source of the secrets keys. */
  readonly keys: RootKeyState;
  /** Wall clock. */
  readonly clock: () => Date;
  /** Nonce source. */
  readonly random: RandomBytes;
  /** Versions kept per path. */
  readonly maxVersions: number;
  /** Fetches keys of a rotation made by another Nexus; absent without Keepers. */
  readonly keyCatchUp?: KeyCatchUp;
}

/** How often a contended write is retried before giving up with a 500. */
const MAX_ATTEMPTS = 100;

/** How often a write refused for its key version is retried after catching up. */
const MAX_CATCH_UPS = 3;

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
    try {
      for (let attempt = 0;; attempt++) {
        const keys = this.#deps.keys.keys();
        try {
          await this.#update(path, async (record, now) => {
            // The version number is part of the associated data, so seal once
            // the next number is known, inside the compare-and-swap loop.
            const version = nextVersionNumber(record);
            const sealed = await seal(keys.secrets, plaintext, secretAad(path, version), this.#deps.random);
            return nextVersionForPut(record, now, this.#deps.maxVersions, () => sealed, keys.version);
          }, keys.version);
          return;
        } catch (error) {
          // Another Nexus rotated the root key: fetch the new one and seal again.
          if (!(error instanceof StaleKeyVersionError) || attempt >= MAX_CATCH_UPS) throw error;
          if (!await this.#catchUp()) throw notReady("the store takes new data under a root key version not held");
        }
      }
    } finally {
      zeroize(plaintext);
    }
  }

  /** Reads version `version` (0 = current) of `path`; 404 when missing or deleted. */
  async get(path: string, version: number): Promise<Record<string, string>> {
    const record = await this.#deps.store.readSecret(path);
    const selected = record && selectVersion(record, version);
    if (!selected) throw new ApiError("api_not_found");
    const keys = await this.#keysFor(selected.keyVersion);
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = await open(keys.secrets, selected.sealed, secretAad(path, selected.version));
      return JSON.parse(new TextDecoder().decode(plaintext));
    } catch {
      // A record that fails to open was tampered with; say nothing more to the client.
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

  /** The keys of root key version `version`, catching up with the store once when they are not held. */
  async #keysFor(version: number): Promise<DerivedKeys> {
    const held = this.#deps.keys.keysFor(version);
    if (held) return held;
    await this.#catchUp();
    const fetched = this.#deps.keys.keysFor(version);
    if (!fetched) throw notReady(`record sealed under root key version ${version}, which this Nexus does not hold`);
    return fetched;
  }

  async #catchUp(): Promise<boolean> {
    return await this.#deps.keyCatchUp?.catchUp() ?? false;
  }

  async #update(
    path: string,
    change: (record: SecretRecord | undefined, now: Date) => SecretRecord | Promise<SecretRecord>,
    sealedUnder?: number,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = await this.#deps.store.readSecret(path);
      const next = await change(record, this.#deps.clock());
      if (next === record) return;
      if (await this.#deps.store.writeSecret(path, record?.revision ?? 0, next, sealedUnder)) return;
      // Lost the race: back off a little (randomized so writers spread out).
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
    }
    throw new ApiError("api_internal_error", "secret write kept conflicting; gave up");
  }
}

/** 503: this Nexus lacks a key the store needs (it is catching up with a rotation). */
function notReady(detail: string): ApiError {
  return new ApiError("state_not_ready", detail);
}
