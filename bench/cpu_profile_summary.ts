/**
 * Summarizes a V8 `.cpuprofile` (what `deno run --cpu-prof` writes): where
 * the samples fell, by function (self time) and by the functions on the
 * stack (inclusive time, each function counted once per sample), as shares
 * of the samples that were not idle.
 *
 * Run: `deno run --allow-read bench/cpu_profile_summary.ts <file.cpuprofile> [--top N] [--match TEXT]`
 * (`--match` keeps only frames whose function or URL contains TEXT in the
 * inclusive table).
 *
 * @module
 */
import { hasFlag, markdownTable, numberFlag } from "./support.ts";

/** One node of a V8 CPU profile's call tree. */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

/** The parts of a `.cpuprofile` this summary reads. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A function's share of the profile. */
export interface FrameShare {
  /** `name (file:line)`. */
  readonly frame: string;
  /** Microseconds. */
  readonly micros: number;
  /** Share of the non-idle time, 0..1. */
  readonly share: number;
}

/** Self and inclusive time per function. */
export interface ProfileSummary {
  /** Non-idle time sampled, in microseconds. */
  readonly busyMicros: number;
  /** Sorted by time, largest first. */
  readonly self: readonly FrameShare[];
  /** Sorted by time, largest first. */
  readonly inclusive: readonly FrameShare[];
}

const IDLE = new Set(["(idle)", "(program)"]);

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(node_modules|npm|ext|lib|bench|cmd)\//, "$1/").replace(/^file:\/\/.*\/perfreq\//, "");
  return `${functionName || "(anonymous)"} (${file || "native"}${url ? `:${lineNumber + 1}` : ""})`;
}

/** Summarizes `profile`. */
export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    // A sample's weight is the time until the next one.
    const micros = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node || IDLE.has(node.callFrame.functionName)) return;
    busy += micros;
    const name = frameName(node);
    self.set(name, (self.get(name) ?? 0) + micros);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = frameName(byId.get(at)!);
      if (seen.has(frame)) continue;
      seen.add(frame);
      inclusive.set(frame, (inclusive.get(frame) ?? 0) + micros);
    }
  });
  const sorted = (map: Map<string, number>) =>
    [...map].map(([frame, micros]) => ({ frame, micros, share: busy > 0 ? micros / busy : 0 }))
      .sort((a, b) => b.micros - a.micros);
  return { busyMicros: busy, self: sorted(self), inclusive: sorted(inclusive) };
}

/** The summary as two Markdown tables. */
export function formatSummary(summary: ProfileSummary, top: number, match?: string): string {
  const rows = (list: readonly FrameShare[]) =>
    list.slice(0, top).map((f) => [f.frame, (f.micros / 1000).toFixed(1), `${(f.share * 100).toFixed(1)} %`]);
  const inclusive = match ? summary.inclusive.filter((f) => f.frame.includes(match)) : summary.inclusive;
  return [
    `Busy time sampled: ${(summary.busyMicros / 1000).toFixed(0)} ms`,
    "",
    "Self time:",
    "",
    markdownTable(["function", "ms", "share"], rows(summary.self), ["left", "right", "right"]),
    "",
    "Inclusive time (each function once per sample):",
    "",
    markdownTable(["function", "ms", "share"], rows(inclusive), ["left", "right", "right"]),
  ].join("\n");
}

if (import.meta.main) {
  const file = Deno.args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a));
  if (!file) {
    console.error("usage: cpu_profile_summary.ts <file.cpuprofile> [--top N] [--match TEXT]");
    Deno.exit(2);
  }
  const top = numberFlag(Deno.args, "--top", 40, 1, 10_000);
  const matchAt = Deno.args.indexOf("--match");
  const match = hasFlag(Deno.args, "--match") ? Deno.args[matchAt + 1] : undefined;
  const profile = JSON.parse(await Deno.readTextFile(file)) as CpuProfile;
  console.log(formatSummary(summarizeProfile(profile), top, match));
}
