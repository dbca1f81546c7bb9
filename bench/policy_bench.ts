/**
 * Policy checks at scale: the policy-authorized `secret get` over real
 * mutual TLS against Nexus instances holding 1, 1,000 and 10,000 policies,
 * measured in the same run, plus what the compiled policy set of 10,000
 * policies costs to build and to keep.
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/policy_bench.ts [--quick]`
 *
 * Three Nexus instances run side by side in this process, one per policy
 * count, each on its own SQLite store in a temporary directory (WAL,
 * `synchronous=FULL`, the production default) or, with `--store memory`,
 * on the memory store. The policies are written into the store before
 * Nexus starts (through the SQLite worker store, whose group commit makes
 * 10,000 writes take a fraction of a second); their shapes, per 100:
 *
 * - 89 anchored literals, `^spiffe://spike\.ist/team-N/.*$` on `^team-N/`
 *   (read, write): string comparisons, indexed by both prefixes;
 * - 9 anchored regexes, `^spiffe://spike\.ist/team-N/(web|db)$` on
 *   `^team-N/[a-z-]+$` (read): indexed, tested with the regex engine;
 * - 1 unanchored, `spiffe://spike\.ist/team-N/(web|db)$` on `(^|/)team-N/`
 *   (read): no prefix on either side, so every request considers it (an
 *   `includes` of the text its regex needs rules it out);
 * - 1 with top-level alternation, `^spiffe://…/team-N/web$|^spiffe://…/team-N/db$`
 *   on `^team-N/web/|^team-N/db/` (read): indexed by what its branches'
 *   prefixes share;
 *
 * and, last by name, the one policy that grants the benchmark workload
 * (`spiffe://spike.ist/app/bench`) `read` on `^bench/`.
 *
 * Measured, at 1 and 8 requests in flight, rounds interleaved (every cell of
 * round 1, then of round 2, ...; the order of the instances alternates):
 * the workload's `secret get` on each instance, and the superuser's on the
 * largest (no policy check: the ceiling). Tables show medians over rounds;
 * ratios are medians of per-round ratios. Every cell is bounded by a request
 * count and by wall time.
 *
 * Then, on the largest instance: the latency of the first policy-checked
 * request after a policy change through the API (it reads the list again
 * and rebuilds the set), and, in-process, the time to build the compiled
 * set from the 10,000 stored records (fresh, and from the previous set
 * after one policy changed) and the heap it holds after a full GC.
 *
 * Client and server share this process and its event loop, so the numbers
 * include the client's own TLS and JSON work.
 *
 * @module
 */

import { join } from "node:path";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { CompiledPolicySet } from "../lib/nexus/compiled_policy_set.ts";
import { installRootKey } from "../lib/nexus/key_installer.ts";
import { policySealer } from "../lib/nexus/policy_seal.ts";
import { PolicySnapshot } from "../lib/nexus/policy_snapshot.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { type RunningNexus, startNexus } from "../lib/nexus/server.ts";
import { createDevCa } from "../lib/spiffe/dev_ca.ts";
import type { X509Identity } from "../lib/spiffe/identity.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { createMemoryStore } from "../lib/store/memory_store.ts";
import { createSqliteStore } from "../lib/store/sqlite_store.ts";
import { createSqliteWorkerStore } from "../lib/store/sqlite_worker_store.ts";
import type { PolicyRecord, Store } from "../lib/store/types.ts";
import {
  exposeGc,
  formatBytes,
  formatNumber,
  formatRatio,
  hasFlag,
  markdownTable,
  median,
  numberFlag,
  type Operation,
  runBounded,
  type Sample,
} from "./support.ts";

/** Bounds and sizes of one run. */
export interface PolicyBenchSettings {
  /** Measured rounds (one short untimed warm-up round runs first). */
  readonly rounds: number;
  /** Most requests per cell and round. */
  readonly maxRequests: number;
  /** Most wall time per cell and round, in ms. */
  readonly maxMs: number;
  /** Policies of the largest instance; the middle one holds a tenth of them. */
  readonly policies: number;
  /** Policy changes timed through the API, and in-process builds timed. */
  readonly changes: number;
  /** The store every instance uses. */
  readonly store: "sqlite" | "memory";
}

