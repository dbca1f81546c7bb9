import assert from "node:assert/strict";
import { ApiCallError } from "../client/errors.ts";
import { type RetryOptions, withRetries } from "./retry.ts";

/** Retry options whose sleeps are recorded instead of waited. */
function recorded(attempts = 4): RetryOptions & { waits: number[] } {
  const waits: number[] = [];
  return {
    attempts,
    baseDelayMs: 100,
    maxDelayMs: 2000,
    waits,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
}

/** A call that fails with each of `failures` in turn, then resolves "ok". */
function failing(...failures: unknown[]): { call: () => Promise<string>; calls: () => number } {
  let n = 0;
  return {
    call: () => {
      const failure = failures[n++];
      return failure === undefined ? Promise.resolve("ok") : Promise.reject(failure);
    },
    calls: () => n,
  };
}

const NOT_READY = new ApiCallError(503, "state_not_ready");

Deno.test("retry: 503 backs off, doubling; success ends it", async () => {
  const options = recorded();
  const f = failing(NOT_READY, NOT_READY, NOT_READY);
  assert.equal(await withRetries(f.call, false, options), "ok");
  assert.deepEqual(options.waits, [100, 200, 400]);
});

Deno.test("retry: 429 waits what Retry-After says, and gives up when it asks for more than the cap", async () => {
  const options = recorded();
  assert.equal(await withRetries(failing(new ApiCallError(429, "api_rate_limited", 1)).call, false, options), "ok");
  assert.deepEqual(options.waits, [1000]);
  const tooLong = new ApiCallError(429, "api_rate_limited", 60);
  await assert.rejects(withRetries(failing(tooLong).call, true, options), (e) => e === tooLong);
  assert.deepEqual(options.waits, [1000], "no sleep for a minute-long Retry-After");
});

Deno.test("retry: a broken connection is retried at once for repeatable calls only", async () => {
  const options = recorded();
  const reset = new Error("socket hang up");
  assert.equal(await withRetries(failing(reset).call, true, options), "ok");
  assert.deepEqual(options.waits, [0]);
  const write = failing(reset);
  await assert.rejects(withRetries(write.call, false, options), (e) => e === reset);
  assert.equal(write.calls(), 1, "a write that may have landed is not sent again");
});

Deno.test("retry: final answers are not retried; attempts are bounded", async () => {
  const options = recorded(3);
  for (const status of [400, 401, 404, 413, 500]) {
    const f = failing(new ApiCallError(status, undefined));
    await assert.rejects(withRetries(f.call, true, options));
    assert.equal(f.calls(), 1, `status ${status} is final`);
  }
  const always = failing(NOT_READY, NOT_READY, NOT_READY, NOT_READY);
  await assert.rejects(withRetries(always.call, true, options), (e) => e === NOT_READY);
  assert.equal(always.calls(), 3);
});
