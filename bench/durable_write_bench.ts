/**
 * Durable writes side by side (issue 12, item 2): `secret put` on our Nexus
 * at each SQLite durability level against SPIKE's Go Nexus in its default
 * mode (`synchronous=NORMAL`, what its SQLite driver sets) and at equal
 * durability (`synchronous=FULL`), with the disk's own fsync time measured
 * in the same run.
 *
 * Run:
 * `SPIKE_GO_BIN=/tmp/spike-go/bin deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/durable_write_bench.ts [--quick] [--rounds N] [--seconds S] [--only a,b] [--baseline <checkout>] [--variant name:VAR=value,VAR=value]`
 *
 * Servers, each its own stack (three Keepers, bootstrapped), SQLite:
 * - `ours-full`: our Nexus at `SPIKE_NEXUS_DB_SYNCHRONOUS=full` (the default);
 * - `ours-normal`: at `normal`;
 * - `ours-worker`: the worker store (`SPIKE_NEXUS_BACKEND_STORE=sqlite-worker`) at `full`;
 * - `go-normal`: SPIKE's Go Nexus as it ships (`SPIKE_GO_BIN`);
 * - `go-full`: the same at `synchronous=FULL`. SPIKE has no setting for it;
 *   its `SPIKE_NEXUS_DB_JOURNAL_MODE` is pasted unchecked into its driver's
 *   connection string, so `WAL&_sync=FULL` adds the driver's `_sync`
 *   parameter to every connection (verified with strace: one fsync per put);
 * - `--baseline <checkout>`: `ours-base`, another tree of this repository at
 *   its defaults (e.g. main before this change);
 * - `--variant name:VAR=value,...`: more of ours with extra environment.
 *
 * Cells: `secret put` of new paths at 1 and 16 connections, and of one
 * path by all 16 connections. Rounds are interleaved (every server runs a
 * cell before the next starts; the order alternates by round); before each
 * round's cells, 200 rewrites of 4 KiB + `fdatasync` in our data directory
 * time the disk. Tables show medians over rounds; ratios are medians of
 * same-round ratios, with the median 1-minute load average of the cell.
 *
 * @module
 */
import { join } from "node:path";
import { NexusClient } from "../lib/client/nexus_client.ts";
import {
  type BenchStack,
  mintBenchIdentities,
  spikeGoBinaries,
  startOurStack,
  startSpikeGoStack,
  superuserClient,
} from "./bench_stack.ts";
import { probeCommitFsync, probeFsync } from "./fsync_probe.ts";
import { ensureLoadgen, type LoadgenResult, runLoadgen } from "./loadgen_build.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

const NEXUS_ID = "spiffe://spike.ist/spike/nexus";
const VALUES = `"values":{"username":"bench","password":"correct-horse-battery-staple"}`;

/** A server under test. */
interface TargetSpec {
  readonly name: string;
  readonly kind: "ours" | "spike-go";
  readonly env: Record<string, string>;
  readonly baselineRoot?: string;
  readonly about: string;
}

/** One measured cell. */
interface Cell {
  readonly label: string;
  readonly connections: number;
  readonly body: (round: number) => string;
}

const CELLS: readonly Cell[] = [
  { label: "put new paths", connections: 1, body: (r) => `{"path":"bench/one-${r}-{i}",${VALUES}}` },
  { label: "put new paths", connections: 16, body: (r) => `{"path":"bench/new-${r}-{i}",${VALUES}}` },
  { label: "put one path", connections: 16, body: (r) => `{"path":"bench/hot-${r}",${VALUES}}` },
];

function stringFlags(args: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) values.push(args[i + 1] ?? "");
    else if (args[i]!.startsWith(`${name}=`)) values.push(args[i]!.slice(name.length + 1));
  }
  return values;
}