/** Default run: about a minute on an idle 2-core machine. */
export const FULL: PolicyBenchSettings = Object.freeze({
  rounds: 5,
  maxRequests: 2000,
  maxMs: 1000,
  policies: 10_000,
  changes: 15,
  store: "sqlite",
});

/** `--quick`: one short round, to check the bench works (numbers are rough). */
export const QUICK: PolicyBenchSettings = Object.freeze({
  rounds: 1,
  maxRequests: 300,
  maxMs: 300,
  policies: 10_000,
  changes: 3,
  store: "sqlite",
});

/** Reads the command line: `--quick`, then overrides of single settings. */
export function parseSettings(args: readonly string[]): PolicyBenchSettings {
  const base = hasFlag(args, "--quick") ? QUICK : FULL;
  let store: string = base.store;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--store") store = args[i + 1] ?? "";
    else if (args[i]!.startsWith("--store=")) store = args[i]!.slice("--store=".length);
  }
  if (store !== "sqlite" && store !== "memory") {
    throw new RangeError(`--store must be sqlite or memory, got '${store}'`);
  }
  return Object.freeze({
    rounds: numberFlag(args, "--rounds", base.rounds, 1, 50),
    maxRequests: numberFlag(args, "--requests", base.maxRequests, 10, 1_000_000),
    maxMs: numberFlag(args, "--seconds", base.maxMs / 1000, 0.1, 600) * 1000,
    policies: numberFlag(args, "--policies", base.policies, 10, 100_000),
    changes: numberFlag(args, "--changes", base.changes, 1, 200),
    store,
  });
}

const CONCURRENCY = [1, 8] as const;
const SECRET_PATHS = 100;
const WORKLOAD_ID = "spiffe://spike.ist/app/bench";

/** The identities every Nexus and client of one run use. */
interface Identities {
  readonly nexus: X509Identity;
  readonly superuser: X509Identity;
  readonly workload: X509Identity;
}

/** One Nexus with its policy count and two callers. */
interface Target {
  readonly policies: number;
  readonly nexus: RunningNexus;
  readonly transports: readonly MtlsClient[];
  readonly superuser: NexusClient;
  readonly workload: NexusClient;
}

function team(i: number): string {
  return String(i).padStart(5, "0");
}

/** Policy `i` of the filler mix described in the module comment. */
function fillerPolicy(i: number, at: Date): PolicyRecord {
  const base = { name: `filler-${team(i)}`, createdAt: at, updatedAt: at };
  const t = team(i);
  switch (i % 100) {
    case 7:
      return {
        ...base,
        spiffeIdPattern: `spiffe://spike\\.ist/team-${t}/(web|db)$`,
        pathPattern: `(^|/)team-${t}/`,
        permissions: ["read"],
      };
    case 57:
      return {
        ...base,
        spiffeIdPattern: `^spiffe://spike\\.ist/team-${t}/web$|^spiffe://spike\\.ist/team-${t}/db$`,
        pathPattern: `^team-${t}/web/|^team-${t}/db/`,
        permissions: ["read"],
      };
    case 1:
    case 12:
    case 23:
    case 34:
    case 45:
    case 56:
    case 67:
    case 78:
    case 89:
      return {
        ...base,
        spiffeIdPattern: `^spiffe://spike\\.ist/team-${t}/(web|db)$`,
        pathPattern: `^team-${t}/[a-z-]+$`,
        permissions: ["read"],
      };
    default:
      return {
        ...base,
        spiffeIdPattern: `^spiffe://spike\\.ist/team-${t}/.*$`,
        pathPattern: `^team-${t}/`,
        permissions: ["read", "write"],
      };
  }
}

/** The policy granting the benchmark workload; its name sorts after every filler. */
function grantingPolicy(at: Date): PolicyRecord {
  return {
    name: "zz-bench-read",
    spiffeIdPattern: "^spiffe://spike\\.ist/app/bench$",
    pathPattern: "^bench/",
    permissions: ["read"],
    createdAt: at,
    updatedAt: at,
  };
}

