/**
 * Start-up benchmark: how long a process takes until it is useful, each
 * role as the installed command runs it (`deno run` with the flags of
 * deno.json's `spike` task), with SVID files and SQLite.
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/startup_bench.ts [--quick] [--rounds N] [--baseline DIR]`
 *
 * Measured, interleaved round by round (medians over rounds):
 * - the floors: `deno run` of an empty module with the same flags, `spike version`, `spike --help`;
 * - `spike secret get` with SVID files, spawn to exit (a real read from Nexus);
 * - `spike secret list` of 1,001 paths, spawn to exit (each stack's own CLI);
 * - a Keeper's cold start: spawn to its first HTTP answer over mTLS;
 * - Nexus restart after SIGKILL, with three Keepers holding the shards:
 *   spawn to the first successful `secret get` (the root key rebuilt), and
 *   spawn to `GET /ready` 200. Polled every 2 ms over one kept-alive mTLS
 *   connection (retried while the port is closed). Nexus logs its start-up
 *   phases (`lib/log/startup.ts`) and the table shows their medians.
 *
 * Our CLI and Nexus also run with `--no-code-cache` (V8's code cache off)
 * in every round, to show what Deno's code cache (on by default) gives.
 *
 * With `SPIKE_GO_BIN` set (a directory holding SPIKE's `nexus`, `keeper`,
 * `bootstrap` and `spike` binaries; see docs/BENCHMARKS.md), SPIKE's Go
 * stack runs beside ours and every cell gets its same-round ratio. With
 * `--baseline DIR` (another checkout of this repository), the CLI and the
 * Nexus restart also run that tree's code on the same Keepers and data.
 *
 * @module
 */
import { join } from "node:path";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { STARTUP_MESSAGE } from "../lib/log/startup.ts";
import { isKeeper } from "../lib/spiffe/roles.ts";
import { createMtlsClient } from "../lib/spiffe/mtls_client.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import {
  BENCH_SECRET,
  type BenchProcess,
  type BenchStack,
  mintBenchIdentities,
  pollUntil,
  REPO_ROOT,
  type RunVariant,
  seedSecrets,
  spikeGoBinaries,
  spikeRunArgs,
  startOurStack,
  startSpikeGoStack,
  superuserClient,
} from "./bench_stack.ts";
import { startHandshakeServer } from "./handshake_server.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, median, numberFlag, processCpuMs } from "./support.ts";

/** Rounds of the full run and of `--quick`. */
const FULL_ROUNDS = 15;
const QUICK_ROUNDS = 3;
/** Poll interval while waiting for a restarted Nexus. */
const POLL_MS = 2;

/** One cell's samples (ms), by round. */
type Samples = Map<string, number[]>;

function record(samples: Samples, key: string, value: number): void {
  const list = samples.get(key) ?? [];
  list.push(value);
  samples.set(key, list);
}

/** Wall time of one command run to its exit, in ms; throws when it fails. */
async function timeCommand(executable: string, args: readonly string[], env: Record<string, string>): Promise<number> {
  const inherited: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "DENO_DIR", "TMPDIR", "USER"]) {
    const value = Deno.env.get(key);
    if (value !== undefined) inherited[key] = value;
  }
  const started = performance.now();
  const output = await new Deno.Command(executable, {
    args: [...args],
    env: { ...inherited, NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - started;
  if (!output.success) {
    throw new Error(
      `${executable} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).slice(0, 2000)}`,
    );
  }
  return elapsed;
}

/** Start-up phase marks of one Nexus run: phase → ms since its runtime started. */
function phasesOf(process: BenchProcess): Map<string, number> {
  const phases = new Map<string, number>();
  for (const line of process.lines) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.message === STARTUP_MESSAGE && typeof entry.phase === "string" && typeof entry.ms === "number") {
        if (!phases.has(entry.phase)) phases.set(entry.phase, entry.ms);
      }
    } catch {
      // Not a log line.
    }
  }
  return phases;
}

/**
 * What loading one module costs in a fresh process: the probe imports it
 * and prints the import's wall time and the process's CPU time (all
 * threads) at the end. Bare specifiers resolve through `root`'s deno.json.
 */
