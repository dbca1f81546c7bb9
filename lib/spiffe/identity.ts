/**
 * The one interface every identity source (SVID files, the Workload API, the
 * development CA) implements, so TLS code never cares where an SVID came from.
 *
 * @module
 */

/** An X.509-SVID with its private key and the trust bundle to verify peers. */
export interface X509Identity {
  /** The SPIFFE ID in the leaf certificate's URI SAN. */
  readonly spiffeId: string;
  /** PEM: the leaf certificate first, then any intermediates. */
  readonly certChainPem: string;
  /**
   * PEM (PKCS#8) private key bytes. Kept as bytes, not a string, so holders
   * can zero them once the TLS context has been built (best effort in JS).
   */
  readonly privateKeyPem: Uint8Array;
  /**
   * PEM CA certificates trusted for peers: the SVID's own trust domain and
   * any federated ones. Role predicates then narrow by trust domain.
   */
  readonly trustBundlePem: string;
}

/**
 * A source of the current X.509-SVID that may rotate over time.
 *
 * Consumers read {@linkcode IdentitySource.current} when building a new TLS
 * context and subscribe with {@linkcode IdentitySource.onChange} to rebuild it
 * for new connections after a rotation (no restart needed).
 */
export interface IdentitySource {
  /** Resolves with the first identity, or rejects if none arrives in time. */
  ready(): Promise<X509Identity>;
  /** The latest identity; throws if {@linkcode ready} has not resolved yet. */
  current(): X509Identity;
  /** Calls `listener` after every rotation; returns an unsubscribe function. */
  onChange(listener: (identity: X509Identity) => void): () => void;
  /** Stops watching files / closes streams. Safe to call twice. */
  close(): Promise<void>;
}