/** `count` policies: `count - 1` fillers and the granting one. */
function policySet(count: number): PolicyRecord[] {
  const at = new Date();
  return [...Array.from({ length: count - 1 }, (_, i) => fillerPolicy(i, at)), grantingPolicy(at)];
}

/** Seals `records` as Nexus does and writes them into `store`, 500 at a time (group commit on the worker store). */
async function seedPolicies(store: Store, records: readonly PolicyRecord[], rootKey: Uint8Array): Promise<void> {
  const seal = await policySealer(rootKey, 1, systemRandom);
  for (let from = 0; from < records.length; from += 500) {
    const sealed = await Promise.all(records.slice(from, from + 500).map(seal));
    await Promise.all(sealed.map((policy) => store.upsertPolicy(policy)));
  }
}

async function openStore(
  settings: PolicyBenchSettings,
  dataDir: string,
  count: number,
  rootKey: Uint8Array,
): Promise<Store> {
  const records = policySet(count);
  if (settings.store === "memory") {
    const store = createMemoryStore();
    await seedPolicies(store, records, rootKey);
    return store;
  }
  const seeder = createSqliteWorkerStore({ dataDir });
  try {
    await seedPolicies(seeder, records, rootKey);
  } finally {
    await seeder.close();
  }
  return createSqliteStore({ dataDir });
}

function clientFor(identity: X509Identity): MtlsClient {
  return createMtlsClient({ identity: createStaticSource(identity), serverId: (id) => isNexus(id), timeoutMs: 30_000 });
}

async function startTarget(
  count: number,
  ids: Identities,
  dir: string,
  settings: PolicyBenchSettings,
): Promise<Target> {
  const dataDir = join(dir, `data-${count}`);
  const rootKey = crypto.getRandomValues(new Uint8Array(32));
  // Keep it below the P-256 group order, like a key Bootstrap would make.
  rootKey[0] = rootKey[0]! & 0x7f;
  const store = await openStore(settings, dataDir, count, rootKey);
  const config = resolveNexusConfig({
    HOME: dir,
    SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
    SPIKE_NEXUS_BACKEND_STORE: settings.store,
    SPIKE_NEXUS_DATA_DIR: dataDir,
    SPIKE_NEXUS_KEEPER_PEERS: "",
    // The audit trail costs what it costs in production: a line appended to a file per request.
    SPIKE_NEXUS_AUDIT_LOG: join(dir, `audit-${count}.log`),
  });
  const nexus = await startNexus({ config, identity: createStaticSource(ids.nexus), log: silentLogger, store });
  try {
    if (await installRootKey(nexus.deps, rootKey) !== "installed") throw new Error("root key was refused");
  } finally {
    rootKey.fill(0);
  }
  const url = `https://127.0.0.1:${nexus.port}`;
  const superuserTransport = clientFor(ids.superuser);
  const workloadTransport = clientFor(ids.workload);
  const target: Target = {
    policies: count,
    nexus,
    transports: [superuserTransport, workloadTransport],
    superuser: new NexusClient(url, superuserTransport),
    workload: new NexusClient(url, workloadTransport),
  };
  for (let i = 0; i < SECRET_PATHS; i++) await target.superuser.putSecret(secretPath(i), { serial: String(i) });
  const listed = (await target.superuser.listPolicies()).length;
  if (listed !== count) throw new Error(`Nexus with ${count} policies lists ${listed}`);
  return target;
}

function secretPath(i: number): string {
  return `bench/service-${i % SECRET_PATHS}`;
}

function readAs(client: NexusClient): Operation {
  return async (i) => {
    const values = await client.getSecret(secretPath(i));
    if (values.serial !== String(i % SECRET_PATHS)) throw new Error("secret get returned unexpected values");
  };
}

