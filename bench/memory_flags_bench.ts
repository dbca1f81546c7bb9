/**
 * What launch settings do to Nexus's memory after a flood of large bodies,
 * and what they cost per request: the same stack as the side-by-side
 * benchmark (SQLite, three Keepers, bootstrapped) started once per variant,
 * Nexus's launch changed only by the variant's Deno flags and environment.
 *
 * Variants:
 * - `default`: as the `spike` task runs it
 * - `semi-space 2 MiB`: `--v8-flags=--max-semi-space-size=2` (a smaller
 *   young generation: garbage is collected before it is promoted)
 * - `mmap ≥ 16 KiB`: `MALLOC_MMAP_THRESHOLD_=16384` (glibc serves large
 *   blocks with mmap and gives them back when freed)
 * - `both`
 *
 * Measured, interleaved by round (variant order alternating): server CPU
 * per request of `secret get` at 1 and 16 connections and `secret put` at
 * 16 (Go load generator), as medians and same-round ratios against
 * `default`; then resident memory (VmRSS) fresh, after that load, and 2 s
 * and 10 s after each of `--floods` rounds of 100 unauthenticated 1 MiB
 * POSTs (10 at a time, each client hanging up after its answer; the
 * pattern of tests/hostile_client_test.ts).
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/memory_flags_bench.ts [--quick] [--rounds N] [--seconds S] [--floods N]`
 *
 * @module
 */
import { NexusClient } from "../lib/client/nexus_client.ts";
import { type BenchStack, mintBenchIdentities, startOurStack, superuserClient } from "./bench_stack.ts";
import { ensureLoadgen, type LoadgenResult, runLoadgen, secretGetArgs, secretPutArgs } from "./loadgen_build.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, median, numberFlag } from "./support.ts";
import { postAndHangUp, residentMiB } from "../tests/support/raw_client.ts";

const SECRETS = 100;
const NEXUS_ID = "spiffe://spike.ist/spike/nexus";
const MIB = 1024 * 1024;