const IMPORT_PROBE = `
const spec = Deno.args[0];
const t0 = performance.now();
await import(spec);
const importMs = performance.now() - t0;
let ns = 0;
for (const task of Deno.readDirSync("/proc/self/task")) {
  try { ns += Number(Deno.readTextFileSync("/proc/self/task/" + task.name + "/schedstat").split(" ")[0]); } catch {}
}
console.log(JSON.stringify({ importMs, cpuMs: ns / 1e6 }));
`;

/**
 * One mTLS connection from a fresh process with `node:tls` (what our
 * clients use), or none: the difference is what a process's first TLS
 * connection costs. Prints the process's CPU time (all threads) in ms.
 * Deno reads it from /proc, Node from `process.cpuUsage()`.
 */
const TLS_PROBE_DENO = `
import tls from "node:tls";
import { readFileSync } from "node:fs";
const [dir, port, mode] = Deno.args;
if (mode === "connect") {
  await new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1", port: Number(port), rejectUnauthorized: false,
      key: readFileSync(dir + "/svid_key.pem"), cert: readFileSync(dir + "/svid.pem"), ca: readFileSync(dir + "/svid_bundle.pem"),
    }, () => { socket.end(); resolve(undefined); });
    socket.on("error", reject);
  });
}
let ns = 0;
for (const task of Deno.readDirSync("/proc/self/task")) {
  try { ns += Number(Deno.readTextFileSync("/proc/self/task/" + task.name + "/schedstat").split(" ")[0]); } catch {}
}
console.log(JSON.stringify({ cpuMs: ns / 1e6 }));
`;
const TLS_PROBE_NODE = `
import tls from "node:tls";
import { readFileSync } from "node:fs";
const [dir, port, mode] = process.argv.slice(2);
if (mode === "connect") {
  await new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1", port: Number(port), rejectUnauthorized: false,
      key: readFileSync(dir + "/svid_key.pem"), cert: readFileSync(dir + "/svid.pem"), ca: readFileSync(dir + "/svid_bundle.pem"),
    }, () => { socket.end(); resolve(undefined); });
    socket.on("error", reject);
  });
}
const usage = process.cpuUsage();
console.log(JSON.stringify({ cpuMs: (usage.user + usage.system) / 1000 }));
`;

