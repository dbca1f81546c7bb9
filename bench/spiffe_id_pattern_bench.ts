/**
 * What the SPIFFE ID pattern check (`lib/api/spiffe_id_pattern.ts`) costs a
 * policy write: typical patterns, and the largest ones its bounds let
 * through (or stop).
 *
 * Run: `deno run -A bench/spiffe_id_pattern_bench.ts [--quick]`
 *
 * Each figure is the median (and p95) of one pattern checked again and
 * again, after a warm-up; every case is bounded in runs and in wall time.
 *
 * @module
 */

import { spiffeIdPatternProblem } from "../lib/api/spiffe_id_pattern.ts";
import { formatNumber, hasFlag, markdownTable, median, percentileSorted } from "./support.ts";

const CLASSES = "(?:[a-c]|[d-g]|[h-k]|[l-o]|[p-s]|[t-w]|[x-z]|[A-H]|[I-P]|[Q-Z]|[0-4]|[5-9]|\\.|-|_|/|\\b|\\B)";

const CASES: ReadonlyArray<readonly [string, string]> = [
  ["exact ID", "^spiffe://spike\\.ist/app/web$"],
  ["prefix with a class", "^spiffe://spike\\.ist/team-[0-9]+/.*$"],
  [
    "alternation of shapes",
    "^spiffe://[a-z0-9.-]+\\.example\\.org/(?:ns/[a-z0-9-]+/sa/[a-z0-9-]+|svc/(?:api|web|db)(?:-[0-9]{1,3})?)$",
  ],
  ["match-everything (refused at once)", ".*"],
  ["a{1000}", "^spiffe://a{1000}$"],
  ["[^]{0,900} that never matches", "spiffe://[^]{0,900}/$"],
  ["many classes, stopped by the bound", `spiffe://${CLASSES}{0,300}/$`],
];

const TIME_CAP_MS = 2000;

if (import.meta.main) {
  const quick = hasFlag(Deno.args, "--quick");
  const runs = quick ? 20 : 200;
  const rows = CASES.map(([label, source]) => {
    const verdict = spiffeIdPatternProblem(source) ?? "accepted";
    for (let i = 0; i < Math.min(20, runs); i++) spiffeIdPatternProblem(source);
    const samples: number[] = [];
    const started = performance.now();
    while (samples.length < runs && performance.now() - started < TIME_CAP_MS) {
      const t0 = performance.now();
      spiffeIdPatternProblem(source);
      samples.push(performance.now() - t0);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    return [
      label,
      verdict,
      formatNumber(median(samples), 3),
      formatNumber(percentileSorted(sorted, 95), 3),
      String(samples.length),
    ];
  });
  console.log("## SPIFFE ID pattern check (`bench/spiffe_id_pattern_bench.ts`)\n");
  console.log(
    markdownTable(["pattern", "verdict", "median ms", "p95 ms", "runs"], rows, [
      "left",
      "left",
      "right",
      "right",
      "right",
    ]),
  );
}
