/**
 * Issue 7's memory criterion, measured per launch variant: after N
 * unauthenticated 1 MiB POSTs (each client hanging up once it has its
 * answer), does the server's resident size come back within 20 MiB of a
 * fresh process's? "Fresh" is honest: the server is up and has served a few
 * authenticated requests (Nexus: in a whole stack, three Keepers, SQLite,
 * bootstrapped, ten writes and ten reads), then idled 3 s; no flood warmed
 * it up.
 *
 * Subjects: Nexus (300 × 1 MiB, every variant), a lone Keeper (100 × 1 MiB
 * chunked) and the side-by-side benchmark's ceiling server (the same mTLS
 * server and bridge as Nexus with a trivial app: what a flood leaves in it
 * is the runtime's share, not Nexus's). Each variant gets a process of its
 * own, one after the other (the flood has the machine to itself). Variants
 * differ only by environment: glibc tunables (`MALLOC_*`) and V8 options
 * through `DENO_V8_FLAGS`, which Deno adds to its `--v8-flags`.
 *
 * Reported per variant (median over `--rounds`): VmRSS fresh, right after
 * the flood, 2 s and 10 s after; the settled growth; and where it sits:
 * anonymous memory (smaps_rollup), V8's heap and external (ArrayBuffer)
 * memory (Nexus's `/metrics`), and the largest anonymous mapping the flood
 * added.
 *
 * With `--cpu` it measures instead what the V8 memory reducer variant costs
 * Nexus per request (server CPU of `secret get` and `secret put` at 16
 * connections, Go load generator), both stacks running, interleaved.
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/flood_memory_bench.ts [--rounds N] [--quick]`
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/flood_memory_bench.ts --cpu [--cpu-rounds N] [--seconds S]`
 *
 * @module
 */
import { NexusClient } from "../lib/client/nexus_client.ts";
import type { DevIdentities } from "../lib/dev/identities.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isKeeper } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { freePort } from "../tests/support/ports.ts";
import { postAndHangUp, residentMiB } from "../tests/support/raw_client.ts";
import {
  BenchProcess,
  mintBenchIdentities,
  pollUntil,
  REPO_ROOT,
  spikeRunArgs,
  startOurStack,
  superuserClient,
} from "./bench_stack.ts";
import { ensureLoadgen, type LoadgenResult, runLoadgen, secretGetArgs, secretPutArgs } from "./loadgen_build.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

const MIB = 1024 * 1024;
const PARALLEL = 10;
/** Issue 7's bound on what a flood may leave behind. */
const CRITERION_MIB = 20;

/** One way of launching a server. */
interface Variant {
  readonly name: string;
  readonly env: Readonly<Record<string, string>>;
}

const SEMI_SPACE_AND_MMAP = { DENO_V8_FLAGS: "--max-semi-space-size=2", MALLOC_MMAP_THRESHOLD_: "16384" };
const REDUCER_1S = {
  ...SEMI_SPACE_AND_MMAP,
  DENO_V8_FLAGS: "--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000",
};

const DEFAULT: Variant = { name: "default", env: {} };
const SEMI_SPACE_AND_MMAP_VARIANT: Variant = { name: "semi-space 2 MiB + mmap ≥ 16 KiB", env: SEMI_SPACE_AND_MMAP };
const REDUCER_VARIANT: Variant = { name: "… + V8 memory reducer after 1 s", env: REDUCER_1S };

const NEXUS_VARIANTS: readonly Variant[] = [
  DEFAULT,
  { name: "MALLOC_ARENA_MAX=1", env: { MALLOC_ARENA_MAX: "1" } },
  SEMI_SPACE_AND_MMAP_VARIANT,
  { name: "… + MALLOC_ARENA_MAX=1", env: { ...SEMI_SPACE_AND_MMAP, MALLOC_ARENA_MAX: "1" } },
  { name: "… + MALLOC_ARENA_MAX=2", env: { ...SEMI_SPACE_AND_MMAP, MALLOC_ARENA_MAX: "2" } },
  {
    name: "… + MALLOC_TRIM_THRESHOLD_=131072 + MALLOC_TOP_PAD_=0",
    env: { ...SEMI_SPACE_AND_MMAP, MALLOC_TRIM_THRESHOLD_: "131072", MALLOC_TOP_PAD_: "0" },
  },
  REDUCER_VARIANT,
];

