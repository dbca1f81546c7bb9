import assert from "node:assert/strict";
import { PATHS } from "../api/paths.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { createTestNexus, NO_CERT, peer } from "./testing.ts";

/** A clock the test moves by hand. */
function manualClock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

Deno.test("rate limiter: a burst goes through, the next request waits for a refill", () => {
  const clock = manualClock();
  const limiter = new RateLimiter({ perSecond: 2, burst: 3 }, { now: clock.now });
  for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take("a"), { allowed: true });
  assert.deepEqual(limiter.take("a"), { allowed: false, retryAfterSeconds: 1 });
  clock.advance(499);
  assert.equal(limiter.take("a").allowed, false, "half a token short of one is still no");
  clock.advance(1);
  assert.equal(limiter.take("a").allowed, true, "one token after 500 ms at 2/s");
  assert.equal(limiter.take("a").allowed, false);
});

Deno.test("rate limiter: callers are independent; a long idle refills only up to the burst", () => {
  const clock = manualClock();
  const limiter = new RateLimiter({ perSecond: 1, burst: 2 }, { now: clock.now });
  assert.equal(limiter.take("a").allowed, true);
  assert.equal(limiter.take("a").allowed, true);
  assert.equal(limiter.take("a").allowed, false);
  assert.equal(limiter.take("b").allowed, true, "b has its own bucket");
  clock.advance(3_600_000);
  assert.equal(limiter.take("a").allowed, true);
  assert.equal(limiter.take("a").allowed, true);
  assert.equal(limiter.take("a").allowed, false, "an hour of idling is still only a burst of 2");
});

Deno.test("rate limiter: Retry-After is whole seconds until the next token, at least 1", () => {
  const clock = manualClock();
  const limiter = new RateLimiter({ perSecond: 0.1, burst: 1 }, { now: clock.now });
  assert.equal(limiter.take("slow").allowed, true);
  assert.deepEqual(limiter.take("slow"), { allowed: false, retryAfterSeconds: 10 });
  clock.advance(2_500);
  assert.deepEqual(limiter.take("slow"), { allowed: false, retryAfterSeconds: 8 });
});

Deno.test("rate limiter: memory is bounded; the least recently seen caller is dropped first", () => {
  const clock = manualClock();
  const limiter = new RateLimiter({ perSecond: 1, burst: 1 }, { now: clock.now, maxCallers: 3 });
  for (const caller of ["a", "b", "c"]) assert.equal(limiter.take(caller).allowed, true);
  assert.equal(limiter.take("a").allowed, false, "a seen again: now the most recent");
  assert.equal(limiter.take("d").allowed, true);
  assert.equal(limiter.callers, 3);
  assert.equal(limiter.take("a").allowed, false, "a kept its (empty) bucket: b was dropped, not a");
  assert.equal(limiter.take("b").allowed, true, "b comes back with a full bucket");
});

Deno.test("rate limiter: settings must be positive", () => {
  assert.throws(() => new RateLimiter({ perSecond: 0, burst: 1 }), RangeError);
  assert.throws(() => new RateLimiter({ perSecond: 1, burst: 0 }), RangeError);
});

Deno.test("rate limit in Nexus: 429 api_rate_limited with Retry-After, per caller, audited as limited", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ rateLimiter: new RateLimiter({ perSecond: 1, burst: 2 }, { now: clock.now }) });
  const busy = peer("spiffe://spike.ist/spike/pilot/role/superuser");
  const calm = peer("spiffe://spike.ist/app/calm");
  const list = (who: typeof busy) => nexus.call(who, PATHS.secrets, "list", {});
  assert.equal((await list(busy)).status, 200);
  assert.equal((await list(busy)).status, 200);
  const limited = await list(busy);
  assert.equal(limited.status, 429);
  assert.deepEqual(limited.body, { err: "api_rate_limited" });
  assert.equal(limited.headers.get("retry-after"), "1");
  assert.equal(limited.headers.get("cache-control"), "no-store, no-cache, must-revalidate, private");
  assert.equal((await list(calm)).status, 401, "another caller is not limited (and then meets its policies)");
  assert.equal((await list(NO_CERT)).status, 401, "no identity, no bucket: refused as before");
  clock.advance(1000);
  assert.equal((await list(busy)).status, 200, "a second later there is a token again");
  assert.deepEqual(nexus.audit.map((r) => r.outcome), ["ok", "ok", "limited", "denied", "denied", "ok"]);
  assert.equal(nexus.audit[2]!.err, "api_rate_limited");
});
