/**
 * Secret operations on top of the store: seals values with the secrets key
 * of the write key version (path and version bound in as associated data),
 * opens each stored value with the key of the root key version it was sealed
 * under, and retries the store's compare-and-swap until a write lands, so
 * concurrent writers on one path — in this process or in other Nexus
 * processes — never lose an update. Writers of one path in this process
 * take turns (`deps.writes`, one queue per Nexus; a move holds the turns of
 * both its paths), so they do not race each other into failed swaps and
 * backoff; the swap and its retries remain for writers in other processes
 * (and the expiry sweep, which takes the same turns).
 *
 * The key-value extensions [ours] ride the same loop: check-and-set checks
 * the record the swap starts from, a patch opens, merges and re-seals inside
 * it, expiry is resolved against the clock of each attempt. Every sealing
 * and opening goes through the private helpers at the bottom (values:
 * AAD = path|version; custom metadata: AAD = path|purpose), including the
 * re-sealing a move needs.
 *
 * A write that seals anything names the key version it sealed under, and
 * the store refuses it once a rotation has raised the minimum past that
 * version (another Nexus rotated the root key): the service then catches up
 * with the store's key state and writes again, sealed under the new key.
 *
 * @module
 */
import { ApiError, badRequest } from "../api/errors.ts";
import { type Expiry, MAX_KEYS } from "../api/validate.ts";
import { open, seal } from "../crypto/aead.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { zeroize } from "../crypto/zeroize.ts";
import type { SealedMetadata, SecretRecord, SecretVersion, Store } from "../store/types.ts";
import type { KeyedQueue } from "./keyed_queue.ts";
import type { DerivedKeys, RootKeyState } from "./root_key_state.ts";
import {
  currentVersionOf,
  deleteVersions,
  destroyVersions,
  isDestroyed,
  type MetadataView,
  metadataView,
  nextVersionForPut,
  nextVersionNumber,
  type PutExpiry,
  secretExpired,
  selectVersion,
  setSecretExpiry,
  undeleteVersions,
} from "./secret_state.ts";
import { type KeyCatchUp, withWriteKeys } from "./write_keys.ts";

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
  /** Where writes of one path take turns (one queue per Nexus, shared by every request). */
  readonly writes: KeyedQueue;
  /** Fetches keys of a rotation made by another Nexus; absent without Keepers. */
  readonly keyCatchUp?: KeyCatchUp;
}

/** Options of a put or patch [ours]. */
export interface PutOptions {
  /**
   * Check-and-set: the write lands only when the path's current version is
   * this number (0: the path has no current version — it does not exist, or
   * every version is deleted or expired); otherwise 409 `api_conflict`.
   */
  readonly cas?: number;
  /** When the whole secret expires (replaces an earlier expiry; absent: kept). */
  readonly expires?: Expiry;
  /** When the version written expires. */
  readonly versionExpires?: Expiry;
}

/** How often a contended write is retried before giving up with a 500. */
const MAX_ATTEMPTS = 100;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Associated data binding a sealed record to its identity, so a ciphertext
 * copied to another path or version fails to open.
 */
export function secretAad(path: string, version: number): Uint8Array {
  return encoder.encode(`spike/v1/secret\0${path}\0${version}`);
}

/**
 * Associated data of a secret's sealed custom metadata: the path and the
 * purpose, so it opens neither at another path nor as a secret version.
 */
export function secretMetadataAad(path: string): Uint8Array {
  return encoder.encode(`spike/v1/secret-metadata\0${path}`);
}

/** What a metadata put changes [ours]; an absent field is left as it is. */
export interface MetadataChanges {
  /** Replaces the whole custom metadata; `{}` clears it. */
  readonly customMetadata?: Readonly<Record<string, string>>;
  /** Sets when the whole secret expires; `null` clears it. */
  readonly expires?: Expiry | null;
}

/** The time `expiry` names, written at `now`; 400 unless it lies after `now`. */
function expiryTime(expiry: Expiry, now: Date): Date {
  const at = "at" in expiry ? expiry.at : new Date(now.getTime() + expiry.ttlMs);
  if (at.getTime() <= now.getTime()) throw badRequest("the expiry time must lie in the future");
  return at;
}

/** The expiry a put sets, resolved at `now`. */
function putExpiry(options: PutOptions, now: Date): PutExpiry {
  return {
    ...(options.expires === undefined ? {} : { expiresAt: expiryTime(options.expires, now) }),
    ...(options.versionExpires === undefined ? {} : { versionExpiresAt: expiryTime(options.versionExpires, now) }),
  };
}