/** A server under test, started for one variant, warmed with a few authenticated requests. */
interface Target {
  readonly pid: number;
  readonly port: number;
  /** V8's heap and external memory in MiB, when the server shows `/metrics`. */
  v8Memory(): Promise<{ heap: number; external: number }>;
  stop(): Promise<void>;
}

/** A kind of server and the flood it gets. */
interface Subject {
  readonly name: string;
  readonly variants: readonly Variant[];
  readonly flood: { readonly count: number; readonly path: string; readonly chunked: boolean };
  start(dir: string, ids: DevIdentities, variant: Variant): Promise<Target>;
}

/** What one round of one variant measured, in MiB. */
interface Measured {
  readonly fresh: number;
  readonly afterFlood: number;
  readonly after2s: number;
  readonly after10s: number;
  readonly anonGrowth: number;
  readonly v8HeapGrowth: number;
  readonly externalGrowth: number;
  readonly largestNewMapping: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Anonymous resident memory of `pid` in MiB (smaps_rollup). */
function anonymousMiB(pid: number): number {
  const match = /^Anonymous:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`));
  if (!match) throw new Error(`no smaps_rollup for process ${pid}`);
  return Number(match[1]) / 1024;
}

/** Anonymous resident KiB of each mapping of `pid`, by start address. */
function anonymousMappings(pid: number): Map<string, number> {
  const mappings = new Map<string, number>();
  let current = "";
  for (const line of Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n")) {
    const header = /^([0-9a-f]+)-[0-9a-f]+ /.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon) mappings.set(current, Number(anon[1]));
  }
  return mappings;
}

/** V8's heap and external memory from a server's `/metrics`, in MiB. */
async function metricsMemory(client: MtlsClient, url: string): Promise<{ heap: number; external: number }> {
  const answer = await client.request("GET", `${url}/metrics`);
  const text = new TextDecoder().decode(answer.body);
  const sample = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN) / MIB;
  return { heap: sample("nodejs_heap_size_total_bytes"), external: sample("nodejs_external_memory_bytes") };
}

const NO_METRICS = () => Promise.resolve({ heap: Number.NaN, external: Number.NaN });

/** Starts `spike <role>` (or a bench server) from this tree with `env`, waiting for `ready` on its output. */
async function startProcess(name: string, args: string[], env: Record<string, string>, ready: RegExp) {
  const process = new BenchProcess(name, Deno.execPath(), args, env);
  await pollUntil(() => Promise.resolve(ready.test(process.tail())), `${name} is listening`, 60_000, 50, process);
  return process;
}

/** Nexus in a whole stack (three Keepers, SQLite, bootstrapped), warmed with ten writes and ten reads. */
const NEXUS: Subject = {
  name: "Nexus",
  variants: NEXUS_VARIANTS,
  flood: { count: 300, path: "/v1/store/secrets?action=list", chunked: false },
  async start(dir, ids, variant) {
    const stack = await startOurStack(dir, ids, { extraNexusEnv: { SPIKE_LOG_LEVEL: "info", ...variant.env } });
    const client = superuserClient(ids.byName.get("pilot-superuser")!, 30_000);
    try {
      const nexus = new NexusClient(stack.nexusUrl, client);
      for (let i = 0; i < 10; i++) await nexus.putSecret(`bench/flood-${i}`, { username: "bench", password: "p" });
      for (let i = 0; i < 10; i++) await nexus.getSecret(`bench/flood-${i}`);
    } catch (error) {
      client.close();
      await stack.stop();
      throw error;
    }
    return {
      pid: stack.nexus().pid,
      port: Number(new URL(stack.nexusUrl).port),
      v8Memory: () => metricsMemory(client, stack.nexusUrl),
      async stop() {
        client.close();
        await stack.stop();
      },
    };
  },
};

/** A lone Keeper, warmed with five shard reads as Nexus; its flood is 100 chunked 1 MiB bodies. */
const KEEPER: Subject = {
  name: "Keeper",
  variants: [DEFAULT, SEMI_SPACE_AND_MMAP_VARIANT, REDUCER_VARIANT],
  flood: { count: 100, path: "/v1/store/contribute", chunked: true },
  async start(_dir, ids, variant) {
    const port = freePort();
    const process = await startProcess("keeper", [...spikeRunArgs(), "keeper"], {
      SPIKE_SVID_DIR: ids.dirOf("keeper-1"),
      SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}`,
      SPIKE_LOG_LEVEL: "info",
      ...variant.env,
    }, /keeper listening/);
    const client = createMtlsClient({
      identity: createStaticSource(ids.byName.get("nexus")!),
      serverId: (id) => isKeeper(id),
      timeoutMs: 10_000,
    });
    try {
      for (let i = 0; i < 5; i++) await client.request("POST", `https://127.0.0.1:${port}/v1/store/shard`, "{}");
    } finally {
      client.close();
    }
    return { pid: process.pid, port, v8Memory: NO_METRICS, stop: () => process.kill() };
  },
};