function targetsOf(args: readonly string[], goAvailable: boolean): TargetSpec[] {
  const targets: TargetSpec[] = [
    { name: "ours-full", kind: "ours", env: { SPIKE_NEXUS_DB_SYNCHRONOUS: "full" }, about: "ours, full (default)" },
    { name: "ours-normal", kind: "ours", env: { SPIKE_NEXUS_DB_SYNCHRONOUS: "normal" }, about: "ours, normal" },
    {
      name: "ours-worker",
      kind: "ours",
      env: { SPIKE_NEXUS_BACKEND_STORE: "sqlite-worker", SPIKE_NEXUS_DB_SYNCHRONOUS: "full" },
      about: "ours, worker store, full",
    },
  ];
  const baseline = stringFlags(args, "--baseline")[0];
  if (baseline) targets.push({ name: "ours-base", kind: "ours", env: {}, baselineRoot: baseline, about: baseline });
  for (const variant of stringFlags(args, "--variant")) {
    const [name, settings = ""] = variant.split(":", 2);
    const env = Object.fromEntries(
      settings.split(",").filter(Boolean).map((kv) => kv.split("=", 2) as [string, string]),
    );
    targets.push({ name: name!, kind: "ours", env, about: settings });
  }
  if (goAvailable) {
    targets.push(
      { name: "go-normal", kind: "spike-go", env: {}, about: "SPIKE v0.8.2 as shipped (synchronous=NORMAL)" },
      {
        name: "go-full",
        kind: "spike-go",
        env: { SPIKE_NEXUS_DB_JOURNAL_MODE: "WAL&_sync=FULL" },
        about: "SPIKE v0.8.2, synchronous=FULL",
      },
    );
  }
  const only = stringFlags(args, "--only")[0]?.split(",");
  return only ? targets.filter((t) => only.includes(t.name)) : targets;
}

