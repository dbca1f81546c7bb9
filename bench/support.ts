/**
 * Small helpers the benchmark scripts share: order statistics, a bounded
 * load loop, number formatting, Markdown tables, flag parsing and a forced
 * garbage collection for heap figures.
 *
 * @module
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Median of `values`; `NaN` for an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The `p`-th percentile (0..100) of values already sorted ascending, by the
 * nearest-rank method: always one of the observed values, so a p99 over 150
 * samples is the second slowest one rather than an interpolated guess.
 * `NaN` for an empty list.
 */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError("percentile must be within 0..100");
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Latency summary of one measured run. */
export interface LatencySummary {
  /** Number of samples. */
  readonly count: number;
  /** 50th percentile. */
  readonly p50: number;
  /** 90th percentile. */
  readonly p90: number;
  /** 99th percentile. */
  readonly p99: number;
}

/** Summarizes latency samples (any unit; the result keeps it). */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
  };
}

/** One request of a load run; `i` numbers the requests so each can differ. */
export type Operation = (i: number) => Promise<void>;

/** Result of one bounded load run. */
export interface Sample extends LatencySummary {
  /** Requests that succeeded (the latency samples). */
  readonly requests: number;
  /** Requests that failed. */
  readonly errors: number;
  /** Message of the first failure, to show the cause. */
  readonly firstError: string | undefined;
  /** Successful requests per second of wall time. */
  readonly perSecond: number;
}

/**
 * Runs `op` with `concurrency` callers, each starting its next request when
 * its last one ends, until `maxRequests` were started or `maxMs` passed.
 * Requests in flight at the deadline still finish and count. Latencies are
 * in the unit of `now` (milliseconds by default); failures are counted, not
 * timed.
 */
export async function runBounded(
  op: Operation,
  concurrency: number,
  maxRequests: number,
  maxMs: number,
  now: () => number = () => performance.now(),
): Promise<Sample> {
  const latencies: number[] = [];
  let started = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = now();
  const deadline = start + maxMs;
  const caller = async () => {
    while (started < maxRequests && now() < deadline) {
      const i = started++;
      const t0 = now();
      try {
        await op(i);
        latencies.push(now() - t0);
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const elapsed = now() - start;
  return {
    ...summarize(latencies),
    requests: latencies.length,
    errors,
    firstError,
    perSecond: elapsed > 0 ? latencies.length / (elapsed / 1000) : NaN,
  };
}

/** Formats `n` with thousands separators and exactly `digits` decimals. */
export function formatNumber(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Formats a ratio as `1.23x`. */
export function formatRatio(n: number): string {
  return Number.isFinite(n) ? `${formatNumber(n, 2)}x` : "–";
}

/** Column alignment for {@linkcode markdownTable}. */
export type Align = "left" | "right";

/**
 * Renders a Markdown table. Cells are padded so the raw text lines up too,
 * which keeps console output readable and `deno fmt`-stable when pasted.
 */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const pad = (text: string, i: number) => align[i] === "right" ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const line = (cells: readonly string[]) => `| ${header.map((_, i) => pad(cells[i] ?? "", i)).join(" | ")} |`;
  const rule = `| ${
    widths.map((w, i) => (align[i] === "right" ? `${"-".repeat(w - 1)}:` : "-".repeat(w))).join(" | ")
  } |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** True when `name` (e.g. `--quick`) is among `args`. */
export function hasFlag(args: readonly string[], name: string): boolean {
  return args.includes(name);
}

/**
 * Reads `--name N` (or `--name=N`) as a number within `[min, max]`;
 * `fallback` when absent. Throws on a malformed or out-of-range value so a
 * typo never silently runs the default.
 */
export function numberFlag(
  args: readonly string[],
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  let text: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === name) text = args[i + 1] ?? "";
    else if (arg.startsWith(`${name}=`)) text = arg.slice(name.length + 1);
  }
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new RangeError(`${name} must be a number within ${min}..${max}, got '${text}'`);
  }
  return n;
}

/**
 * V8's full garbage collection, so that heap figures count live objects
 * only. V8 exposes `gc` only behind `--expose-gc`; the flag is set here at
 * run time, so every benchmark runs with `run_all.ts`'s one set of flags.
 */
export function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  // A new context picks the flag up and gets its own `gc` global.
  return runInNewContext("gc") as () => void;
}

/** Bytes as `12.3 MiB` (or KiB below one MiB). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "–";
  const kib = bytes / 1024;
  return Math.abs(kib) < 1024 ? `${formatNumber(kib, 1)} KiB` : `${formatNumber(kib / 1024, 1)} MiB`;
}

/**
 * CPU time a process has used so far (all its threads, user + system), in
 * ms, from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds). Unlike wall
 * time it barely moves when other work shares the machine.
 */
export function processCpuMs(pid: number): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1e6;
}