/**
 * The side-by-side benchmark's ceiling server: the same mTLS server and
 * bridge as Nexus with a trivial app, so what a flood leaves behind in it
 * is the runtime's and the HTTP/TLS stack's share. Warmed with twenty reads.
 */
const CEILING: Subject = {
  name: "ceiling server (mTLS server + bridge, trivial app)",
  variants: [DEFAULT, SEMI_SPACE_AND_MMAP_VARIANT, REDUCER_VARIANT],
  flood: { count: 300, path: "/v1/store/secrets?action=get", chunked: false },
  async start(_dir, ids, variant) {
    const port = freePort();
    const [command, ...rest] = spikeRunArgs();
    const args = [
      command!,
      ...rest.slice(0, -1),
      `${REPO_ROOT}/bench/ceiling_server.ts`,
      ids.dirOf("nexus"),
      `${port}`,
    ];
    const process = await startProcess("ceiling", args, variant.env, /listening/);
    const client = superuserClient(ids.byName.get("pilot-superuser")!, 10_000);
    try {
      const url = `https://127.0.0.1:${port}/v1/store/secrets?action=get`;
      for (let i = 0; i < 20; i++) await client.request("POST", url, `{"path":"bench/flood"}`);
    } finally {
      client.close();
    }
    return { pid: process.pid, port, v8Memory: NO_METRICS, stop: () => process.kill() };
  },
};

const SUBJECTS: readonly Subject[] = [NEXUS, KEEPER, CEILING];

/** Compared for CPU per request with `--cpu`: the settings server roles get today, and with the memory reducer after 1 s. */
const CPU_VARIANTS: readonly Variant[] = [SEMI_SPACE_AND_MMAP_VARIANT, REDUCER_VARIANT];

/** `count` unauthenticated 1 MiB POSTs, {@linkcode PARALLEL} at a time, each client hanging up after its answer. */
async function flood(port: number, subject: Subject): Promise<void> {
  const { count, path, chunked } = subject.flood;
  for (let sent = 0; sent < count; sent += PARALLEL) {
    const batch = Math.min(PARALLEL, count - sent);
    await Promise.all(Array.from({ length: batch }, () => postAndHangUp(port, path, MIB, { chunked })));
  }
}