/** Measures one cell after an untimed burst that opens the connections it needs. */
async function measure(op: Operation, concurrency: number, maxRequests: number, maxMs: number): Promise<Sample> {
  await runBounded(op, concurrency, concurrency * 2, maxMs);
  return await runBounded(op, concurrency, maxRequests, maxMs);
}

type Samples = Map<string, Sample[]>;

function cellKey(...parts: (string | number)[]): string {
  return parts.join("|");
}

async function runRound(
  targets: readonly Target[],
  settings: PolicyBenchSettings,
  round: number,
  samples: Samples | undefined,
  log: (line: string) => void,
): Promise<void> {
  const maxRequests = samples ? settings.maxRequests : Math.min(settings.maxRequests, 100);
  const maxMs = samples ? settings.maxMs : Math.min(settings.maxMs, 300);
  const order = round % 2 === 0 ? targets : [...targets].reverse();
  const largest = targets[targets.length - 1]!;
  for (const concurrency of CONCURRENCY) {
    for (const target of order) {
      const cells: Array<[string, NexusClient]> = [["policy", target.workload]];
      if (target === largest) cells.push(["superuser", target.superuser]);
      for (const [caller, client] of cells) {
        const sample = await measure(readAs(client), concurrency, maxRequests, maxMs);
        if (samples) {
          const key = cellKey(caller, target.policies, concurrency);
          samples.set(key, [...(samples.get(key) ?? []), sample]);
        }
        if (sample.errors > 0) {
          log(`  ${caller} ${target.policies} c=${concurrency}: ${sample.errors} errors (${sample.firstError})`);
        }
      }
    }
  }
}

/**
 * The latency of the first policy-checked request after each of `changes`
 * policy updates through the API (it reads the list and rebuilds the set),
 * in ms. Each change rewrites one filler policy's path pattern.
 */
async function timeChanges(target: Target, changes: number): Promise<number[]> {
  const latencies: number[] = [];
  const read = readAs(target.workload);
  for (let n = 0; n < changes; n++) {
    const i = (n * 7_919) % Math.max(1, target.policies - 1);
    await target.superuser.putPolicy({
      name: `filler-${team(i)}`,
      spiffeidPattern: `^spiffe://spike\\.ist/team-${team(i)}/.*$`,
      pathPattern: `^team-${team(i)}/v${n}/`,
      permissions: ["read", "write"],
    });
    const t0 = performance.now();
    await read(n);
    latencies.push(performance.now() - t0);
    await read(n + 1); // settled again: the next change starts from a built set
  }
  return latencies;
}

/** Build times and heap of the compiled set of one store's policies. */
interface BuildCost {
  readonly policies: number;
  /** Fresh builds (no previous set), ms. */
  readonly fresh: readonly number[];
  /** Builds from the previous set after one policy changed, ms. */
  readonly incremental: readonly number[];
  /** Opening every sealed row with a fresh snapshot (list read, decryption, compilation), ms. */
  readonly opens: readonly number[];
  /** Heap held by the records read from the store, bytes. */
  readonly recordsHeap: number;
  /** Heap held by the compiled set on top of its records, bytes. */
  readonly setHeap: number;
  /** RSS before reading the records and after building the set, bytes. */
  readonly rssBefore: number;
  readonly rssAfter: number;
}

/**
 * Opens the stored policies of `nexus` with fresh snapshots (what a Nexus
 * does on start: read, decrypt, compile every row), then builds compiled
 * sets from the opened records in-process, as the policy snapshot does,
 * with a full GC before each heap reading. The set is measured after each
 * policy's patterns ran once (a regex's code is generated on its first use).
 */
