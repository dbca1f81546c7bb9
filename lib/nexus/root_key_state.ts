/**
 * Holds the root key in memory (never on disk) and the per-purpose keys
 * derived from it. Nexus is "ready" exactly when a key is installed.
 *
 * @module
 */
import { importAeadKey } from "../crypto/aead.ts";
import { deriveKey, KeyPurpose } from "../crypto/kdf.ts";
import { zeroize } from "../crypto/zeroize.ts";

/** Keys derived from one root key. */
export interface DerivedKeys {
  /** Seals secret values at rest (non-extractable AES-256-GCM key). */
  readonly secrets: CryptoKey;
  /** Seals cipher API payloads (non-extractable AES-256-GCM key). */
  readonly cipher: CryptoKey;
}

/**
 * The in-memory home of the root key. Installing a key copies it (the
 * caller zeroes its own buffer); replacing or clearing zeroes the old copies.
 */
export class RootKeyState {
  #root: Uint8Array | undefined;
  #derived: DerivedKeys | undefined;
  readonly #listeners = new Set<() => void>();

  /** Whether a root key is loaded. */
  get ready(): boolean {
    return this.#root !== undefined;
  }

  /** Installs `rootKey` (copied), replacing and zeroing any previous key. */
  async install(rootKey: Uint8Array): Promise<void> {
    if (rootKey.length !== 32) throw new RangeError("root key must be 32 bytes");
    const root = rootKey.slice();
    const derived = {
      secrets: await importDerived(root, KeyPurpose.secrets),
      cipher: await importDerived(root, KeyPurpose.cipher),
    };
    this.clear();
    this.#root = root;
    this.#derived = derived;
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` after each install; returns an unsubscribe function. */
  onInstall(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The derived keys; throws when not ready (callers check `ready` first). */
  keys(): DerivedKeys {
    if (!this.#derived) throw new Error("root key is not loaded");
    return this.#derived;
  }

  /**
   * Runs `use` with the root key itself (for Shamir splitting and bootstrap
   * verification). The buffer is the live key: `use` must not keep it.
   */
  withRootKey<T>(use: (rootKey: Uint8Array) => T): T {
    if (!this.#root) throw new Error("root key is not loaded");
    return use(this.#root);
  }

  /** Zeroes and forgets every key. */
  clear(): void {
    // Derived keys are non-extractable CryptoKeys; dropping them is all JS allows.
    zeroize(this.#root);
    this.#root = undefined;
    this.#derived = undefined;
  }
}

async function importDerived(root: Uint8Array, purpose: string): Promise<CryptoKey> {
  const raw = deriveKey(root, purpose);
  try {
    return await importAeadKey(raw);
  } finally {
    zeroize(raw);
  }
}
