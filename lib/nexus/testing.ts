/**
 * Test fixtures for the Nexus app: a fixed clock, a deterministic random
 * source, and an app over a memory store with a known root key. Only tests
 * import this file.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import type { RandomBytes } from "../crypto/random.ts";
import { silentLogger } from "../log/logger.ts";
import type { TrustRoots } from "../spiffe/roles.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { PolicyRecord, Store } from "../store/types.ts";
import { createNexusApp } from "./app.ts";
import type { NexusDeps, NexusSettings } from "./deps.ts";
import { installRootKey } from "./key_installer.ts";
import type { PeerResult } from "./peer.ts";
import { type AuditRecord, type AuditSink, memoryAuditSink } from "./audit.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import { sealPolicy } from "./policy_seal.ts";
import { PolicySnapshot } from "./policy_snapshot.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { NexusMetrics } from "./metrics.ts";
import { measureStore } from "../store/measured_store.ts";
import { RestoreSession } from "./restore_session.ts";
import { KeyManager } from "./key_manager.ts";
import { RootKeyState } from "./root_key_state.ts";

/** The instant every fixture clock returns. */
export const FIXED_TIME = new Date("2026-01-02T03:04:05.000Z");

/** A clock tests move by hand: `now()` is the wall clock to inject, `advance(ms)` moves it. */
export function manualClock(start = FIXED_TIME): { now: () => Date; advance(ms: number): void } {
  let at = start.getTime();
  return {
    now: () => new Date(at),
    advance(ms) {
      at += ms;
    },
  };
}

/** A counter-based byte source: reproducible, NOT random (tests only). */
export function deterministicRandom(seed = 1): RandomBytes {
  let counter = seed;
  return (length) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = (counter++ * 131 + 7) & 0xff;
    return out;
  };
}

/** A fixed root key for tests (a valid P-256 scalar). */
export function testRootKey(): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0x7f);
}

const DEFAULT_ROOTS: TrustRoots = {
  nexus: ["spike.ist"],
  keeper: ["spike.ist"],
  pilot: ["spike.ist"],
  bootstrap: ["spike.ist"],
  liteWorkload: ["spike.ist"],
};

/** Default settings for fixtures. */
export const TEST_SETTINGS: NexusSettings = Object.freeze({
  trustRoots: DEFAULT_ROOTS,
  maxSecretVersions: 10,
  maxCiphertextSize: 65536,
  maxBodyBytes: 1024 * 1024,
  shamirShares: 3,
  shamirThreshold: 2,
});

/** A Nexus app with its dependencies, for in-process requests (no HTTP, no TLS). */
export interface TestNexus {
  /** Injected dependencies (store, keys, ...). */
  readonly deps: NexusDeps;
  /** The audit records written so far, oldest first (empty when `auditSink` was given). */
  readonly audit: readonly AuditRecord[];
  /** Sends `body` to `path?action=` as `peer`; returns status and parsed body. */
  call(
    peer: PeerResult,
    path: string,
    action: string,
    body: unknown,
    init?: { method?: string; contentType?: string },
  ): Promise<{ status: number; body: unknown; headers: Headers }>;
}

/** Builds a test Nexus; the root key is installed unless `withKey` is false. */
export async function createTestNexus(options: {
  store?: Store;
  withKey?: boolean;
  settings?: Partial<NexusSettings>;
  rateLimiter?: RateLimiter;
  /** Where audit records go instead of `TestNexus.audit` (benchmarks must not grow a list). */
  auditSink?: AuditSink;
  /** False: no metrics and no store measuring (what metrics cost, in `bench/metrics_bench.ts`). */
  metrics?: boolean;
  /** The wall clock (default: always `FIXED_TIME`). */
  clock?: () => Date;
} = {}): Promise<TestNexus> {
  const settings = { ...TEST_SETTINGS, ...options.settings };
  const kept = memoryAuditSink();
  const audit: AuditSink = options.auditSink ?? kept;
  const keys = new RootKeyState();
  const keyManager = new KeyManager();
  const policies = new PolicySnapshot({ log: silentLogger, keys });
  let store = options.store ?? createMemoryStore();
  const metrics: NexusMetrics = new NexusMetrics({
    startedAt: FIXED_TIME.getTime(),
    keys,
    counts: () => store.counts(),
    countsMaxAgeMs: 0,
    keyState: () => store.keyState(),
    resealedHere: () => keyManager.rotation?.resealedHere,
    tampered: { total: () => policies.tamperedTotal, now: () => policies.lastGeneration?.tampered.length },
  });
  if (options.metrics !== false) store = measureStore(store, metrics);
  const deps: NexusDeps = {
    settings,
    store,
    keys,
    keyManager,
    restore: new RestoreSession(settings.shamirThreshold),
    clock: options.clock ?? (() => FIXED_TIME),
    random: deterministicRandom(),
    log: silentLogger,
    secretWrites: new KeyedQueue(),
    policies,
    audit,
    ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}),
    ...(options.metrics === false ? {} : { metrics }),
  };
  if (options.withKey !== false) await installRootKey(deps, testRootKey());
  const app = createNexusApp(deps);
  return {
    deps,
    audit: kept.records,
    async call(peer, path, action, body, init = {}) {
      const method = init.method ?? "POST";
      const payload = body instanceof Uint8Array
        ? body
        : body === undefined || method === "GET" || method === "HEAD"
        ? new Uint8Array(0)
        : new TextEncoder().encode(JSON.stringify(body));
      const answer = await app.handle({
        method,
        path,
        action,
        contentType: init.contentType ?? "application/json",
        peer,
        body: (limit) => {
          if (payload.length > limit) return Promise.reject(new ApiError("api_payload_too_large"));
          return Promise.resolve(payload.slice());
        },
      });
      const bytes = typeof answer.body === "string" ? new TextEncoder().encode(answer.body) : answer.body;
      const headers = new Headers(answer.headers);
      const parsed = (headers.get("content-type") ?? "").includes("json")
        ? JSON.parse(new TextDecoder().decode(bytes))
        : bytes;
      return { status: answer.status, body: parsed, headers };
    },
  };
}

/** A peer authenticated as `spiffeId`. */
export function peer(spiffeId: string): PeerResult {
  return { ok: true, spiffeId };
}

/** A request without a (valid) client certificate. */
export const NO_CERT: PeerResult = { ok: false, reason: "no client certificate" };

/**
 * Writes `record` straight into `deps.store`, sealed as Nexus seals a
 * policy (under its write key), bypassing the API's checks: for tests that
 * need a stored policy the API would refuse, or many of them quickly.
 */
export async function storePolicy(
  deps: Pick<NexusDeps, "store" | "keys" | "random">,
  record: PolicyRecord,
): Promise<void> {
  const keys = deps.keys.keys();
  await deps.store!.upsertPolicy(await sealPolicy(keys.policies, keys.version, record, deps.random));
}