async function measureBuild(nexus: RunningNexus, builds: number): Promise<BuildCost> {
  const store = nexus.deps.store!;
  const opens: number[] = [];
  for (let n = 0; n < builds; n++) {
    const t0 = performance.now();
    await new PolicySnapshot({ log: silentLogger, keys: nexus.deps.keys }).generation(store);
    opens.push(performance.now() - t0);
  }
  const gc = exposeGc();
  gc();
  const rssBefore = Deno.memoryUsage().rss;
  const heap0 = Deno.memoryUsage().heapUsed;
  const records = (await new PolicySnapshot({ log: silentLogger, keys: nexus.deps.keys }).generation(store)).authentic;
  gc();
  const heap1 = Deno.memoryUsage().heapUsed;
  const fresh: number[] = [];
  let set: CompiledPolicySet | undefined;
  for (let n = 0; n < builds; n++) {
    set = undefined;
    const t0 = performance.now();
    set = new CompiledPolicySet(records);
    fresh.push(performance.now() - t0);
  }
  for (let i = 0; i < records.length; i++) {
    set!.grants(`spiffe://spike.ist/team-${team(i)}/web`, `team-${team(i)}/db`, ["read"], { strict: false });
  }
  gc();
  const heap2 = Deno.memoryUsage().heapUsed;
  const rssAfter = Deno.memoryUsage().rss;
  const incremental: number[] = [];
  for (let n = 0; n < builds; n++) {
    const changed = records.map((r, i) => i === n ? { ...r, pathPattern: `${r.pathPattern}v${n}/` } : r);
    const t0 = performance.now();
    const next = new CompiledPolicySet(changed, set);
    incremental.push(performance.now() - t0);
    if (next.size !== set!.size) throw new Error("incremental build lost policies");
  }
  return {
    policies: records.length,
    opens,
    fresh,
    incremental,
    recordsHeap: heap1 - heap0,
    setHeap: heap2 - heap1,
    rssBefore,
    rssAfter,
  };
}

function med(list: readonly Sample[], field: "perSecond" | "p50" | "p90" | "p99"): number {
  return median(list.map((s) => s[field]));
}

/** Median over rounds of `a / b` req/s, pairing samples of the same round. */
function pairedRatio(a: readonly Sample[], b: readonly Sample[]): number {
  return median(a.map((s, i) => s.perSecond / b[i]!.perSecond));
}

/** The target the issue sets: 10,000 policies at no less than half the 1-policy rate. */
const RATIO_TARGET = 0.5;