/** Median CPU ms of `command args` (a TLS probe) over `rounds` fresh processes. */
async function probeCpu(command: string, args: readonly string[], rounds: number): Promise<number> {
  const cpus: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const output = await new Deno.Command(command, { args: [...args], stdout: "piped", stderr: "piped" }).output();
    if (!output.success) {
      throw new Error(`${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
    }
    cpus.push(JSON.parse(new TextDecoder().decode(output.stdout)).cpuMs);
  }
  return median(cpus);
}

/** `node` on PATH, or undefined. */
async function nodeAvailable(): Promise<boolean> {
  try {
    return (await new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}

/** Modules whose load cost the report lists: what each role loads, and the heavy packages. */
const PROBED_MODULES: readonly (readonly [label: string, specifier: string])[] = [
  ["(nothing: an empty import)", "data:text/javascript,"],
  ["cmd/spike.ts (the command tree)", "cmd/spike.ts"],
  ["lib/nexus/server.ts (Nexus)", "lib/nexus/server.ts"],
  ["lib/keeper/server.ts (Keeper)", "lib/keeper/server.ts"],
  ["lib/spiffe/mtls_client.ts (CLI session: TLS client)", "lib/spiffe/mtls_client.ts"],
  ["lib/spiffe/source_select.ts (CLI session: SVID source)", "lib/spiffe/source_select.ts"],
  ["node:https", "node:https"],
  ["node:fs", "node:fs"],
  ["node:crypto", "node:crypto"],
  ["node:sqlite", "node:sqlite"],
  ["hono", "hono"],
  ["@peculiar/x509 via lib/spiffe/x509.ts (now: development CA only)", "lib/spiffe/x509.ts"],
  ["@grpc/grpc-js (now: Workload API only)", "@grpc/grpc-js"],
  ["postgres (now: postgres store only)", "postgres"],
  ["refa (now: on first policy write)", "refa"],
  ["yaml (now: -f yaml, policy files, agent)", "yaml"],
  ["@noble/curves/nist.js (now: not loaded)", "@noble/curves/nist.js"],
];

/** Median import ms and CPU ms of `specifier` over `rounds` fresh processes. */
async function probeImport(
  probe: string,
  root: string,
  specifier: string,
  rounds: number,
): Promise<{ importMs: number; cpuMs: number }> {
  const resolved = specifier.startsWith("lib/") || specifier.startsWith("cmd/")
    ? new URL(`file://${join(root, specifier)}`).href
    : specifier;
  const imports: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--config=${join(root, "deno.json")}`, "--allow-all", probe, resolved],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) throw new Error(`probe of ${specifier} failed: ${new TextDecoder().decode(output.stderr)}`);
    const { importMs, cpuMs } = JSON.parse(new TextDecoder().decode(output.stdout));
    imports.push(importMs);
    cpus.push(cpuMs);
  }
  return { importMs: median(imports), cpuMs: median(cpus) };
}

/** Restarts Nexus with SIGKILL and measures spawn → first successful secret read (or `/ready` 200). */
async function restartToReady(
  stack: BenchStack,
  nexus: NexusClient,
  probe: "secret get" | "/ready",
  variant: RunVariant = "current",
): Promise<{ ms: number; cpuMs: number; process: BenchProcess }> {
  const process = await stack.restartNexus("SIGKILL", variant);
  const check = probe === "secret get"
    ? async () => {
      const values = await nexus.getSecret(BENCH_SECRET);
      if (values.username !== "bench") throw new Error("unexpected secret");
      return true;
    }
    : async () => (await nexusTransport(nexus).request("GET", `${stack.nexusUrl}/ready`)).status === 200;
  const at = await pollUntil(check, `${process.name} ready`, 60_000, POLL_MS, process);
  return { ms: at - process.spawnedAt, cpuMs: processCpuMs(process.pid), process };
}

const transports = new WeakMap<NexusClient, ReturnType<typeof superuserClient>>();
function nexusTransport(nexus: NexusClient) {
  return transports.get(nexus)!;
}

/** Spawns a spare Keeper and measures spawn → first HTTP answer over mTLS (any status). */
async function keeperColdStart(
  stack: BenchStack,
  client: ReturnType<typeof createMtlsClient>,
): Promise<{ ms: number; cpuMs: number }> {
  const { process, url } = await stack.startSpareKeeper();
  try {
    const at = await pollUntil(
      async () => {
        await client.request("GET", `${url}/health`);
        return true;
      },
      `${process.name} answers`,
      60_000,
      POLL_MS,
      process,
    );
    return { ms: at - process.spawnedAt, cpuMs: processCpuMs(process.pid) };
  } finally {
    await process.kill("SIGKILL");
  }
}

/** Paths seeded besides {@linkcode BENCH_SECRET} for the `secret list` row (the table listed 1,000). */
const LIST_PATHS = 1000;

async function main(): Promise<void> {
  const args = Deno.args;
  const quick = hasFlag(args, "--quick");
  const rounds = numberFlag(args, "--rounds", quick ? QUICK_ROUNDS : FULL_ROUNDS, 1, 200);
  const baselineAt = args.indexOf("--baseline");
  const baselineRoot = baselineAt >= 0 ? args[baselineAt + 1] : undefined;
  if (baselineAt >= 0 && !baselineRoot) throw new Error("--baseline needs a directory");
  const bins = spikeGoBinaries();
  const log = (line: string) => console.error(line);
  const loadBefore = Deno.loadavg();

  const dir = await Deno.makeTempDir({ prefix: "spike-startup-bench-" });
  const stacks: BenchStack[] = [];
  const clients: ReturnType<typeof superuserClient>[] = [];
  try {
    const ids = await mintBenchIdentities(dir);
    log("startup_bench: starting our stack");
    const ours = await startOurStack(dir, ids, baselineRoot ? { baselineRoot } : {});
    stacks.push(ours);
    let go: BenchStack | undefined;
    if (bins) {
      log("startup_bench: starting SPIKE's Go stack");
      go = await startSpikeGoStack(dir, ids, bins);
      stacks.push(go);
    } else {
      log("startup_bench: SPIKE_GO_BIN is not set: SPIKE's Go stack is skipped");
    }
    const nexusOf = new Map<BenchStack, NexusClient>();
    for (const stack of stacks) {
      const transport = superuserClient(ids.byName.get("pilot-superuser")!, 2000);
      clients.push(transport);
      const client = new NexusClient(stack.nexusUrl, transport);
      transports.set(client, transport);
      nexusOf.set(stack, client);
    }
    for (const [stack, nexus] of nexusOf) {
      log(`startup_bench: seeding ${LIST_PATHS} paths for \`secret list\` (${stack.kind})`);
      await seedSecrets(nexus, LIST_PATHS, (i) => `bench/list-${i}`);
    }
    const keeperClient = createMtlsClient({
      identity: createStaticSource(ids.byName.get("nexus")!),
      serverId: (id) => isKeeper(id),
      timeoutMs: 2000,
    });
    clients.push(keeperClient);

    const empty = join(dir, "empty.ts");
    await Deno.writeTextFile(empty, "");
    const run = spikeRunArgs();
    const floorArgs = [...run.slice(0, -1), empty];

    const samples: Samples = new Map();
    const phases = new Map<string, number[]>();
    const baselinePhases = new Map<string, number[]>();
    const keep = (target: Map<string, number[]>, process: BenchProcess) => {
      for (const [phase, ms] of phasesOf(process)) record(target, phase, ms);
    };

    // One untimed pass: fills Deno's caches (module graph, V8 code cache) as any second run would have.
    log("startup_bench: warm-up");
    await timeCommand(Deno.execPath(), [...run, "version"], {});
    const oursCli = ours.cli(["secret", "get", BENCH_SECRET]);
    await timeCommand(oursCli.executable, oursCli.args, oursCli.env);
    // Our variants besides the current tree: V8's code cache off, and the baseline tree when given.
    const variants: RunVariant[] = ["no-code-cache", ...(baselineRoot ? ["baseline" as const] : [])];
    for (const variant of variants) {
      const b = ours.cli(["secret", "get", BENCH_SECRET], variant);
      await timeCommand(b.executable, b.args, b.env);
      await restartToReady(ours, nexusOf.get(ours)!, "secret get", variant);
    }
    await restartToReady(ours, nexusOf.get(ours)!, "secret get");

    for (let round = 1; round <= rounds; round++) {
      log(`startup_bench: round ${round}/${rounds}`);
      record(samples, "floor", await timeCommand(Deno.execPath(), floorArgs, {}));
      record(samples, "version", await timeCommand(Deno.execPath(), [...run, "version"], {}));
      record(samples, "help", await timeCommand(Deno.execPath(), [...run, "--help"], {}));
      // Which stack goes first alternates, so neither always follows the other's load.
      const order = round % 2 === 0 ? [...stacks].reverse() : stacks;
      for (const stack of order) {
        const cli = stack.cli(["secret", "get", BENCH_SECRET]);
        record(samples, `cli|${stack.kind}`, await timeCommand(cli.executable, cli.args, cli.env));
        const list = stack.cli(["secret", "list"]);
        record(samples, `cli-list|${stack.kind}`, await timeCommand(list.executable, list.args, list.env));
        if (stack.kind === "ours") {
          for (const variant of variants) {
            const b = stack.cli(["secret", "get", BENCH_SECRET], variant);
            record(samples, `cli|${variant}`, await timeCommand(b.executable, b.args, b.env));
          }
        }
        const keeper = await keeperColdStart(stack, keeperClient);
        record(samples, `keeper|${stack.kind}`, keeper.ms);
        record(samples, `keeper-cpu|${stack.kind}`, keeper.cpuMs);
        const read = await restartToReady(stack, nexusOf.get(stack)!, "secret get");
        record(samples, `restart-get|${stack.kind}`, read.ms);
        record(samples, `restart-cpu|${stack.kind}`, read.cpuMs);
        if (stack.kind === "ours") {
          keep(phases, read.process);
          const ready = await restartToReady(stack, nexusOf.get(stack)!, "/ready");
          record(samples, "restart-ready|ours", ready.ms);
          keep(phases, ready.process);
          for (const variant of variants) {
            const b = await restartToReady(stack, nexusOf.get(stack)!, "secret get", variant);
            record(samples, `restart-get|${variant}`, b.ms);
            record(samples, `restart-cpu|${variant}`, b.cpuMs);
            if (variant === "baseline") keep(baselinePhases, b.process);
          }
        }
      }
    }
    log("startup_bench: module load costs");
    const probe = join(dir, "import_probe.ts");
    await Deno.writeTextFile(probe, IMPORT_PROBE);
    const probeRounds = Math.max(3, Math.min(rounds, 7));
    const moduleRows: string[][] = [];
    for (const [label, specifier] of PROBED_MODULES) {
      const current = await probeImport(probe, REPO_ROOT, specifier, probeRounds);
      const before = baselineRoot && (specifier.startsWith("cmd/") || specifier.startsWith("lib/"))
        ? await probeImport(probe, baselineRoot, specifier, probeRounds)
        : undefined;
      moduleRows.push([
        label,
        formatNumber(current.importMs, 1),
        formatNumber(current.cpuMs, 1),
        before ? formatNumber(before.importMs, 1) : "",
        before ? formatNumber(before.cpuMs, 1) : "",
      ]);
    }
    log("startup_bench: first TLS connection");
    const tlsRows = await firstTlsConnectionRows(dir, ids.dirOf("nexus"), ids.dirOf("pilot-superuser"), probeRounds);
    const loadAfter = Deno.loadavg();
    console.log(report(samples, phases, baselinePhases, rounds, go !== undefined, baselineRoot, loadBefore, loadAfter));
    console.log(
      [
        "",
        `Module load costs: a fresh \`deno run\` imports one module (median of ${probeRounds}); "import ms" is the ` +
        'import alone, "process CPU ms" the whole process\'s CPU time (all threads) after it, runtime start included.',
        "",
        markdownTable(
          [
            "module",
            "import ms",
            "process CPU ms",
            baselineRoot ? "baseline import ms" : "baseline import ms (no --baseline)",
            "baseline process CPU ms",
          ],
          moduleRows,
          ["left", "right", "right", "right", "right"],
        ),
        "",
        `A process's first TLS connection: a fresh process loads node:tls and node:fs and makes one mTLS ` +
        `connection to a local server, or makes none (median of ${probeRounds}, process CPU ms, all threads):`,
        "",
        markdownTable(["runtime", "no connection", "one mTLS connection", "the connection costs"], tlsRows, [
          "left",
          "right",
          "right",
          "right",
        ]),
      ].join("\n"),
    );
  } finally {
    for (const client of clients) client.close();
    for (const stack of stacks) await stack.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Rows of the first-TLS-connection table: Deno (and Node when installed)
 * with and without one connection to a `node:tls` server in this process.
 */
async function firstTlsConnectionRows(
  dir: string,
  serverSvid: string,
  clientSvid: string,
  rounds: number,
): Promise<string[][]> {
  const server = await startHandshakeServer(serverSvid);
  const port = server.port;
  try {
    const denoProbe = join(dir, "tls_probe.ts");
    const nodeProbe = join(dir, "tls_probe.mjs");
    await Deno.writeTextFile(denoProbe, TLS_PROBE_DENO);
    await Deno.writeTextFile(nodeProbe, TLS_PROBE_NODE);
    const rows: string[][] = [];
    const row = async (name: string, command: string, prefix: string[]) => {
      const idle = await probeCpu(command, [...prefix, clientSvid, String(port), "none"], rounds);
      const connect = await probeCpu(command, [...prefix, clientSvid, String(port), "connect"], rounds);
      rows.push([name, formatNumber(idle, 1), formatNumber(connect, 1), formatNumber(connect - idle, 1)]);
    };
    await row(`deno ${Deno.version.deno}`, Deno.execPath(), ["run", "--allow-all", denoProbe]);
    if (await nodeAvailable()) await row("node (for comparison)", "node", [nodeProbe]);
    return rows;
  } finally {
    server.close();
  }
}

/** Median over rounds of `a[i] / b[i]`. */
function pairedRatio(a: readonly number[] | undefined, b: readonly number[] | undefined): number {
  if (!a || !b || a.length !== b.length) return NaN;
  return median(a.map((x, i) => x / b[i]!));
}

function cell(list: readonly number[] | undefined): string {
  return list ? formatNumber(median(list), 1) : "–";
}

function spread(list: readonly number[] | undefined): string {
  if (!list || list.length === 0) return "–";
  const sorted = [...list].sort((x, y) => x - y);
  return `${formatNumber(sorted[0]!, 0)}–${formatNumber(sorted.at(-1)!, 0)}`;
}

function report(
  samples: Samples,
  phases: Map<string, number[]>,
  baselinePhases: Map<string, number[]>,
  rounds: number,
  withGo: boolean,
  baselineRoot: string | undefined,
  loadBefore: number[],
  loadAfter: number[],
): string {
  const get = (key: string) => samples.get(key);
  const rows: string[][] = [];
  const row = (what: string, ours: string, go?: string, baseline?: string, noCache?: string) => {
    const o = get(ours);
    rows.push([
      what,
      cell(o),
      spread(o),
      go ? cell(get(go)) : "",
      go ? formatRatio(pairedRatio(o, get(go))) : "",
      baseline ? cell(get(baseline)) : "",
      baseline ? formatRatio(pairedRatio(o, get(baseline))) : "",
      noCache ? cell(get(noCache)) : "",
      noCache ? formatRatio(pairedRatio(o, get(noCache))) : "",
    ]);
  };
  row("`deno run` of an empty module (floor)", "floor");
  row("`spike version`", "version");
  row("`spike --help`", "help");
  row(
    "`spike secret get` (SVID files), spawn to exit",
    "cli|ours",
    withGo ? "cli|spike-go" : undefined,
    baselineRoot ? "cli|baseline" : undefined,
    "cli|no-code-cache",
  );
  row(
    `\`spike secret list\` (${formatNumber(LIST_PATHS + 1)} paths), spawn to exit`,
    "cli-list|ours",
    withGo ? "cli-list|spike-go" : undefined,
  );
  row("Keeper cold start to first answer", "keeper|ours", withGo ? "keeper|spike-go" : undefined);
  row("— its CPU time (all threads) until then", "keeper-cpu|ours", withGo ? "keeper-cpu|spike-go" : undefined);
  row(
    "Nexus restart (SIGKILL) to first secret read, 3 Keepers",
    "restart-get|ours",
    withGo ? "restart-get|spike-go" : undefined,
    baselineRoot ? "restart-get|baseline" : undefined,
    "restart-get|no-code-cache",
  );
  row(
    "— Nexus CPU time (all threads) until then",
    "restart-cpu|ours",
    withGo ? "restart-cpu|spike-go" : undefined,
    baselineRoot ? "restart-cpu|baseline" : undefined,
    "restart-cpu|no-code-cache",
  );
  row("Nexus restart (SIGKILL) to `/ready` 200", "restart-ready|ours");

  const out: string[] = [];
  out.push(
    `Start-up, ${rounds} interleaved round(s), median ms (range over rounds); ratios are medians of ` +
      `same-round ratios. Load average before: ${loadBefore.map((n) => formatNumber(n, 2)).join(" ")}, ` +
      `after: ${loadAfter.map((n) => formatNumber(n, 2)).join(" ")}.`,
    "",
    markdownTable(
      [
        "what",
        "ours ms",
        "ours range",
        withGo ? "SPIKE Go ms" : "SPIKE Go ms (SPIKE_GO_BIN unset)",
        "ours ÷ SPIKE",
        baselineRoot ? "baseline ms" : "baseline ms (no --baseline)",
        "ours ÷ baseline",
        "no code cache ms",
        "ours ÷ no code cache",
      ],
      rows,
      ["left", "right", "right", "right", "right", "right", "right", "right", "right"],
    ),
    "",
  );
  if (baselineRoot) out.push(`Baseline tree: ${baselineRoot}`, "");

  const phaseNames = [...phases.keys()];
  if (phaseNames.length > 0) {
    out.push(
      "Nexus start-up phases (ms since its runtime started, from `SPIKE_LOG_LEVEL=debug` marks; median over " +
        "restarts; the spawn-to-runtime gap is in the floor above):",
      "",
      markdownTable(
        ["phase", "ours ms", ...(baselineRoot ? ["baseline ms"] : [])],
        phaseNames.map((phase) => [
          phase,
          cell(phases.get(phase)),
          ...(baselineRoot ? [cell(baselinePhases.get(phase))] : []),
        ]),
        ["left", "right", "right"],
      ),
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  await main();
}
