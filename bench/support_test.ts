import assert from "node:assert/strict";
import fc from "fast-check";
import {
  exposeGc,
  formatBytes,
  formatNumber,
  formatRatio,
  markdownTable,
  median,
  numberFlag,
  percentileSorted,
  runBounded,
  summarize,
} from "./support.ts";

Deno.test("median: odd and even counts, unsorted input, empty", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("median: never outside the range of its inputs, input untouched", () => {
  fc.assert(
    fc.property(fc.array(fc.double({ noNaN: true, min: -1e9, max: 1e9 }), { minLength: 1 }), (values) => {
      const copy = [...values];
      const m = median(values);
      assert.deepEqual(values, copy);
      assert.ok(m >= Math.min(...values) && m <= Math.max(...values));
    }),
  );
});

Deno.test("percentileSorted: nearest rank", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentileSorted(hundred, 50), 50);
  assert.equal(percentileSorted(hundred, 90), 90);
  assert.equal(percentileSorted(hundred, 99), 99);
  assert.equal(percentileSorted(hundred, 100), 100);
  assert.equal(percentileSorted(hundred, 0), 1);
  assert.equal(percentileSorted([7], 99), 7);
  assert.ok(Number.isNaN(percentileSorted([], 50)));
  assert.throws(() => percentileSorted([1], 101), RangeError);
});

Deno.test("percentileSorted: always an observed value, monotonic in p", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer(), { minLength: 1 }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      (values, p, q) => {
        const sorted = [...values].sort((a, b) => a - b);
        assert.ok(sorted.includes(percentileSorted(sorted, p)));
        const [lo, hi] = p <= q ? [p, q] : [q, p];
        assert.ok(percentileSorted(sorted, lo) <= percentileSorted(sorted, hi));
      },
    ),
  );
});

Deno.test("summarize: sorts before ranking", () => {
  assert.deepEqual(summarize([5, 1, 4, 2, 3]), { count: 5, p50: 3, p90: 5, p99: 5 });
});

Deno.test("formatNumber and formatRatio", () => {
  assert.equal(formatNumber(1234567.891), "1,234,568");
  assert.equal(formatNumber(0.5, 2), "0.50");
  assert.equal(formatNumber(NaN), "–");
  assert.equal(formatRatio(1.5), "1.50x");
  assert.equal(formatRatio(Infinity), "–");
});

Deno.test("markdownTable: padded, right-aligned columns get a colon rule", () => {
  const table = markdownTable(["name", "n"], [["a", "10"], ["bbbb", "2"]], ["left", "right"]);
  assert.equal(
    table,
    [
      "| name |   n |",
      "| ---- | --: |",
      "| a    |  10 |",
      "| bbbb |   2 |",
    ].join("\n"),
  );
});

Deno.test("numberFlag: both spellings, fallback, refuses junk and out of range", () => {
  assert.equal(numberFlag(["--rounds", "3"], "--rounds", 7, 1, 50), 3);
  assert.equal(numberFlag(["--rounds=4"], "--rounds", 7, 1, 50), 4);
  assert.equal(numberFlag(["--quick"], "--rounds", 7, 1, 50), 7);
  assert.throws(() => numberFlag(["--rounds"], "--rounds", 7, 1, 50), RangeError);
  assert.throws(() => numberFlag(["--rounds", "x"], "--rounds", 7, 1, 50), RangeError);
  assert.throws(() => numberFlag(["--rounds", "0"], "--rounds", 7, 1, 50), RangeError);
});

/** A clock that only moves when told to, so bounds are tested without real time. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

Deno.test("runBounded: stops at the request count, whatever the concurrency", async () => {
  const clock = fakeClock();
  const seen: number[] = [];
  const sample = await runBounded(
    async (i) => {
      seen.push(i);
      await Promise.resolve();
      clock.advance(1);
    },
    3,
    7,
    1_000_000,
    clock.now,
  );
  assert.equal(sample.requests, 7);
  assert.deepEqual([...seen].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(sample.errors, 0);
});

Deno.test("runBounded: stops at the deadline and lets requests in flight finish", async () => {
  const clock = fakeClock();
  const sample = await runBounded(
    async () => {
      await Promise.resolve();
      clock.advance(10);
    },
    1,
    1_000_000,
    35,
    clock.now,
  );
  // Requests start at t=0, 10, 20, 30; the one started at 30 ends at 40 and counts.
  assert.equal(sample.requests, 4);
  assert.equal(sample.p50, 10);
  assert.equal(sample.perSecond, 4 / 0.04);
});

Deno.test("runBounded: failures are counted, not timed, and the first is kept", async () => {
  const clock = fakeClock();
  const sample = await runBounded(
    (i) => {
      clock.advance(1);
      return i % 2 === 0 ? Promise.resolve() : Promise.reject(new Error(`boom ${i}`));
    },
    1,
    6,
    1_000_000,
    clock.now,
  );
  assert.equal(sample.requests, 3);
  assert.equal(sample.errors, 3);
  assert.equal(sample.firstError, "boom 1");
});

Deno.test("exposeGc: a collection frees what is no longer referenced", () => {
  const gc = exposeGc();
  gc();
  const before = Deno.memoryUsage().heapUsed;
  let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
  assert.ok(Deno.memoryUsage().heapUsed > before + 4_000_000, "the array is on the heap");
  garbage = undefined;
  gc();
  assert.equal(garbage, undefined);
  assert.ok(Deno.memoryUsage().heapUsed < before + 1_000_000, "and gone after gc()");
});

Deno.test("formatBytes: KiB below one MiB, MiB above", () => {
  assert.equal(formatBytes(512), "0.5 KiB");
  assert.equal(formatBytes(3 * 1024 * 1024 + 200 * 1024), "3.2 MiB");
  assert.equal(formatBytes(NaN), "–");
});
