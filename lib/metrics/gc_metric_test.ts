import assert from "node:assert/strict";
import { GcDurationMetric } from "./gc_metric.ts";

Deno.test("GC time: collections are seen, by kind, and their total stays below the time that passed", async () => {
  const metric = new GcDurationMetric();
  try {
    const started = performance.now();
    let keep: unknown[] = [];
    for (let i = 0; i < 3_000_000; i++) {
      keep.push({ i });
      if (keep.length > 10_000) keep = [];
    }
    const elapsedSeconds = (performance.now() - started) / 1000;
    const { values } = await metric.get();
    const count = values.find((v) => v.metricName === `${metric.name}_count` && v.labels.kind === "minor");
    const sum = values.filter((v) => v.metricName === `${metric.name}_sum`).reduce((a, v) => a + v.value, 0);
    assert.ok(count && count.value > 0, "minor collections were counted");
    // A wrong unit (microseconds read as nanoseconds or the reverse) breaks one of these by 1000x.
    assert.ok(sum > 0 && sum < elapsedSeconds, `GC total ${sum}s within ${elapsedSeconds}s`);
    for (const v of values) {
      assert.ok(["minor", "major", "incremental", "weakcb", "other"].includes(String(v.labels.kind)));
    }
  } finally {
    metric.close();
  }
});