function report(
  samples: Samples,
  targets: readonly Target[],
  settings: PolicyBenchSettings,
  changes: readonly number[],
  build: BuildCost,
): string {
  const get = (...parts: (string | number)[]) => samples.get(cellKey(...parts))!;
  const smallest = targets[0]!;
  const largest = targets[targets.length - 1]!;
  const out: string[] = [];
  const rows: string[][] = [];
  for (const c of CONCURRENCY) {
    for (const target of targets) {
      const list = get("policy", target.policies, c);
      rows.push([
        "workload (policy)",
        formatNumber(target.policies),
        String(c),
        formatNumber(list.reduce((n, s) => n + s.requests, 0)),
        formatNumber(med(list, "perSecond")),
        formatNumber(med(list, "p50"), 2),
        formatNumber(med(list, "p90"), 2),
        formatNumber(med(list, "p99"), 2),
        formatNumber(list.reduce((n, s) => n + s.errors, 0)),
        formatRatio(pairedRatio(list, get("policy", smallest.policies, c))),
      ]);
    }
    const ceiling = get("superuser", largest.policies, c);
    rows.push([
      "superuser (no check)",
      formatNumber(largest.policies),
      String(c),
      formatNumber(ceiling.reduce((n, s) => n + s.requests, 0)),
      formatNumber(med(ceiling, "perSecond")),
      formatNumber(med(ceiling, "p50"), 2),
      formatNumber(med(ceiling, "p90"), 2),
      formatNumber(med(ceiling, "p99"), 2),
      formatNumber(ceiling.reduce((n, s) => n + s.errors, 0)),
      formatRatio(pairedRatio(ceiling, get("policy", smallest.policies, c))),
    ]);
  }
  out.push(
    `Policy-authorized \`secret get\` over mTLS, ${settings.store} store, ${settings.rounds} round(s) (median), ` +
      `each cell ≤ ${settings.maxRequests} requests and ≤ ${formatNumber(settings.maxMs / 1000, 1)} s per round; ` +
      `"÷ 1 policy" is the median of per-round req/s ratios against the 1-policy instance.`,
    "",
    markdownTable(
      ["caller", "policies", "in flight", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "÷ 1 policy"],
      rows,
      ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
    ),
    "",
  );
  for (const c of CONCURRENCY) {
    const ratio = pairedRatio(get("policy", largest.policies, c), get("policy", smallest.policies, c));
    out.push(
      `- ${formatNumber(largest.policies)} ÷ 1 policy, ${c} in flight: ${formatRatio(ratio)} ` +
        `(target ≥ ${formatRatio(RATIO_TARGET)}: ${ratio >= RATIO_TARGET ? "met" : "**missed**"})`,
    );
  }
  const settled = med(get("policy", largest.policies, 1), "p50");
  out.push(
    "",
    `First policy-checked request after a policy change through the API, ${formatNumber(largest.policies)} policies ` +
      `(${changes.length} changes; list read + rebuild): median ${formatNumber(median(changes), 1)} ms, ` +
      `max ${formatNumber(Math.max(...changes), 1)} ms (a settled request: p50 ${formatNumber(settled, 2)} ms).`,
    "",
    `Compiled set of the ${formatNumber(build.policies)} stored policies, built in-process as the snapshot does ` +
      `(${build.fresh.length} builds each):`,
    "",
    markdownTable(
      ["measure", "value"],
      [
        [
          "first build of a Nexus: list read, every sealed row opened, compiled (median)",
          `${formatNumber(median(build.opens), 1)} ms`,
        ],
        ["fresh build of the compiled set from opened records (median)", `${formatNumber(median(build.fresh), 1)} ms`],
        [
          "fresh build (min … max)",
          `${formatNumber(Math.min(...build.fresh), 1)} … ${formatNumber(Math.max(...build.fresh), 1)} ms`,
        ],
        ["rebuild after one policy changed (median)", `${formatNumber(median(build.incremental), 1)} ms`],
        ["heap: policy records as opened", formatBytes(build.recordsHeap)],
        ["heap: compiled set on top of the records", formatBytes(build.setHeap)],
        ["heap per policy (records + set)", `${formatNumber((build.recordsHeap + build.setHeap) / build.policies)} B`],
        [
          "process RSS before reading → after building",
          `${formatBytes(build.rssBefore)} → ${formatBytes(build.rssAfter)}`,
        ],
      ],
      ["left", "right"],
    ),
  );
  return out.join("\n");
}

async function main(): Promise<void> {
  const settings = parseSettings(Deno.args);
  const log = (line: string) => console.error(line);
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "spike-policy-bench-" });
  const targets: Target[] = [];
  try {
    const ca = await createDevCa();
    const [nexus, superuser, workload] = await Promise.all([
      ca.issue(spikeIdFor("nexus")),
      ca.issue(spikeIdFor("pilot_superuser")),
      ca.issue(WORKLOAD_ID),
    ]);
    const ids: Identities = { nexus: nexus!, superuser: superuser!, workload: workload! };
    for (const count of [1, Math.round(settings.policies / 10), settings.policies]) {
      log(`policy_bench: starting Nexus with ${count} policies`);
      targets.push(await startTarget(count, ids, dir, settings));
    }
    log("policy_bench: warm-up round");
    await runRound(targets, settings, 0, undefined, log);
    const samples: Samples = new Map();
    for (let round = 1; round <= settings.rounds; round++) {
      log(`policy_bench: round ${round}/${settings.rounds}`);
      await runRound(targets, settings, round, samples, log);
    }
    const largest = targets[targets.length - 1]!;
    log("policy_bench: policy changes");
    const changes = await timeChanges(largest, settings.changes);
    log("policy_bench: build and memory");
    const build = await measureBuild(largest.nexus, settings.changes);
    console.log(
      `deno ${Deno.version.deno}, v8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}, ` +
        `${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log(report(samples, targets, settings, changes, build));
    log(`policy_bench: done in ${formatNumber((performance.now() - started) / 1000, 1)} s`);
  } finally {
    for (const target of targets) {
      for (const transport of target.transports) transport.close();
      await target.nexus.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
}
