/**
 * How the SDK rides out what a healthy deployment still does now and then:
 * a Nexus that is not ready yet (503, while it rebuilds its root key), a
 * rate limit (429 with `Retry-After`), and a kept-alive connection that
 * broke because a Nexus behind the load balancer went away. The first two
 * are refused before Nexus does any work, so every call may repeat them; a
 * broken connection is repeated only for calls that may safely run twice
 * (reads, and the cipher API), never for a write.
 *
 * @module
 */
import { ApiCallError } from "../client/errors.ts";

/** Retry settings. */
export interface RetryOptions {
  /** Attempts in all, the first included (1 = no retries). */
  readonly attempts: number;
  /** First back-off after a 503, doubled each time. */
  readonly baseDelayMs: number;
  /** Longest single wait; a `Retry-After` beyond it is not waited for. */
  readonly maxDelayMs: number;
  /** Waits `ms` (tests pass a fake). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Defaults of the SDK: three attempts, 200 ms doubling, at most 5 s at a time. */
export const DEFAULT_RETRY: RetryOptions = Object.freeze({ attempts: 3, baseDelayMs: 200, maxDelayMs: 5000 });

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `call`, repeating it as described above; `repeatable` says whether
 * the call may run twice (a broken connection is retried only then).
 * Rethrows the last failure when attempts run out or a failure is final.
 */
export async function withRetries<T>(call: () => Promise<T>, repeatable: boolean, options: RetryOptions): Promise<T> {
  const sleep = options.sleep ?? realSleep;
  for (let attempt = 1;; attempt++) {
    try {
      return await call();
    } catch (error) {
      const wait = waitBefore(error, attempt, repeatable, options);
      if (wait === undefined || attempt >= options.attempts) throw error;
      await sleep(wait);
    }
  }
}

/** How long to wait before trying again after `error`, or `undefined` when it is final. */
function waitBefore(error: unknown, attempt: number, repeatable: boolean, options: RetryOptions): number | undefined {
  if (error instanceof ApiCallError) {
    if (error.status === 503) return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
    if (error.status === 429) {
      const asked = (error.retryAfterSeconds ?? 1) * 1000;
      return asked <= options.maxDelayMs ? asked : undefined;
    }
    return undefined;
  }
  // Not an answer from Nexus: the connection failed. A fresh one is opened at once.
  return repeatable ? 0 : undefined;
}
