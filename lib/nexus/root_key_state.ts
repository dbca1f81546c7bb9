/**
 * Holds root keys in memory (never on disk) and the per-purpose keys
 * derived from them, by root key version. Normally one version is held;
 * during a root key rotation two are (the one being retired, still needed to
 * open what it sealed, and the new one). New data is always sealed under the
 * *write version*. Nexus is "ready" exactly when it holds a write key.
 *
 * @module
 */
import { importAeadKey } from "../crypto/aead.ts";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import { zeroize } from "../crypto/zeroize.ts";

/** Keys derived from one root key. */
export interface DerivedKeys {
  /** The root key version these keys belong to. */
  readonly version: number;
  /** Seals secret values at rest (non-extractable AES-256-GCM key). */
  readonly secrets: CryptoKey;
  /** Seals cipher API payloads (non-extractable AES-256-GCM key). */
  readonly cipher: CryptoKey;
  /** Seals policies at rest (non-extractable AES-256-GCM key). */
  readonly policies: CryptoKey;
}

interface HeldKey {
  readonly root: Uint8Array;
  readonly derived: DerivedKeys;
}

/**
 * The in-memory home of the root keys. Installing or adding a key copies it
 * (the caller zeroes its own buffer); replacing, dropping or clearing zeroes
 * the copies held here.
 */
export class RootKeyState {
  readonly #held = new Map<number, HeldKey>();
  #writeVersion: number | undefined;
  #epoch = 0;
  readonly #listeners = new Set<() => void>();
  readonly #writeListeners = new Set<() => void>();

  /**
   * A number that changes whenever the set of keys held or the write version
   * changes, so a cache of what was opened with the keys can tell it is stale.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether a write key is loaded. */
  get ready(): boolean {
    return this.#writeVersion !== undefined;
  }

  /** The root key version new data is sealed under; throws when not ready. */
  get writeVersion(): number {
    if (this.#writeVersion === undefined) throw new Error("root key is not loaded");
    return this.#writeVersion;
  }

  /** Versions held, ascending. */
  heldVersions(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  /** Whether version `version` is held. */
  holds(version: number): boolean {
    return this.#held.has(version);
  }

  /**
   * Installs `rootKey` (copied) as version `version` and the write version,
   * replacing and zeroing every key held before. Listeners hear of it: this
   * is a key arriving (Keepers, restore), not a rotation step.
   */
  async install(rootKey: Uint8Array, version = 1): Promise<void> {
    const key = await derive(rootKey, version);
    this.clear();
    this.#held.set(version, key);
    this.#writeVersion = version;
    this.#epoch++;
    for (const listener of this.#listeners) listener();
    this.#writeKeyChanged();
  }

  /**
   * Adds `rootKey` (copied) as version `version` beside the keys held, for
   * a rotation or to catch up with one. The write version is unchanged;
   * a key already held under that version is replaced and zeroed.
   */
  async add(rootKey: Uint8Array, version: number): Promise<void> {
    const key = await derive(rootKey, version);
    forget(this.#held.get(version));
    this.#held.set(version, key);
    this.#epoch++;
  }

  /**
   * Makes a held version the write version. When that makes Nexus ready
   * (the keys of a rotation in progress arrived one by one), listeners hear
   * of it as of an install.
   */
  useForWrites(version: number): void {
    if (!this.#held.has(version)) throw new Error(`root key version ${version} is not held`);
    const becameReady = this.#writeVersion === undefined;
    const changed = this.#writeVersion !== version;
    this.#writeVersion = version;
    this.#epoch++;
    if (becameReady) { for (const listener of this.#listeners) listener(); }
    if (changed) this.#writeKeyChanged();
  }

  /** Zeroes and forgets version `version` (never the write version). */
  drop(version: number): void {
    if (version === this.#writeVersion) throw new Error("the write key cannot be dropped");
    forget(this.#held.get(version));
    this.#held.delete(version);
    this.#epoch++;
  }

  /** Calls `listener` after each install (and when Nexus becomes ready); returns an unsubscribe function. */
  onInstall(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Calls `listener` whenever the write key changes: after each install, and
   * when a rotation (this Nexus's, or another's it follows) switches new
   * data to another version. The audit chain signs under the write
   * version's audit key from then on. Returns an unsubscribe function.
   */
  onWriteKeyChange(listener: () => void): () => void {
    this.#writeListeners.add(listener);
    return () => this.#writeListeners.delete(listener);
  }

  /** The derived keys of the write version; throws when not ready (callers check `ready` first). */
  keys(): DerivedKeys {
    return this.#get(this.writeVersion).derived;
  }

  /** The derived keys of `version`, or `undefined` when it is not held. */
  keysFor(version: number): DerivedKeys | undefined {
    return this.#held.get(version)?.derived;
  }

  /**
   * Runs `use` with a root key itself (for Shamir splitting and bootstrap
   * verification): the write version's unless `version` is given. The buffer
   * is the live key: `use` must not keep it.
   */
  withRootKey<T>(use: (rootKey: Uint8Array) => T, version?: number): T {
    return use(this.#get(version ?? this.writeVersion).root);
  }

  /** Zeroes and forgets every key. */
  clear(): void {
    for (const key of this.#held.values()) forget(key);
    this.#held.clear();
    this.#writeVersion = undefined;
    this.#epoch++;
  }

  #writeKeyChanged(): void {
    for (const listener of this.#writeListeners) listener();
  }

  #get(version: number): HeldKey {
    const key = this.#held.get(version);
    if (!key) throw new Error(`root key version ${version} is not held`);
    return key;
  }
}

async function derive(rootKey: Uint8Array, version: number): Promise<HeldKey> {
  if (rootKey.length !== 32) throw new RangeError("root key must be 32 bytes");
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new RangeError("root key version must be a whole number ≥ 1");
  }
  const root = rootKey.slice();
  try {
    const derived: DerivedKeys = {
      version,
      secrets: await importDerivedKey(root, KeyPurpose.secrets),
      cipher: await importDerivedKey(root, KeyPurpose.cipher),
      policies: await importDerivedKey(root, KeyPurpose.policies),
    };
    return { root, derived };
  } catch (error) {
    zeroize(root);
    throw error;
  }
}

/** Derived keys are non-extractable CryptoKeys; dropping them is all JS allows. */
function forget(key: HeldKey | undefined): void {
  zeroize(key?.root);
}

/**
 * The non-extractable AES-256-GCM key derived from `root` for `purpose`
 * (a `KeyPurpose`); the derived bytes are zeroed once imported.
 */
export async function importDerivedKey(root: Uint8Array, purpose: string): Promise<CryptoKey> {
  const raw = deriveKey(root, purpose);
  try {
    return await importAeadKey(raw);
  } finally {
    zeroize(raw);
  }
}