/** One way of launching Nexus. */
interface Variant {
  readonly name: string;
  readonly flags: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

const VARIANTS: readonly Variant[] = [
  { name: "default", flags: [], env: {} },
  { name: "semi-space 2 MiB", flags: ["--v8-flags=--max-semi-space-size=2"], env: {} },
  { name: "mmap ≥ 16 KiB", flags: [], env: { MALLOC_MMAP_THRESHOLD_: "16384" } },
  { name: "both", flags: ["--v8-flags=--max-semi-space-size=2"], env: { MALLOC_MMAP_THRESHOLD_: "16384" } },
];

interface Cell {
  readonly label: string;
  readonly connections: number;
  readonly args: (url: string, round: number) => string[];
}

const get = (url: string) => secretGetArgs(url, SECRETS);

const CELLS: readonly Cell[] = [
  { label: "secret get", connections: 1, args: get },
  { label: "secret get", connections: 16, args: get },
  {
    label: "secret put (new paths)",
    connections: 16,
    args: (url, round) => secretPutArgs(url, `bench/new-${round}-{i}`),
  },
];

/** 100 unauthenticated 1 MiB POSTs, 10 at a time, each client hanging up after its answer. */
async function flood(port: number): Promise<void> {
  for (let sent = 0; sent < 100; sent += 10) {
    await Promise.all(Array.from({ length: 10 }, () => postAndHangUp(port, "/v1/store/secrets?action=list", MIB)));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const args = Deno.args;
  const quick = hasFlag(args, "--quick");
  const rounds = numberFlag(args, "--rounds", quick ? 1 : 5, 1, 50);
  const seconds = numberFlag(args, "--seconds", quick ? 1 : 3, 0.2, 60);
  const floods = numberFlag(args, "--floods", quick ? 1 : 3, 1, 10);
  const log = (line: string) => console.error(line);
  const loadBefore = Deno.loadavg();
  const loadgen = await ensureLoadgen();
  const dir = await Deno.makeTempDir({ prefix: "spike-memory-flags-" });
  const stacks: BenchStack[] = [];
  try {
    const ids = await mintBenchIdentities(dir);
    for (const [i, variant] of VARIANTS.entries()) {
      log(`memory_flags_bench: starting the stack for ${variant.name}`);
      const own = `${dir}/v${i}`;
      await Deno.mkdir(own);
      stacks.push(
        await startOurStack(own, ids, {
          nexusDenoFlags: variant.flags,
          extraNexusEnv: { SPIKE_LOG_LEVEL: "info", ...variant.env },
        }),
      );
    }
    const fresh = stacks.map((stack) => residentMiB(stack.nexus().pid));
    for (const stack of stacks) {
      const client = superuserClient(ids.byName.get("pilot-superuser")!, 30_000);
      try {
        const nexus = new NexusClient(stack.nexusUrl, client);
        for (let i = 0; i < SECRETS; i++) await nexus.putSecret(`bench/s-${i}`, { username: "bench", password: "p" });
      } finally {
        client.close();
      }
    }
    const results = new Map<string, LoadgenResult[]>();
    const common = (stack: BenchStack) => [
      "-svid-dir",
      ids.dirOf("pilot-superuser"),
      "-server-id",
      NEXUS_ID,
      "-server-pid",
      String(stack.nexus().pid),
    ];
    for (let round = 0; round <= rounds; round++) {
      log(`memory_flags_bench: ${round === 0 ? "warm-up" : `round ${round}/${rounds}`}`);
      const order = round % 2 === 0 ? [...VARIANTS.keys()] : [...VARIANTS.keys()].reverse();
      for (const [c, cell] of CELLS.entries()) {
        for (const v of order) {
          const stack = stacks[v]!;
          const result = await runLoadgen(loadgen, [
            ...cell.args(stack.nexusUrl, round),
            ...common(stack),
            "-conns",
            String(cell.connections),
            "-duration",
            round === 0 ? "0.5s" : `${seconds}s`,
          ]);
          if (round === 0) continue;
          const key = `${c}|${v}`;
          results.set(key, [...(results.get(key) ?? []), result]);
        }
      }
    }
    const afterLoad = stacks.map((stack) => residentMiB(stack.nexus().pid));
    const port = (stack: BenchStack) => Number(new URL(stack.nexusUrl).port);
    const afterFlood: number[][] = stacks.map(() => []);
    const settled: number[][] = stacks.map(() => []);
    for (let f = 0; f < floods; f++) {
      log(`memory_flags_bench: flood ${f + 1}/${floods}`);
      // One variant at a time, so each has the machine to itself while it takes the bodies.
      for (const [v, stack] of stacks.entries()) {
        await flood(port(stack));
        await sleep(2000);
        afterFlood[v]!.push(residentMiB(stack.nexus().pid));
      }
      await sleep(8000);
      for (const [v, stack] of stacks.entries()) settled[v]!.push(residentMiB(stack.nexus().pid));
    }
    const loadAfter = Deno.loadavg();
    console.log(
      `Nexus launch variants, ${rounds} interleaved round(s) of ${formatNumber(seconds, 1)} s per cell (median), ` +
        `${floods} flood(s) of 100 × 1 MiB. Load average before: ${
          loadBefore.map((n) => formatNumber(n, 2)).join(" ")
        }, ` +
        `after: ${loadAfter.map((n) => formatNumber(n, 2)).join(" ")}.\n`,
    );
    const ratio = (c: number, v: number) => {
      const base = results.get(`${c}|0`)!;
      const own = results.get(`${c}|${v}`)!;
      return median(
        own.map((r, i) => (r.server_cpu_us_per_request ?? NaN) / (base[i]!.server_cpu_us_per_request ?? NaN)),
      );
    };
    console.log(markdownTable(
      ["variant", ...CELLS.flatMap((cell) => [`${cell.label} c=${cell.connections} CPU µs/req`, "÷ default"])],
      VARIANTS.map((variant, v) => [
        variant.name,
        ...CELLS.flatMap((_, c) => [
          formatNumber(median(results.get(`${c}|${v}`)!.map((r) => r.server_cpu_us_per_request ?? NaN)), 0),
          formatRatio(ratio(c, v)),
        ]),
      ]),
      ["left", ...CELLS.flatMap(() => ["right", "right"] as const)],
    ));
    console.log();
    console.log(markdownTable(
      ["variant", "RSS fresh MiB", "after the load", "2 s after each flood", "10 s after each flood"],
      VARIANTS.map((variant, v) => [
        variant.name,
        formatNumber(fresh[v]!, 0),
        formatNumber(afterLoad[v]!, 0),
        afterFlood[v]!.map((n) => formatNumber(n, 0)).join(" → "),
        settled[v]!.map((n) => formatNumber(n, 0)).join(" → "),
      ]),
      ["left", "right", "right", "right", "right"],
    ));
  } finally {
    for (const stack of stacks) await stack.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  await main();
}
