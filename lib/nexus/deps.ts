/**
 * Everything a Nexus request handler needs, passed in once at start.
 *
 * @module
 */
import type { RandomBytes } from "../crypto/random.ts";
import type { Logger } from "../log/logger.ts";
import type { TrustRoots } from "../spiffe/roles.ts";
import type { Store } from "../store/types.ts";
import type { AuditSink } from "./audit.ts";
import type { KeyedQueue } from "./keyed_queue.ts";
import type { KeyManager } from "./key_manager.ts";
import type { NexusMetrics } from "./metrics.ts";
import type { KeeperStatus } from "./keeper_status.ts";
import type { PolicySnapshot } from "./policy_snapshot.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import type { RestoreSession } from "./restore_session.ts";
import type { RootKeyState } from "./root_key_state.ts";

/** The settings handlers read (a slice of `NexusConfig`). */
export interface NexusSettings {
  /** Accepted trust domains per role. */
  readonly trustRoots: TrustRoots;
  /** Versions kept per secret. */
  readonly maxSecretVersions: number;
  /** Cipher API payload cap in bytes. */
  readonly maxCiphertextSize: number;
  /** Request body cap in bytes. */
  readonly maxBodyBytes: number;
  /** Shamir share count (recovery hands out this many). */
  readonly shamirShares: number;
  /** Shamir threshold (restore needs this many). */
  readonly shamirThreshold: number;
}

/** Injected dependencies of the Nexus app. */
export interface NexusDeps {
  /** Settings. */
  readonly settings: NexusSettings;
  /** The backend; `undefined` in `lite` mode (cipher API only). */
  readonly store: Store | undefined;
  /** The in-memory root keys. */
  readonly keys: RootKeyState;
  /** The Keeper exchange and the rotation coordinator, attached once they run. */
  readonly keyManager: KeyManager;
  /** Collects shards sent by `operator restore`. */
  readonly restore: RestoreSession;
  /** Wall clock. */
  readonly clock: () => Date;
  /** Random bytes (nonces). */
  readonly random: RandomBytes;
  /** Structured log; never given secret data. */
  readonly log: Logger;
  /**
   * Secret writes of this Nexus, one at a time per path: concurrent writers
   * of one path take turns instead of racing into failed compare-and-swaps.
   */
  readonly secretWrites: KeyedQueue;
  /** The compiled policy set, rebuilt when the store's policy generation changes. */
  readonly policies: PolicySnapshot;
  /** Per-caller token buckets; absent when no rate limit is configured. */
  readonly rateLimiter?: RateLimiter;
  /** Where the audit trail goes: one record per API request. */
  readonly audit: AuditSink;
  /** Request metrics for `GET /metrics` (absent: the endpoint answers 400). */
  readonly metrics?: NexusMetrics;
  /** What the Keeper exchange last saw, for `GET /ready` (absent without Keepers). */
  readonly keeperStatus?: KeeperStatus;
}