async function measure(target: Target, subject: Subject): Promise<Measured> {
  const { pid } = target;
  await sleep(3000);
  const fresh = residentMiB(pid);
  const freshAnon = anonymousMiB(pid);
  const freshV8 = await target.v8Memory();
  const freshMappings = anonymousMappings(pid);
  await flood(target.port, subject);
  const afterFlood = residentMiB(pid);
  await sleep(2000);
  const after2s = residentMiB(pid);
  await sleep(8000);
  const after10s = residentMiB(pid);
  const anonGrowth = anonymousMiB(pid) - freshAnon;
  const v8 = await target.v8Memory();
  let largestNewMapping = 0;
  for (const [start, kib] of anonymousMappings(pid)) {
    if (!freshMappings.has(start)) largestNewMapping = Math.max(largestNewMapping, kib / 1024);
  }
  return {
    fresh,
    afterFlood,
    after2s,
    after10s,
    anonGrowth,
    v8HeapGrowth: v8.heap - freshV8.heap,
    externalGrowth: v8.external - freshV8.external,
    largestNewMapping,
  };
}

/** Loadgen cells of the CPU comparison: secret reads and writes at 16 connections. */
const CPU_CELLS: readonly { label: string; args: (url: string, round: number) => string[] }[] = [
  {
    label: "secret get c=16",
    args: (url) => secretGetArgs(url, 10, "bench/flood-{i}"),
  },
  {
    label: "secret put c=16",
    args: (url, round) => secretPutArgs(url, `bench/cpu-${round}-{i}`),
  },
];

/**
 * Server CPU per request of the variants in {@linkcode CPU_VARIANTS}, both
 * stacks running, cells interleaved by round (order alternating), as
 * medians and same-round ratios against the first.
 */
async function compareCpu(dir: string, ids: DevIdentities, rounds: number, seconds: number): Promise<void> {
  const loadgen = await ensureLoadgen();
  const targets: { variant: Variant; target: Target; url: string }[] = [];
  try {
    for (const variant of CPU_VARIANTS) {
      const own = await Deno.makeTempDir({ dir });
      const target = await NEXUS.start(own, ids, variant);
      targets.push({ variant, target, url: `https://127.0.0.1:${target.port}` });
    }
    const results = targets.map(() => CPU_CELLS.map(() => [] as LoadgenResult[]));
    for (let round = 0; round <= rounds; round++) {
      console.error(`flood_memory_bench: CPU ${round === 0 ? "warm-up" : `round ${round}/${rounds}`}`);
      const order = round % 2 === 0 ? [...targets.keys()] : [...targets.keys()].reverse();
      for (const [c, cell] of CPU_CELLS.entries()) {
        for (const t of order) {
          const { target, url } = targets[t]!;
          const result = await runLoadgen(loadgen, [
            ...cell.args(url, round),
            "-svid-dir",
            ids.dirOf("pilot-superuser"),
            "-server-id",
            "spiffe://spike.ist/spike/nexus",
            "-server-pid",
            String(target.pid),
            "-conns",
            "16",
            "-duration",
            round === 0 ? "0.5s" : `${seconds}s`,
          ]);
          if (round > 0) results[t]![c]!.push(result);
        }
      }
    }
    const cpu = (r: LoadgenResult) => r.server_cpu_us_per_request ?? Number.NaN;
    const load = Deno.loadavg().map((n) => formatNumber(n, 2)).join(" ");
    console.log(
      `\nServer CPU per request, ${rounds} interleaved round(s) of ${seconds} s per cell (median). ` +
        `Load average after: ${load}.\n`,
    );
    console.log(markdownTable(
      ["variant", ...CPU_CELLS.flatMap((cell) => [`${cell.label} µs/req`, `÷ ${CPU_VARIANTS[0]!.name}`])],
      targets.map((t, v) => [
        t.variant.name,
        ...CPU_CELLS.flatMap((_, c) => [
          formatNumber(median(results[v]![c]!.map(cpu)), 0),
          formatRatio(median(results[v]![c]!.map((r, i) => cpu(r) / cpu(results[0]![c]![i]!)))),
        ]),
      ]),
      ["left", ...CPU_CELLS.flatMap(() => ["right", "right"] as const)],
    ));
  } finally {
    for (const { target } of targets) await target.stop();
  }
}

