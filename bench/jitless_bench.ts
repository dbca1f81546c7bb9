/**
 * What running V8 without its JIT (`--v8-flags=--jitless`, which is what
 * lets a process run under systemd's `MemoryDenyWriteExecute=yes`) costs
 * each role, on real `spike` processes over real mTLS:
 * - Keeper: start-up to listening, and a shard fetch by Nexus (`POST
 *   /v1/store/shard`), 4 in flight;
 * - Nexus (memory store): `secret put` and `secret get` by the Pilot
 *   superuser, 16 in flight;
 * - `spike bootstrap`: the whole one-shot run, process start to exit.
 *
 * The clients run in this process with the JIT on; only the server (or the
 * bootstrap process) changes. Each round starts a fresh Keeper and Nexus per
 * mode, the two modes back to back in alternating order; tables show medians
 * over rounds and the median of the per-round jitless/JIT ratios.
 *
 * Run: `deno run -A bench/jitless_bench.ts [--rounds N] [--requests N]`
 *
 * @module
 */
import { join } from "node:path";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { PATHS } from "../lib/api/paths.ts";
import { mintDevIdentities } from "../lib/dev/identities.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isKeeper, isNexus } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { freePort } from "../tests/support/ports.ts";
import { formatNumber, formatRatio, markdownTable, median, numberFlag, runBounded } from "./support.ts";

const ENTRY = new URL("../cmd/spike.ts", import.meta.url).pathname;
type Mode = "jit" | "jitless";

/** `spike <args>` as a child with the JIT on or off. */
function spawnSpike(args: string[], env: Record<string, string>, mode: Mode): Deno.ChildProcess {
  const v8 = mode === "jitless"
    ? "--enable-experimental-regexp-engine,--jitless"
    : "--enable-experimental-regexp-engine";
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", `--v8-flags=${v8}`, ENTRY, ...args],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Resolves once the child's stderr has a line matching `pattern` (keeps draining it after). */
async function waitForLine(child: Deno.ChildProcess, pattern: RegExp): Promise<void> {
  const decoder = new TextDecoder();
  const reader = child.stderr.getReader();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited before ${pattern}:\n${text}`);
    text += decoder.decode(value);
    if (pattern.test(text)) break;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  child.stdout.cancel();
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  await child.status;
}

interface RoundResult {
  keeperStartMs: number;
  shardPerSecond: number;
  putPerSecond: number;
  getPerSecond: number;
  bootstrapMs: number;
}

async function measure(dir: string, mode: Mode, requests: number): Promise<RoundResult> {
  const ids = await mintDevIdentities(dir, "spike.ist", 1);
  const keeperPort = freePort();
  const nexusPort = freePort();
  const shamir = {
    SPIKE_NEXUS_SHAMIR_SHARES: "1",
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "1",
    SPIKE_NEXUS_KEEPER_PEERS: `https://127.0.0.1:${keeperPort}`,
    SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
  };
  const t0 = performance.now();
  const keeper = spawnSpike(["keeper"], {
    SPIKE_SVID_DIR: ids.dirOf("keeper-1"),
    SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${keeperPort}`,
  }, mode);
  const nexus = spawnSpike(["nexus"], {
    ...shamir,
    SPIKE_SVID_DIR: ids.dirOf("nexus"),
    SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
    SPIKE_NEXUS_BACKEND_STORE: "memory",
  }, mode);
  const clients: MtlsClient[] = [];
  try {
    await waitForLine(keeper, /keeper listening/);
    const keeperStartMs = performance.now() - t0;
    await waitForLine(nexus, /nexus listening/);

    const b0 = performance.now();
    const boot = spawnSpike(["bootstrap"], { ...shamir, SPIKE_SVID_DIR: ids.dirOf("bootstrap") }, mode);
    const booted = await boot.output();
    if (!booted.success) throw new Error(`bootstrap failed: ${new TextDecoder().decode(booted.stderr)}`);
    const bootstrapMs = performance.now() - b0;

    const asNexus = createMtlsClient({
      identity: createStaticSource(ids.byName.get("nexus")!),
      serverId: (id) => isKeeper(id),
      timeoutMs: 30_000,
    });
    const asSuperuser = createMtlsClient({
      identity: createStaticSource(ids.byName.get("pilot-superuser")!),
      serverId: (id) => isNexus(id),
      timeoutMs: 30_000,
    });
    clients.push(asNexus, asSuperuser);
    const pilot = new NexusClient(shamir.SPIKE_NEXUS_API_URL, asSuperuser);
    // Nexus turns ready once it has rebuilt the key from the Keeper.
    for (let i = 0;; i++) {
      try {
        await pilot.putSecret("bench/warm", { v: "x" });
        break;
      } catch (error) {
        if (i > 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const shardUrl = `${shamir.SPIKE_NEXUS_KEEPER_PEERS}${PATHS.keeperShard}`;
    const shard = await runBounded(
      async () => {
        const response = await asNexus.post(shardUrl, "{}", { "content-type": "application/json" });
        if (response.status !== 200) throw new Error(`shard: ${response.status}`);
      },
      4,
      requests,
      10_000,
    );
    const put = await runBounded(
      (i) => pilot.putSecret(`bench/p${i % 100}`, { value: "v".repeat(64) }),
      16,
      requests,
      10_000,
    );
    const get = await runBounded((i) => pilot.getSecret(`bench/p${i % 100}`).then(() => {}), 16, requests, 10_000);
    for (const sample of [shard, put, get]) if (sample.errors > 0) throw new Error(sample.firstError);
    return {
      keeperStartMs,
      shardPerSecond: shard.perSecond,
      putPerSecond: put.perSecond,
      getPerSecond: get.perSecond,
      bootstrapMs,
    };
  } finally {
    for (const client of clients) client.close();
    await Promise.all([stop(keeper), stop(nexus)]);
  }
}

const rounds = numberFlag(Deno.args, "--rounds", 5, 1, 50);
const requests = numberFlag(Deno.args, "--requests", 2000, 50, 1_000_000);
const dir = await Deno.makeTempDir({ prefix: "spike_jitless_bench_" });
const results: Record<Mode, RoundResult[]> = { jit: [], jitless: [] };
try {
  for (let round = 0; round < rounds; round++) {
    const order: Mode[] = round % 2 === 0 ? ["jit", "jitless"] : ["jitless", "jit"];
    for (const mode of order) results[mode].push(await measure(join(dir, `${round}-${mode}`), mode, requests));
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

const rows: Array<[string, keyof RoundResult, string, number]> = [
  ["Keeper start to listening", "keeperStartMs", "ms", 0],
  ["Keeper shard fetch, 4 in flight", "shardPerSecond", "req/s", 0],
  ["Nexus secret put, 16 in flight", "putPerSecond", "req/s", 0],
  ["Nexus secret get, 16 in flight", "getPerSecond", "req/s", 0],
  ["spike bootstrap, whole run", "bootstrapMs", "ms", 0],
];
console.log(`## V8 without its JIT (\`bench/jitless_bench.ts\`, ${rounds} rounds, ≤ ${requests} requests per cell)\n`);
console.log(markdownTable(
  ["measure", "JIT", "--jitless", "jitless / JIT"],
  rows.map(([label, key, unit, digits]) => [
    label,
    `${formatNumber(median(results.jit.map((r) => r[key])), digits)} ${unit}`,
    `${formatNumber(median(results.jitless.map((r) => r[key])), digits)} ${unit}`,
    formatRatio(median(results.jit.map((r, i) => results.jitless[i]![key] / r[key]))),
  ]),
  ["left", "right", "right", "right"],
));