/** Throws 409 unless `record`'s current version is `cas` (no check when `cas` is undefined). */
function checkAndSet(record: SecretRecord | undefined, cas: number | undefined, now: Date): void {
  if (cas === undefined) return;
  const current = currentVersionOf(record, now);
  if (current !== cas) throw new ApiError("api_conflict", `check-and-set: current version is ${current}, not ${cas}`);
}

/** After a lost compare-and-swap: waits a little, randomized so writers spread out. */
function backOff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
}

/** 503: this Nexus lacks a key the store needs (it is catching up with a rotation). */
function notReady(detail: string): ApiError {
  return new ApiError("state_not_ready", detail);
}

/** Secret operations used by the routes. */
export class SecretService {
  readonly #deps: SecretServiceDeps;

  /** Creates the service around its dependencies. */
  constructor(deps: SecretServiceDeps) {
    this.#deps = deps;
  }

  /** Writes a new version of `path` holding `values`. */
  async put(path: string, values: Readonly<Record<string, string>>, options: PutOptions = {}): Promise<void> {
    const plaintext = encoder.encode(JSON.stringify(values));
    try {
      await this.#sealing((keys) =>
        this.#update(path, async (record, now) => {
          // Checked against the record this attempt swaps from, so a writer
          // that lands in between makes the check fail, not pass.
          checkAndSet(record, options.cas, now);
          const expiry = putExpiry(options, now);
          // The version number is part of the associated data, so seal once
          // the next number is known, inside the compare-and-swap loop.
          const sealed = await this.#sealVersion(keys, path, nextVersionNumber(record), plaintext);
          return nextVersionForPut(record, now, this.#deps.maxVersions, () => sealed, expiry, keys.version);
        }, keys.version)
      );
    } finally {
      zeroize(plaintext);
    }
  }

  /**
   * Writes a new version of `path` holding the current version's values
   * with `changes` merged in (a `null` value removes its key) [ours]. The
   * merge happens here, inside the compare-and-swap loop, on the version
   * the swap starts from: a writer landing in between makes this attempt
   * start over from its version, so no update is lost. 404 when the path
   * has no current version; 400 when the result would have no key. The new
   * version is sealed under the write key version, whatever the version it
   * was merged from was sealed under.
   */
  async patch(path: string, changes: Readonly<Record<string, string | null>>, options: PutOptions = {}): Promise<void> {
    await this.#sealing((keys) =>
      this.#update(path, async (record, now) => {
        checkAndSet(record, options.cas, now);
        const expiry = putExpiry(options, now);
        const current = record && selectVersion(record, 0, now);
        if (!current) throw new ApiError("api_not_found");
        // A Map, so that any key name (even `__proto__`) is just a key.
        const values = new Map(Object.entries(await this.#readValues(path, current)));
        for (const [key, value] of Object.entries(changes)) {
          if (value === null) values.delete(key);
          else values.set(key, value);
        }
        if (values.size === 0) throw badRequest("the patch removes every key; a secret keeps at least one");
        if (values.size > MAX_KEYS) throw badRequest(`the patched secret would have more than ${MAX_KEYS} keys`);
        const plaintext = encoder.encode(JSON.stringify(Object.fromEntries(values)));
        try {
          const sealed = await this.#sealVersion(keys, path, nextVersionNumber(record), plaintext);
          return nextVersionForPut(record, now, this.#deps.maxVersions, () => sealed, expiry, keys.version);
        } finally {
          zeroize(plaintext);
        }
      }, keys.version)
    );
  }

  /** Reads version `version` (0 = current) of `path`; 404 when missing or deleted. */
  async get(path: string, version: number): Promise<Record<string, string>> {
    const record = await this.#deps.store.readSecret(path);
    const selected = record && selectVersion(record, version, this.#deps.clock());
    if (!selected) throw new ApiError("api_not_found");
    return await this.#readValues(path, selected);
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

  /**
   * Destroys versions of `path` for good [ours]: their sealed values are
   * dropped from the store, not just marked deleted, and cannot be
   * restored. 404 when the path is unknown; versions that do not exist are
   * skipped. Nothing is sealed, so no key version is involved.
   */
  async destroy(path: string, versions: readonly number[]): Promise<void> {
    await this.#update(path, (record, now) => {
      if (!record) throw new ApiError("api_not_found");
      return destroyVersions(record, versions, now);
    });
  }

  /**
   * Moves `from` to `to` with every version and its metadata [ours],
   * re-sealed for the new path (the path is in each sealed value's
   * associated data, so the store alone could not move them) under the
   * write key version, whatever versions they were sealed under. One atomic
   * store move: readers see the secret at one path or the other, never
   * both or neither. 404 when `from` does not exist (or expired); 409
   * `api_conflict` when `to` exists (an expired secret there counts as
   * absent and is replaced).
   */
  move(from: string, to: string): Promise<void> {
    return this.#deps.writes.runAll([from, to], () => this.#move(from, to));
  }

  async #move(from: string, to: string): Promise<void> {
    await this.#sealing(async (keys) => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const source = await this.#deps.store.readSecret(from);
        const target = await this.#deps.store.readSecret(to);
        const now = this.#deps.clock();
        if (!source || secretExpired(source, now)) throw new ApiError("api_not_found");
        if (target && !secretExpired(target, now)) throw new ApiError("api_conflict", "move: the destination exists");
        const next = await this.#resealed(keys, from, to, source);
        const moved = await this.#deps.store.moveSecret(from, source.revision, to, target?.revision ?? 0, next, {
          sealedUnder: keys.version,
        });
        if (moved) return;
        await backOff(attempt);
      }
      throw new ApiError("api_internal_error", "secret move kept conflicting; gave up");
    });
  }

  /** Removes `path` with every version and its metadata [ours]; 404 when unknown. */
  deletePath(path: string): Promise<void> {
    return this.#deps.writes.run(path, () => this.#deletePath(path));
  }

  async #deletePath(path: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = await this.#deps.store.readSecret(path);
      if (!record) throw new ApiError("api_not_found");
      if (await this.#deps.store.deleteSecret(path, record.revision)) return;
      await backOff(attempt);
    }
    throw new ApiError("api_internal_error", "secret delete kept conflicting; gave up");
  }

  /** Metadata of `path`; 404 when unknown (or when an explicit `version` is missing or deleted). */
  async metadata(path: string, version: number): Promise<MetadataView> {
    const record = await this.#deps.store.readSecret(path);
    const view = record && metadataView(record, version, this.#deps.clock());
    if (!view) throw new ApiError("api_not_found");
    if (record.customMetadata === undefined) return view;
    const customMetadata = await this.#openMetadata(path, record.customMetadata);
    return { ...view, metadata: { ...view.metadata, customMetadata } };
  }

  /**
   * Changes `path`'s metadata without making a new version [ours]: custom
   * metadata is replaced as a whole, sealed under the write key version.
   * 404 when the path does not exist.
   */
  async putMetadata(path: string, changes: MetadataChanges): Promise<void> {
    const custom = changes.customMetadata;
    const plaintext = custom && Object.keys(custom).length > 0 ? encoder.encode(JSON.stringify(custom)) : undefined;
    try {
      const change = async (keys: DerivedKeys | undefined) => {
        // Sealed once: the associated data names the path, not a version.
        const sealed = plaintext && keys && await this.#sealMetadata(keys, path, plaintext);
        await this.#update(path, (record, now) => {
          if (!record) throw new ApiError("api_not_found");
          let next = record;
          if (changes.expires !== undefined) {
            next = setSecretExpiry(next, changes.expires === null ? null : expiryTime(changes.expires, now));
          }
          if (custom === undefined || (!sealed && next.customMetadata === undefined)) return next;
          const { customMetadata: _old, ...rest } = next;
          return sealed ? { ...rest, customMetadata: sealed } : rest;
        }, sealed ? keys!.version : undefined);
      };
      // Only new metadata is sealed; an expiry change or a clear seals nothing.
      if (plaintext) await this.#sealing(change);
      else await change(undefined);
    } finally {
      zeroize(plaintext);
    }
  }

  /** Every secret path, sorted. */
  list(): Promise<string[]> {
    return this.#deps.store.listSecretPaths();
  }

  /** Runs `write` with the write version's keys, catching up and sealing again after a rotation elsewhere. */
  #sealing<T>(write: (keys: DerivedKeys) => Promise<T>): Promise<T> {
    return withWriteKeys(this.#deps.keys, this.#deps.keyCatchUp, write);
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

  /** Seals `plaintext` as version `version` of `path`: the one place secret values are sealed. */
  #sealVersion(keys: DerivedKeys, path: string, version: number, plaintext: Uint8Array): Promise<Uint8Array> {
    return seal(keys.secrets, plaintext, secretAad(path, version), this.#deps.random);
  }

  /** Seals custom metadata of `path`: the one place it is sealed. */
  async #sealMetadata(keys: DerivedKeys, path: string, plaintext: Uint8Array): Promise<SealedMetadata> {
    const sealed = await seal(keys.secrets, plaintext, secretMetadataAad(path), this.#deps.random);
    return { sealed, keyVersion: keys.version };
  }

  /** Opens the custom metadata of `path`: the one place it is opened. */
  #openMetadata(path: string, metadata: SealedMetadata): Promise<Record<string, string>> {
    return this.#openJson(path, metadata.sealed, metadata.keyVersion, secretMetadataAad(path), "custom metadata");
  }

  /** The values of `version` of `path`, opened: the one place secret values are opened. */
  #readValues(path: string, version: SecretVersion): Promise<Record<string, string>> {
    return this.#openJson(path, version.sealed, version.keyVersion, secretAad(path, version.version), "secret record");
  }

  /** `#open`, then the JSON it holds parsed; the plaintext is zeroed either way. */
  async #openJson(
    path: string,
    sealed: Uint8Array,
    keyVersion: number,
    aad: Uint8Array,
    what: string,
  ): Promise<Record<string, string>> {
    const plaintext = await this.#open(path, sealed, keyVersion, aad, what);
    try {
      return JSON.parse(decoder.decode(plaintext));
    } finally {
      zeroize(plaintext);
    }
  }

  /**
   * Opens sealed bytes of `path` under `aad` with the keys of root key
   * version `keyVersion`; the caller zeroes what it gets. A version this
   * Nexus does not hold (another Nexus rotated) is fetched first, or the
   * request gets a 503. Bytes that fail to open were tampered with: a 500
   * that says nothing more to the client.
   */
  async #open(
    path: string,
    sealed: Uint8Array,
    keyVersion: number,
    aad: Uint8Array,
    what: string,
  ): Promise<Uint8Array> {
    const keys = await this.#keysFor(keyVersion);
    try {
      return await open(keys.secrets, sealed, aad);
    } catch {
      throw new ApiError("api_internal_error", `${what} failed to open (path length ${path.length})`);
    }
  }

  /**
   * `record` sealed for `to` instead of `from` under `keys` [ours]: every
   * version that still has values, and the custom metadata, opened under
   * the old path's associated data (with the key of its own version) and
   * sealed under the new one's. A destroyed version has nothing to seal; it
   * is only relabelled with the write version.
   */
  async #resealed(keys: DerivedKeys, from: string, to: string, record: SecretRecord): Promise<SecretRecord> {
    const versions = new Map<number, SecretVersion>();
    for (const [n, v] of record.versions) {
      if (isDestroyed(v)) {
        versions.set(n, { ...v, keyVersion: keys.version });
        continue;
      }
      const plaintext = await this.#open(from, v.sealed, v.keyVersion, secretAad(from, n), "secret record");
      try {
        versions.set(n, { ...v, sealed: await this.#sealVersion(keys, to, n, plaintext), keyVersion: keys.version });
      } finally {
        zeroize(plaintext);
      }
    }
    const { customMetadata: custom, ...rest } = record;
    if (custom === undefined) return { ...rest, versions };
    const plaintext = await this.#open(
      from,
      custom.sealed,
      custom.keyVersion,
      secretMetadataAad(from),
      "custom metadata",
    );
    try {
      return { ...rest, versions, customMetadata: await this.#sealMetadata(keys, to, plaintext) };
    } finally {
      zeroize(plaintext);
    }
  }

  /**
   * Read-modify-write through the store's compare-and-swap, retried until it
   * lands. `change` sees a secret whose expiry has passed as absent [ours]
   * (what it returns then replaces the expired record whole, at its stored
   * revision), and returning the record it was given means "no change".
   * `sealedUnder` is the key version `change` seals under, when it seals
   * anything (the store's write gate checks it). Writers of one path in this
   * Nexus take turns (`deps.writes`).
   */
  #update(
    path: string,
    change: (record: SecretRecord | undefined, now: Date) => SecretRecord | Promise<SecretRecord>,
    sealedUnder?: number,
  ): Promise<void> {
    return this.#deps.writes.run(path, () => this.#swap(path, change, sealedUnder));
  }

  /** Read, compute, compare-and-swap; again after a lost swap (a writer in another process). */
  async #swap(
    path: string,
    change: (record: SecretRecord | undefined, now: Date) => SecretRecord | Promise<SecretRecord>,
    sealedUnder?: number,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await this.#deps.store.readSecret(path);
      const now = this.#deps.clock();
      const record = stored && !secretExpired(stored, now) ? stored : undefined;
      const next = await change(record, now);
      if (next === record) return;
      if (await this.#deps.store.writeSecret(path, stored?.revision ?? 0, next, { sealedUnder })) return;
      await backOff(attempt);
    }
    throw new ApiError("api_internal_error", "secret write kept conflicting; gave up");
  }
}