async function main(): Promise<void> {
  const args = Deno.args;
  const quick = hasFlag(args, "--quick");
  const rounds = numberFlag(args, "--rounds", quick ? 1 : 5, 1, 50);
  const seconds = numberFlag(args, "--seconds", quick ? 1 : 3, 0.2, 60);
  const log = (line: string) => console.error(line);
  const loadBefore = Deno.loadavg();
  const loadgen = await ensureLoadgen();
  const bins = spikeGoBinaries();
  if (!bins) log("durable_write_bench: SPIKE_GO_BIN is not set: SPIKE's Go Nexus is skipped");
  const specs = targetsOf(args, bins !== undefined);

  const dir = await Deno.makeTempDir({ prefix: "spike-durable-" });
  const stacks: BenchStack[] = [];
  try {
    const ids = await mintBenchIdentities(dir);
    const pilotDir = ids.dirOf("pilot-superuser");
    const running: { spec: TargetSpec; stack: BenchStack }[] = [];
    for (const spec of specs) {
      log(`durable_write_bench: starting ${spec.name}`);
      const home = join(dir, spec.name);
      await Deno.mkdir(home);
      const stack = spec.kind === "ours"
        ? await startOurStack(home, ids, {
          extraNexusEnv: { SPIKE_LOG_LEVEL: "info", ...spec.env },
          ...(spec.baselineRoot ? { baselineRoot: spec.baselineRoot } : {}),
        })
        : await startSpikeGoStack(home, ids, bins!, { extraNexusEnv: spec.env });
      stacks.push(stack);
      if (spec.baselineRoot) await stack.restartNexus("SIGTERM", "baseline");
      running.push({ spec, stack });
    }
    if (specs.some((s) => s.baselineRoot)) await waitAllReadable(running.map((r) => r.stack), ids);
    const probeDir = join(dir, specs[0]!.name);

    const results = new Map<string, LoadgenResult[]>();
    const fsyncs: number[] = [];
    const commitFsyncs: number[] = [];
    const key = (cell: Cell, target: string) => `${cell.label}|${cell.connections}|${target}`;
    const run = (cell: Cell, target: { spec: TargetSpec; stack: BenchStack }, round: number, duration: string) =>
      runLoadgen(loadgen, [
        "-url",
        `${target.stack.nexusUrl}/v1/store/secrets`,
        "-method",
        "POST",
        "-body",
        cell.body(round),
        "-svid-dir",
        pilotDir,
        "-server-id",
        NEXUS_ID,
        "-server-pid",
        String(target.stack.nexus().pid),
        "-conns",
        String(cell.connections),
        "-duration",
        duration,
      ]);
    log("durable_write_bench: warm-up");
    for (const cell of CELLS) for (const target of running) await run(cell, target, 0, "0.5s");
    for (let round = 1; round <= rounds; round++) {
      log(`durable_write_bench: round ${round}/${rounds}`);
      fsyncs.push(probeFsync(probeDir).p50);
      commitFsyncs.push(probeCommitFsync(probeDir).p50);
      const order = round % 2 === 0 ? [...running].reverse() : running;
      for (const cell of CELLS) {
        for (const target of order) {
          const result = await run(cell, target, round, `${seconds}s`);
          if (result.errors > 0) {
            log(
              `  ${cell.label} c=${cell.connections} ${target.spec.name}: ${result.errors} errors (${result.first_error})`,
            );
          }
          const list = results.get(key(cell, target.spec.name)) ?? [];
          list.push(result);
          results.set(key(cell, target.spec.name), list);
        }
      }
    }
    const loadAfter = Deno.loadavg();
    console.log(report({ results, key, specs, rounds, seconds, fsyncs, commitFsyncs, loadBefore, loadAfter }));
  } finally {
    for (const stack of stacks) await stack.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** After a restart into the baseline tree, waits until every Nexus serves a read again. */
async function waitAllReadable(stacks: readonly BenchStack[], ids: Awaited<ReturnType<typeof mintBenchIdentities>>) {
  const client = superuserClient(ids.byName.get("pilot-superuser")!, 5000);
  try {
    for (const stack of stacks) {
      const nexus = new NexusClient(stack.nexusUrl, client);
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await nexus.putSecret("bench/ready", { ready: "yes" });
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  } finally {
    client.close();
  }
}

type Field = "rps" | "p50_ms" | "p99_ms" | "server_cpu_us_per_request";

interface ReportInput {
  readonly results: Map<string, LoadgenResult[]>;
  readonly key: (cell: Cell, target: string) => string;
  readonly specs: readonly TargetSpec[];
  readonly rounds: number;
  readonly seconds: number;
  readonly fsyncs: readonly number[];
  /** Per round: p50 of a commit's WAL frames overwritten + fdatasync (`probeCommitFsync`). */
  readonly commitFsyncs: readonly number[];
  readonly loadBefore: number[];
  readonly loadAfter: number[];
}

function report(input: ReportInput): string {
  const { results, key, specs } = input;
  const names = specs.map((s) => s.name);
  const med = (list: readonly LoadgenResult[] | undefined, field: Field) =>
    list ? median(list.map((r) => r[field] ?? NaN)) : NaN;
  const paired = (
    a: readonly LoadgenResult[] | undefined,
    b: readonly LoadgenResult[] | undefined,
    value: (r: LoadgenResult, round: number) => number,
    other: (r: LoadgenResult, round: number) => number = value,
  ) => (!a || !b || a.length !== b.length) ? NaN : median(a.map((r, i) => value(r, i) / other(b[i]!, i)));
  const load = (cell: Cell) =>
    median(names.flatMap((n) => (results.get(key(cell, n)) ?? []).map((r) => Number(r.load_average?.split(" ")[0]))));
  const out: string[] = [];
  out.push(
    `Durable writes, ${input.rounds} interleaved round(s) of ${formatNumber(input.seconds, 1)} s per cell (median), ` +
      `compiled Go client (bench/loadgen), SQLite. Load average before: ` +
      `${input.loadBefore.map((n) => formatNumber(n, 2)).join(" ")}, after: ${
        input.loadAfter.map((n) => formatNumber(n, 2)).join(" ")
      }. Disk: 4 KiB rewrite + fdatasync in the data directory, p50 of 200 per round, median over rounds: ` +
      `${formatNumber(median(input.fsyncs), 3)} ms (rounds: ${
        input.fsyncs.map((f) => formatNumber(f, 3)).join(", ")
      }); one commit's WAL frames (4 × 4,120 B over a 4 MiB file) + fdatasync: ${
        formatNumber(median(input.commitFsyncs), 3)
      } ms (rounds: ${input.commitFsyncs.map((f) => formatNumber(f, 3)).join(", ")}).`,
    "",
    "Servers: " + specs.map((s) => `\`${s.name}\` = ${s.about}`).join("; ") + ".",
    "",
    markdownTable(
      ["operation", "conns", "server", "requests", "req/s", "p50 ms", "p99 ms", "server CPU µs/req", "errors"],
      CELLS.flatMap((cell) =>
        names.map((name) => {
          const list = results.get(key(cell, name));
          return [
            cell.label,
            String(cell.connections),
            name,
            formatNumber(list?.reduce((n, r) => n + r.requests, 0) ?? NaN),
            formatNumber(med(list, "rps")),
            formatNumber(med(list, "p50_ms"), 2),
            formatNumber(med(list, "p99_ms"), 2),
            formatNumber(med(list, "server_cpu_us_per_request"), 0),
            formatNumber(list?.reduce((n, r) => n + r.errors, 0) ?? NaN),
          ];
        })
      ),
      ["left", "right", "left", "right", "right", "right", "right", "right", "right"],
    ),
    "",
  );
  const candidates: [string, string][] = [
    ["ours-full", "go-normal"],
    ["ours-full", "go-full"],
    ["ours-full", "ours-normal"],
    ["ours-worker", "ours-full"],
    ["ours-full", "ours-base"],
    ...specs.filter((s) =>
      !["ours-full", "ours-normal", "ours-worker", "ours-base"].includes(s.name) && s.kind === "ours"
    )
      .map((s): [string, string] => [s.name, "ours-full"]),
  ];
  const pairs = candidates.filter(([a, b]) => names.includes(a) && names.includes(b));
  out.push(
    "Same-round ratios of req/s (median over rounds; > 1: the first is faster), and the cell's load average (1 min, median):",
    "",
    markdownTable(
      ["operation", "conns", ...pairs.map(([a, b]) => `${a} ÷ ${b}`), "load avg"],
      CELLS.map((cell) => [
        cell.label,
        String(cell.connections),
        ...pairs.map(([a, b]) =>
          formatRatio(paired(results.get(key(cell, a)), results.get(key(cell, b)), (r) => r.rps))
        ),
        formatNumber(load(cell), 2),
      ]),
      ["left", "right", ...pairs.map(() => "right" as const), "right"],
    ),
    "",
  );
  const single = CELLS[0]!;
  const fsyncOf = (_: LoadgenResult, round: number) => input.fsyncs[round]!;
  const durableRows = names.filter((n) => n !== "ours-normal" && n !== "go-normal").map((name) => {
    const list = results.get(key(single, name));
    const floor = name.startsWith("go") ? "go-normal" : "ours-normal";
    const base = results.get(key(single, floor));
    const added = (fsyncs: readonly number[]) =>
      !list || !base || list.length !== base.length
        ? NaN
        : median(list.map((r, i) => (r.p50_ms - base[i]!.p50_ms) / fsyncs[i]!));
    return [
      name,
      formatNumber(med(list, "p50_ms"), 3),
      formatRatio(paired(list, list, (r) => r.p50_ms, fsyncOf)),
      floor,
      formatRatio(added(input.fsyncs)),
      formatRatio(added(input.commitFsyncs)),
    ];
  });
  out.push(
    "One put at a time (1 connection) against one fsync of the same round: the put's p50 ÷ the 4 KiB fsync's p50, and " +
      "what durability adds to the put (p50 minus the same server's p50 without an fsync per write) ÷ the 4 KiB " +
      "fsync's p50 and ÷ the commit-shaped fsync's p50:",
    "",
    markdownTable(
      [
        "server",
        "put p50 ms",
        "put ÷ fsync",
        "without fsync",
        "(put − without) ÷ fsync",
        "(put − without) ÷ commit fsync",
      ],
      durableRows,
      ["left", "right", "right", "left", "right", "right"],
    ),
  );
  return out.join("\n");
}

if (import.meta.main) {
  await main();
}
