import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, ReadCounter } from "./metric.ts";
import { MetricsRegistry } from "./registry.ts";

Deno.test("counter series keep their own totals; label values must match the label names", async () => {
  const counter = new Counter("c_total", "help", ["a", "b"]);
  const series = counter.series("x", 1);
  series.inc();
  series.inc(2);
  counter.inc("x", 1);
  counter.inc("y", 2);
  assert.throws(() => counter.series("only-one"), RangeError);
  const { values, type } = await counter.get();
  assert.equal(type, "counter");
  assert.deepEqual(values, [{ labels: { a: "x", b: 1 }, value: 4 }, { labels: { a: "y", b: 2 }, value: 1 }]);
});

Deno.test("histogram: an observation on a bound falls in that bucket; +Inf, sum and count follow", async () => {
  const histogram = new Histogram("h", "help", [1, 2]);
  const series = histogram.series();
  for (const v of [0.5, 1, 1.5, 3]) series.observe(v);
  const { values } = await histogram.get();
  assert.deepEqual(values.map((v) => [v.metricName, v.labels.le, v.value]), [
    ["h_bucket", 1, 2],
    ["h_bucket", 2, 3],
    ["h_bucket", "+Inf", 4],
    ["h_sum", undefined, 6],
    ["h_count", undefined, 4],
  ]);
  assert.throws(() => new Histogram("bad", "help", [2, 1]), RangeError);
});

Deno.test("registry renders through prom-client: escaped labels, types, and names added once", async () => {
  const registry = new MetricsRegistry();
  registry.add(new Gauge("g", "a gauge", () => [[['quote " and \\ and\nnewline'], 3]], ["l"]));
  registry.add(new ReadCounter("r_total", "read counter", () => 5));
  assert.throws(() => registry.add(new Gauge("g", "again", () => 1)), /added twice/);
  const text = await registry.render();
  assert.match(text, /^# TYPE g gauge$/m);
  assert.match(text, /^g\{l="quote \\" and \\\\ and\\nnewline"\} 3$/m);
  assert.match(text, /^# TYPE r_total counter$/m);
  assert.match(text, /^r_total 5$/m);
  // Added after the first render: still shown.
  registry.add(new Gauge("late", "added later", () => 1));
  assert.match(await registry.render(), /^late 1$/m);
  registry.close();
});
