/**
 * Per-caller rate limiting: a token bucket for each SPIFFE ID, so one
 * runaway workload cannot starve the others. A caller may send `burst`
 * requests at once and `perSecond` on average; beyond that Nexus answers
 * 429 `api_rate_limited` with a `Retry-After` header.
 *
 * Memory is bounded: at most `maxCallers` buckets are kept, and when a new
 * caller needs room the least recently seen one is dropped. A dropped
 * bucket comes back full, which can only let that caller through sooner,
 * never refuse anyone wrongly.
 *
 * @module
 */

/** Rate limit settings. */
export interface RateLimit {
  /** Sustained requests per second per caller. */
  readonly perSecond: number;
  /** Requests a caller may send at once (the bucket size). */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms of the limiter's clock. */
  at: number;
}

/** The answer for one request. */
export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

/** Token buckets by caller. */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #now: () => number;
  readonly #maxCallers: number;
  readonly #buckets = new Map<string, Bucket>();

  /**
   * Creates a limiter. `now` is a monotonic clock in milliseconds (default
   * `performance.now`); `maxCallers` bounds the buckets kept (default 10 000).
   */
  constructor(limit: RateLimit, options: { now?: () => number; maxCallers?: number } = {}) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new RangeError("rate limit must be positive");
    this.#limit = limit;
    this.#now = options.now ?? (() => performance.now());
    this.#maxCallers = options.maxCallers ?? 10_000;
  }

  /** Takes one token for `caller`, or says how long until one is available. */
  take(caller: string): RateDecision {
    const now = this.#now();
    let bucket = this.#buckets.get(caller);
    if (bucket) {
      this.#buckets.delete(caller); // re-inserted below: Map order is recency order
      const refill = ((now - bucket.at) / 1000) * this.#limit.perSecond;
      bucket = { tokens: Math.min(this.#limit.burst, bucket.tokens + refill), at: now };
    } else {
      if (this.#buckets.size >= this.#maxCallers) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = { tokens: this.#limit.burst, at: now };
    }
    this.#buckets.set(caller, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    const waitSeconds = (1 - bucket.tokens) / this.#limit.perSecond;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)) };
  }

  /** How many callers have a bucket now (tests, metrics). */
  get callers(): number {
    return this.#buckets.size;
  }
}