async function main(): Promise<void> {
  const rounds = numberFlag(Deno.args, "--rounds", 1, 1, 5);
  const cpuOnly = hasFlag(Deno.args, "--cpu");
  // `deno task bench --quick` checks that it works: Nexus only, two variants.
  const subjects = hasFlag(Deno.args, "--quick") ? [{ ...NEXUS, variants: [DEFAULT, REDUCER_VARIANT] }] : SUBJECTS;
  const cpuRounds = numberFlag(Deno.args, "--cpu-rounds", 5, 1, 20);
  const seconds = numberFlag(Deno.args, "--seconds", 3, 0.2, 30);
  const log = (line: string) => console.error(line);
  const loadBefore = Deno.loadavg();
  const dir = await Deno.makeTempDir({ prefix: "spike-flood-memory-" });
  const results = new Map<string, Measured[]>();
  const key = (subject: Subject, variant: Variant) => `${subject.name}|${variant.name}`;
  try {
    const ids = await mintBenchIdentities(dir);
    if (cpuOnly) {
      await compareCpu(dir, ids, cpuRounds, seconds);
      return;
    }
    for (let round = 0; round < rounds; round++) {
      for (const subject of subjects) {
        for (const variant of subject.variants) {
          log(`flood_memory_bench: round ${round + 1}/${rounds}, ${subject.name}, ${variant.name}`);
          const own = await Deno.makeTempDir({ dir });
          const target = await subject.start(own, ids, variant);
          try {
            const measured = await measure(target, subject);
            results.set(key(subject, variant), [...(results.get(key(subject, variant)) ?? []), measured]);
          } finally {
            await target.stop();
          }
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const loadAfter = Deno.loadavg();
  const load = (l: number[]) => l.map((n) => formatNumber(n, 2)).join(" ");
  console.log(
    `Unauthenticated 1 MiB POSTs (${PARALLEL} at a time, each client hanging up after its answer), ` +
      `${rounds} round(s) per variant (median), one server at a time. ` +
      `Load average before: ${load(loadBefore)}, after: ${load(loadAfter)}.`,
  );
  for (const subject of subjects) {
    const { count, chunked } = subject.flood;
    console.log(`\n${subject.name}, ${count} × 1 MiB${chunked ? " chunked" : ""}:\n`);
    const m = (variant: Variant, pick: (r: Measured) => number) =>
      median(results.get(key(subject, variant))!.map(pick));
    console.log(markdownTable(
      [
        "variant",
        "fresh MiB",
        "right after",
        "+2 s",
        "+10 s",
        "settled − fresh",
        `≤ ${CRITERION_MIB}?`,
        "anon Δ",
        "V8 heap Δ",
        "external Δ",
        "largest new mapping",
      ],
      subject.variants.map((variant) => {
        const grown = m(variant, (r) => r.after10s - r.fresh);
        return [
          variant.name,
          formatNumber(m(variant, (r) => r.fresh), 0),
          formatNumber(m(variant, (r) => r.afterFlood), 0),
          formatNumber(m(variant, (r) => r.after2s), 0),
          formatNumber(m(variant, (r) => r.after10s), 0),
          `+${formatNumber(grown, 0)}`,
          grown <= CRITERION_MIB ? "yes" : "no",
          formatNumber(m(variant, (r) => r.anonGrowth), 0),
          formatNumber(m(variant, (r) => r.v8HeapGrowth), 0),
          formatNumber(m(variant, (r) => r.externalGrowth), 0),
          formatNumber(m(variant, (r) => r.largestNewMapping), 0),
        ];
      }),
      ["left", ...Array(10).fill("right")],
    ));
  }
}

if (import.meta.main) {
  await main();
}
