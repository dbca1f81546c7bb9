/**
 * End-to-end Nexus API benchmark: a real Nexus in this process, served over
 * real mutual TLS on 127.0.0.1, called through the same `NexusClient` +
 * mTLS client the CLI uses.
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/nexus_api_bench.ts [--quick]`
 *
 * Four Nexus instances run side by side, each with a random root key
 * installed: `sqlite`, the in-thread SQLite store (`createSqliteStore`,
 * every commit on the event loop); `worker-sqlite`, the SQLite store whose
 * commits run in a worker, in groups (`createSqliteWorkerStore`);
 * `postgres`, on a throwaway PostgreSQL cluster the bench starts on loopback
 * (`initdb`, as for the tests, but with `fsync`, `synchronous_commit` and
 * `full_page_writes` on, as in production; TLS off); and `memory`. Both
 * SQLite stores use a temporary directory and `synchronous=FULL`, as in
 * production. Each Nexus appends its audit trail to a file in that
 * directory, as a production Nexus would. Two identities call
 * them, both minted by a development CA: the Pilot superuser (policy checks
 * skipped) and a workload that is granted `read` on `bench/` by the last of
 * `--policies` policies (so a policy read lists every policy from the store
 * and tests the regexes of each).
 *
 * Measured, at 1 and 16 requests in flight:
 * - `secret put`: a new version of one of 100 paths (10 versions kept)
 * - `secret get`: the current version of one of those paths
 * - `secret get (policy)`: the same read by the policy-authorized workload
 * - `cipher encrypt 1 KiB`: octet-stream mode
 * - `health`: `GET /health`, the cheapest request the server answers
 *
 * plus, with the same bounds:
 * - `GET /health` one at a time while 15 callers put secrets (how writes,
 *   and SQLite's synchronous commits, delay everyone else);
 * - `GET /health` over a kept-alive connection against a new client per
 *   request (a new TLS handshake, both sides presenting and checking an SVID);
 * - after the main rounds, `secret get` by the workload and the superuser
 *   once the stores hold `--many-policies` policies (policy scaling);
 * - a bare 4 KiB write + fdatasync next to the SQLite file (the disk's floor).
 *
 * Every cell is bounded by a request count and by wall time. Rounds are
 * interleaved (every cell of round 1, then every cell of round 2, ...) and the
 * tables show medians over rounds; ratios are medians of per-round ratios,
 * so the two sides of a ratio always ran seconds apart. Client and server
 * share this process and its event loop, so the numbers include the
 * client's own TLS and JSON work.
 *
 * @module
 */

import { join } from "node:path";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { installRootKey } from "../lib/nexus/key_installer.ts";
import { createPostgresStore } from "../lib/store/postgres_store.ts";
import { createSqliteStore } from "../lib/store/sqlite_store.ts";
import {
  createSqliteWorkerStore,
  type SqliteWorkerStats,
  type SqliteWorkerStore,
} from "../lib/store/sqlite_worker_store.ts";
import type { Store } from "../lib/store/types.ts";
import { type RunningNexus, startNexus } from "../lib/nexus/server.ts";
import { createDevCa } from "../lib/spiffe/dev_ca.ts";
import type { X509Identity } from "../lib/spiffe/identity.ts";
import { startPostgresCluster } from "../tests/support/postgres_cluster.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import {
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

/** Bounds and sizes of one benchmark run. */
export interface BenchSettings {
  /** Measured rounds (one untimed warm-up round runs first). */
  readonly rounds: number;
  /** Most requests per cell and round. */
  readonly maxRequests: number;
  /** Most wall time per cell and round, in ms. */
  readonly maxMs: number;
  /** Most requests per handshake cell and round. */
  readonly handshakeRequests: number;
  /** Policies in the store; the last one (by name) grants the workload. */
  readonly policies: number;
  /** Policies for the second phase (policy scaling); not more than `policies` skips it. */
  readonly manyPolicies: number;
  /** Rounds of the second phase. */
  readonly manyPolicyRounds: number;
}

/** Default run: about 1.5 minutes on an idle 2-core machine, under 3 when it is busy. */
export const FULL: BenchSettings = Object.freeze({
  rounds: 5,
  maxRequests: 2000,
  maxMs: 1000,
  handshakeRequests: 300,
  policies: 10,
  manyPolicies: 1000,
  manyPolicyRounds: 3,
});

/** `--quick`: one short round, to check the bench works (numbers are rough). */
export const QUICK: BenchSettings = Object.freeze({
  rounds: 1,
  maxRequests: 300,
  maxMs: 400,
  handshakeRequests: 60,
  policies: 10,
  manyPolicies: 200,
  manyPolicyRounds: 1,
});

/** Reads the command line: `--quick`, then overrides of single settings. */
export function parseSettings(args: readonly string[]): BenchSettings {
  const base = hasFlag(args, "--quick") ? QUICK : FULL;
  return Object.freeze({
    rounds: numberFlag(args, "--rounds", base.rounds, 1, 50),
    maxRequests: numberFlag(args, "--requests", base.maxRequests, 10, 1_000_000),
    maxMs: numberFlag(args, "--seconds", base.maxMs / 1000, 0.1, 600) * 1000,
    handshakeRequests: numberFlag(args, "--handshakes", base.handshakeRequests, 10, 100_000),
    policies: numberFlag(args, "--policies", base.policies, 1, 10_000),
    manyPolicies: numberFlag(args, "--many-policies", base.manyPolicies, 0, 10_000),
    manyPolicyRounds: numberFlag(args, "--many-policy-rounds", base.manyPolicyRounds, 1, 50),
  });
}

const STORES = ["sqlite", "worker-sqlite", "postgres", "memory"] as const;
type StoreKind = typeof STORES[number];
const CONCURRENCY = [1, 16] as const;
const OPS = ["secret put", "secret get", "secret get (policy)", "cipher encrypt 1 KiB", "health"] as const;
type OpName = typeof OPS[number];
const HANDSHAKE_MODES = ["keep-alive (reused client)", "new client + TLS handshake"] as const;
type HandshakeMode = typeof HANDSHAKE_MODES[number];

const SECRET_PATHS = 100;
const WORKLOAD_ID = "spiffe://spike.ist/app/bench";
const PAYLOAD_BYTES = 1024;
/** Octet-stream output: 1 format byte, 12 nonce bytes, ciphertext, 16 tag bytes. */
const SEALED_BYTES = 1 + 12 + PAYLOAD_BYTES + 16;

/** A Nexus under test with its two callers. */
interface Target {
  readonly kind: StoreKind;
  readonly nexus: RunningNexus;
  readonly baseUrl: string;
  readonly superuserTransport: MtlsClient;
  readonly superuser: NexusClient;
  readonly workloadTransport: MtlsClient;
  readonly workload: NexusClient;
  /** The worker store, when `kind` is `worker-sqlite` (for its group-commit counters). */
  readonly workerStore: SqliteWorkerStore | undefined;
  /** Writes and commits of the worker store per measured cell, summed over rounds. */
  readonly groups: Map<string, SqliteWorkerStats>;
}

/** The identities every Nexus and client of one run use. */
interface Identities {
  readonly nexus: X509Identity;
  readonly superuser: X509Identity;
  readonly workload: X509Identity;
}

async function makeIdentities(): Promise<Identities> {
  const ca = await createDevCa();
  const [nexus, superuser, workload] = await Promise.all([
    ca.issue(spikeIdFor("nexus")),
    ca.issue(spikeIdFor("pilot_superuser")),
    ca.issue(WORKLOAD_ID),
  ]);
  return { nexus: nexus!, superuser: superuser!, workload: workload! };
}

function nexusClientFor(identity: X509Identity): MtlsClient {
  return createMtlsClient({ identity: createStaticSource(identity), serverId: (id) => isNexus(id), timeoutMs: 30_000 });
}

/** The store of each kind, opened explicitly so the two SQLite variants do not depend on Nexus's default. */
function openBenchStore(kind: StoreKind, dataDir: string, postgresUrl: string): Store | undefined {
  switch (kind) {
    case "sqlite":
      return createSqliteStore({ dataDir });
    case "worker-sqlite":
      return createSqliteWorkerStore({ dataDir });
    case "postgres":
      return createPostgresStore({ url: postgresUrl });
    case "memory":
      return undefined;
  }
}

async function startTarget(
  kind: StoreKind,
  ids: Identities,
  dir: string,
  postgresUrl: string,
  settings: BenchSettings,
): Promise<Target> {
  const dataDir = join(dir, `data-${kind}`);
  const config = resolveNexusConfig({
    HOME: dir,
    SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
    SPIKE_NEXUS_BACKEND_STORE: kind === "memory" ? "memory" : "sqlite",
    SPIKE_NEXUS_DATA_DIR: dataDir,
    // The audit trail costs what it costs in production: a line appended to a file per request.
    SPIKE_NEXUS_AUDIT_LOG: join(dir, `audit-${kind}.log`),
  });
  const store = openBenchStore(kind, dataDir, postgresUrl);
  const nexus = await startNexus({ config, identity: createStaticSource(ids.nexus), log: silentLogger, store });
  const rootKey = crypto.getRandomValues(new Uint8Array(32));
  // Keep it below the P-256 group order, like a key Bootstrap would make.
  rootKey[0] = rootKey[0]! & 0x7f;
  try {
    if (await installRootKey(nexus.deps, rootKey) !== "installed") throw new Error("root key was refused");
  } finally {
    rootKey.fill(0);
  }
  const baseUrl = `https://127.0.0.1:${nexus.port}`;
  const superuserTransport = nexusClientFor(ids.superuser);
  const workloadTransport = nexusClientFor(ids.workload);
  const target: Target = {
    kind,
    nexus,
    baseUrl,
    superuserTransport,
    superuser: new NexusClient(baseUrl, superuserTransport),
    workloadTransport,
    workload: new NexusClient(baseUrl, workloadTransport),
    workerStore: kind === "worker-sqlite" ? store as SqliteWorkerStore : undefined,
    groups: new Map(),
  };
  await seed(target, settings.policies);
  return target;
}

/** Policies the workload must scan past, then the one that grants it; and every secret path. */
async function seed(target: Target, policies: number): Promise<void> {
  await addFillerPolicies(target, 0, policies - 1);
  await target.superuser.putPolicy({
    name: "zz-bench-read",
    spiffeidPattern: `^spiffe://spike\\.ist/app/bench$`,
    pathPattern: "^bench/",
    permissions: ["read"],
  });
  for (let i = 0; i < SECRET_PATHS; i++) await target.superuser.putSecret(secretPath(i), secretValues(0));
}

/** Policies `from..to-1` for other teams; names sort before the workload's own policy. */
async function addFillerPolicies(target: Target, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const team = String(i).padStart(4, "0");
    await target.superuser.putPolicy({
      name: `filler-${team}`,
      spiffeidPattern: `^spiffe://spike\\.ist/team-${team}/.*$`,
      pathPattern: `^team-${team}/`,
      permissions: ["read", "write"],
    });
  }
}

function secretPath(i: number): string {
  return `bench/service-${i % SECRET_PATHS}`;
}

function secretValues(i: number): Record<string, string> {
  return { username: "bench", password: "correct-horse-battery-staple", serial: String(i) };
}

function operation(target: Target, name: OpName): Operation {
  const payload = crypto.getRandomValues(new Uint8Array(PAYLOAD_BYTES));
  switch (name) {
    case "secret put":
      return (i) => target.superuser.putSecret(secretPath(i), secretValues(i));
    case "secret get":
      return async (i) => {
        const values = await target.superuser.getSecret(secretPath(i));
        if (values.username !== "bench") throw new Error("secret get returned unexpected values");
      };
    case "secret get (policy)":
      return async (i) => {
        const values = await target.workload.getSecret(secretPath(i));
        if (values.username !== "bench") throw new Error("secret get returned unexpected values");
      };
    case "cipher encrypt 1 KiB":
      return async () => {
        const sealed = await target.superuser.encryptBytes(payload);
        if (sealed.length !== SEALED_BYTES) throw new Error(`encrypt returned ${sealed.length} bytes`);
      };
    case "health":
      return () => health(target.superuserTransport, target.baseUrl);
  }
}

async function health(client: MtlsClient, baseUrl: string): Promise<void> {
  const response = await client.request("GET", `${baseUrl}/health`);
  if (response.status !== 200) throw new Error(`/health answered ${response.status}`);
}

function handshakeOperation(target: Target, mode: HandshakeMode, identity: X509Identity): Operation {
  if (mode === "keep-alive (reused client)") return () => health(target.superuserTransport, target.baseUrl);
  return async () => {
    const client = nexusClientFor(identity);
    try {
      await health(client, target.baseUrl);
    } finally {
      client.close();
    }
  };
}

/** Callers writing secrets while one caller measures `/health`. */
const WRITERS = 15;

/**
 * `GET /health` one at a time while {@linkcode WRITERS} callers put secrets
 * on the same Nexus: how much a write load delays an unrelated request
 * (the store, the crypto and the TLS work all share one event loop).
 */
async function underWriteLoad(target: Target, maxRequests: number, maxMs: number): Promise<Sample> {
  const put = operation(target, "secret put");
  await runBounded(put, WRITERS, WRITERS * 2, maxMs);
  const [, probe] = await Promise.all([
    runBounded(put, WRITERS, maxRequests, maxMs),
    runBounded(() => health(target.superuserTransport, target.baseUrl), 1, maxRequests, maxMs),
  ]);
  return probe;
}

/** fdatasync probes per round: what one durable commit costs at least on this disk. */
const FSYNC_PROBES = 200;
const FSYNC_BLOCK = new Uint8Array(4096);

/** Rewrites one 4 KiB block and waits until it is on stable storage (what a WAL commit must do). */
function fsyncOperation(file: Deno.FsFile): Operation {
  return async () => {
    await file.seek(0, Deno.SeekMode.Start);
    await file.write(FSYNC_BLOCK);
    await file.syncData();
  };
}

/**
 * Measures one cell after an untimed burst that opens the connections it
 * needs (the server drops idle keep-alive connections after 5 s, and the
 * cell before may have used another Nexus).
 */
async function measure(op: Operation, concurrency: number, maxRequests: number, maxMs: number): Promise<Sample> {
  await runBounded(op, concurrency, concurrency * 2, maxMs);
  return await runBounded(op, concurrency, maxRequests, maxMs);
}

/**
 * Runs `work`; when `key` is given and `target` has a worker store, adds the
 * writes and commits it made meanwhile to `target.groups`.
 */
async function countGroups<T>(target: Target, key: string | undefined, work: () => Promise<T>): Promise<T> {
  const store = target.workerStore;
  if (!store || key === undefined) return await work();
  const before = store.stats();
  const result = await work();
  const after = store.stats();
  const sum = target.groups.get(key) ?? { writes: 0, commits: 0 };
  target.groups.set(key, {
    writes: sum.writes + after.writes - before.writes,
    commits: sum.commits + after.commits - before.commits,
  });
  return result;
}

/** Samples of every cell, keyed by {@linkcode cellKey}. */
type Samples = Map<string, Sample[]>;

function cellKey(...parts: (string | number)[]): string {
  return parts.join("|");
}

function record(samples: Samples, key: string, sample: Sample): void {
  const list = samples.get(key) ?? [];
  list.push(sample);
  samples.set(key, list);
}

async function runRound(
  targets: ReadonlyMap<StoreKind, Target>,
  ids: Identities,
  fsyncFile: Deno.FsFile,
  settings: BenchSettings,
  round: number,
  samples: Samples | undefined,
  log: (line: string) => void,
): Promise<void> {
  // A warm-up round (samples undefined) is short: it only needs to JIT-compile
  // the paths and fill the store's caches.
  const maxRequests = samples ? settings.maxRequests : Math.min(settings.maxRequests, 100);
  const maxMs = samples ? settings.maxMs : Math.min(settings.maxMs, 300);
  // Stores side by side so their ratio compares requests made seconds apart;
  // which one goes first alternates, so neither always runs right after a
  // change of operation.
  const stores = round % 2 === 0 ? STORES : [...STORES].reverse();
  for (const opName of OPS) {
    for (const concurrency of CONCURRENCY) {
      for (const kind of stores) {
        const target = targets.get(kind)!;
        const key = cellKey(opName, concurrency, kind);
        const sample = await countGroups(
          target,
          samples && opName === "secret put" ? key : undefined,
          () => measure(operation(target, opName), concurrency, maxRequests, maxMs),
        );
        if (samples) record(samples, key, sample);
        if (sample.errors > 0) {
          log(`  ${opName} c=${concurrency} ${kind}: ${sample.errors} errors (${sample.firstError})`);
        }
      }
    }
  }
  for (const kind of stores) {
    const target = targets.get(kind)!;
    const key = cellKey("health under writes", kind);
    const sample = await countGroups(target, samples && key, () => underWriteLoad(target, maxRequests, maxMs));
    if (samples) record(samples, key, sample);
    if (sample.errors > 0) log(`  health under writes ${kind}: ${sample.errors} errors (${sample.firstError})`);
  }
  const sync = await runBounded(fsyncOperation(fsyncFile), 1, samples ? FSYNC_PROBES : 10, maxMs);
  if (samples) record(samples, cellKey("fsync"), sync);
  const memory = targets.get("memory")!;
  for (const mode of HANDSHAKE_MODES) {
    const handshakes = samples ? settings.handshakeRequests : 10;
    const sample = await measure(handshakeOperation(memory, mode, ids.superuser), 1, handshakes, maxMs);
    if (samples) record(samples, cellKey("handshake", mode), sample);
    if (sample.errors > 0) log(`  ${mode}: ${sample.errors} errors (${sample.firstError})`);
  }
}

/** Operations of the policy-scaling phase: the policy read, and the superuser read as its same-round baseline. */
const SCALING_OPS = ["secret get (policy)", "secret get"] as const;

/** The scaling phase runs only when it adds policies. */
function scalingEnabled(settings: BenchSettings): boolean {
  return settings.manyPolicies > settings.policies;
}

/** One round of the policy-scaling phase (the store then holds `settings.manyPolicies` policies). */
async function runScalingRound(
  targets: ReadonlyMap<StoreKind, Target>,
  settings: BenchSettings,
  round: number,
  samples: Samples,
  log: (line: string) => void,
): Promise<void> {
  const stores = round % 2 === 0 ? STORES : [...STORES].reverse();
  for (const concurrency of CONCURRENCY) {
    for (const kind of stores) {
      for (const opName of SCALING_OPS) {
        const op = operation(targets.get(kind)!, opName);
        const sample = await measure(op, concurrency, settings.maxRequests, settings.maxMs);
        record(samples, cellKey("many", opName, concurrency, kind), sample);
        if (sample.errors > 0) {
          log(`  many policies ${opName} c=${concurrency} ${kind}: ${sample.errors} errors (${sample.firstError})`);
        }
      }
    }
  }
}

/** Median of one field over the rounds of a cell. */
function med(list: readonly Sample[], field: "perSecond" | "p50" | "p90" | "p99"): number {
  return median(list.map((s) => s[field]));
}

/** Median over rounds of `a / b` for one field, pairing samples of the same round. */
function pairedRatio(a: readonly Sample[], b: readonly Sample[], field: "perSecond" | "p50" | "p99"): number {
  return median(a.map((s, i) => s[field] / b[i]![field]));
}

function latencyCells(list: readonly Sample[]): string[] {
  return [
    formatNumber(list.reduce((n, s) => n + s.requests, 0)),
    formatNumber(med(list, "perSecond")),
    formatNumber(med(list, "p50"), 2),
    formatNumber(med(list, "p90"), 2),
    formatNumber(med(list, "p99"), 2),
    formatNumber(list.reduce((n, s) => n + s.errors, 0)),
  ];
}

const LATENCY_HEADER = ["requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"];
const RIGHT6 = ["right", "right", "right", "right", "right", "right"] as const;

/** Renders the result tables as Markdown. */
function report(samples: Samples, settings: BenchSettings, worker: Target): string {
  const get = (...parts: (string | number)[]) => samples.get(cellKey(...parts))!;
  const out: string[] = [];

  out.push(
    `Nexus API over mTLS, ${settings.rounds} round(s) (median), each cell ≤ ${settings.maxRequests} requests ` +
      `and ≤ ${formatNumber(settings.maxMs / 1000, 1)} s per round; "requests" sums all rounds.`,
    "",
    markdownTable(
      ["operation", "store", "in flight", ...LATENCY_HEADER],
      OPS.flatMap((op) =>
        CONCURRENCY.flatMap((c) => STORES.map((kind) => [op, kind, String(c), ...latencyCells(get(op, c, kind))]))
      ),
      ["left", "left", "right", ...RIGHT6],
    ),
    "",
  );

  out.push(
    "Ratios of req/s, each the median of per-round ratios (both sides measured in the same round):",
    "",
    markdownTable(
      [
        "operation",
        "sqlite ÷ memory, 1",
        "sqlite ÷ memory, 16",
        "worker ÷ sqlite, 1",
        "worker ÷ sqlite, 16",
        "postgres ÷ sqlite, 1",
        "postgres ÷ sqlite, 16",
        "16 ÷ 1, sqlite",
        "16 ÷ 1, memory",
      ],
      OPS.map((op) => [
        op,
        formatRatio(pairedRatio(get(op, 1, "sqlite"), get(op, 1, "memory"), "perSecond")),
        formatRatio(pairedRatio(get(op, 16, "sqlite"), get(op, 16, "memory"), "perSecond")),
        formatRatio(pairedRatio(get(op, 1, "worker-sqlite"), get(op, 1, "sqlite"), "perSecond")),
        formatRatio(pairedRatio(get(op, 16, "worker-sqlite"), get(op, 16, "sqlite"), "perSecond")),
        formatRatio(pairedRatio(get(op, 1, "postgres"), get(op, 1, "sqlite"), "perSecond")),
        formatRatio(pairedRatio(get(op, 16, "postgres"), get(op, 16, "sqlite"), "perSecond")),
        formatRatio(pairedRatio(get(op, 16, "sqlite"), get(op, 1, "sqlite"), "perSecond")),
        formatRatio(pairedRatio(get(op, 16, "memory"), get(op, 1, "memory"), "perSecond")),
      ]),
      ["left", "right", "right", "right", "right", "right", "right", "right", "right"],
    ),
    "",
    markdownTable(
      ["store", "in flight", "workload with policy ÷ superuser (secret get)"],
      STORES.flatMap((kind) =>
        CONCURRENCY.map((c) => [
          kind,
          String(c),
          formatRatio(pairedRatio(get("secret get (policy)", c, kind), get("secret get", c, kind), "perSecond")),
        ])
      ),
      ["left", "right", "right"],
    ),
    "",
  );

  out.push(
    `\`GET /health\` one at a time while ${WRITERS} other callers put secrets on the same Nexus:`,
    "",
    markdownTable(
      ["store", ...LATENCY_HEADER],
      STORES.map((kind) => [kind, ...latencyCells(get("health under writes", kind))]),
      ["left", ...RIGHT6],
    ),
    "",
    `worker-sqlite ÷ sqlite under writes (same round, median): /health p99 ${
      formatRatio(pairedRatio(get("health under writes", "worker-sqlite"), get("health under writes", "sqlite"), "p99"))
    }, req/s ${
      formatRatio(
        pairedRatio(get("health under writes", "worker-sqlite"), get("health under writes", "sqlite"), "perSecond"),
      )
    }.`,
    "",
    "Group commit of `worker-sqlite` (writes per transaction, i.e. per fsync, over the measured rounds):",
    "",
    markdownTable(
      ["cell", "writes", "commits", "writes per commit"],
      [
        ["secret put, 1 in flight", cellKey("secret put", 1, "worker-sqlite")],
        ["secret put, 16 in flight", cellKey("secret put", 16, "worker-sqlite")],
        [`/health under ${WRITERS} writers`, cellKey("health under writes", "worker-sqlite")],
      ].map(([label, key]) => {
        const counts = worker.groups.get(key!) ?? { writes: 0, commits: 0 };
        return [
          label!,
          formatNumber(counts.writes),
          formatNumber(counts.commits),
          formatNumber(counts.writes / Math.max(1, counts.commits), 2),
        ];
      }),
      ["left", "right", "right", "right"],
    ),
    "",
  );

  const kept = get("handshake", HANDSHAKE_MODES[0]);
  const fresh = get("handshake", HANDSHAKE_MODES[1]);
  out.push(
    "`GET /health` one at a time (memory store): kept-alive connection vs a new client per request:",
    "",
    markdownTable(
      ["connection", ...LATENCY_HEADER],
      HANDSHAKE_MODES.map((mode) => [mode, ...latencyCells(get("handshake", mode))]),
      ["left", ...RIGHT6],
    ),
    "",
    `New connection ÷ keep-alive, p50 latency: ${formatRatio(pairedRatio(fresh, kept, "p50"))}; ` +
      `added per request: ~${formatNumber(med(fresh, "p50") - med(kept, "p50"), 2)} ms.`,
    "",
  );
  if (scalingEnabled(settings)) {
    out.push(
      `Policy scaling: \`secret get\` with ${settings.manyPolicies} policies in the store ` +
        `(${settings.manyPolicyRounds} round(s), median), the granting policy last:`,
      "",
      markdownTable(
        ["caller", "store", "in flight", ...LATENCY_HEADER, "÷ superuser"],
        CONCURRENCY.flatMap((c) =>
          STORES.flatMap((kind) => {
            const workload = get("many", "secret get (policy)", c, kind);
            const superuser = get("many", "secret get", c, kind);
            return [
              [
                "workload (policy)",
                kind,
                String(c),
                ...latencyCells(workload),
                formatRatio(
                  pairedRatio(workload, superuser, "perSecond"),
                ),
              ],
              ["superuser", kind, String(c), ...latencyCells(superuser), ""],
            ];
          })
        ),
        ["left", "left", "right", ...RIGHT6, "right"],
      ),
      "",
    );
  }
  const sync = get("fsync");
  out.push(
    `Disk check: rewriting 4 KiB + fdatasync in the SQLite data directory: p50 ${
      formatNumber(med(sync, "p50"), 2)
    } ms, ` +
      `p99 ${formatNumber(med(sync, "p99"), 2)} ms (${formatNumber(med(sync, "perSecond"))}/s, one at a time).`,
  );
  return out.join("\n");
}

async function main(): Promise<void> {
  const settings = parseSettings(Deno.args);
  const log = (line: string) => console.error(line);
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "spike-bench-" });
  const targets = new Map<StoreKind, Target>();
  // Next to the SQLite file, on the same file system.
  const fsyncFile = await Deno.open(join(dir, "fsync-probe"), { create: true, write: true });
  const postgresCluster = await startPostgresCluster({ durable: true });
  try {
    const ids = await makeIdentities();
    for (const kind of STORES) targets.set(kind, await startTarget(kind, ids, dir, postgresCluster.url, settings));
    log(`nexus_api_bench: warm-up round`);
    await runRound(targets, ids, fsyncFile, settings, 0, undefined, log);
    const samples: Samples = new Map();
    for (let round = 1; round <= settings.rounds; round++) {
      log(`nexus_api_bench: round ${round}/${settings.rounds}`);
      await runRound(targets, ids, fsyncFile, settings, round, samples, log);
    }
    if (scalingEnabled(settings)) {
      log(`nexus_api_bench: adding policies up to ${settings.manyPolicies}`);
      for (const target of targets.values()) {
        await addFillerPolicies(target, settings.policies - 1, settings.manyPolicies - 1);
      }
      for (let round = 1; round <= settings.manyPolicyRounds; round++) {
        log(`nexus_api_bench: policy scaling round ${round}/${settings.manyPolicyRounds}`);
        await runScalingRound(targets, settings, round, samples, log);
      }
    }
    console.log(
      `deno ${Deno.version.deno}, v8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}, ` +
        `${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log(report(samples, settings, targets.get("worker-sqlite")!));
    log(`nexus_api_bench: done in ${formatNumber((performance.now() - started) / 1000, 1)} s`);
  } finally {
    fsyncFile.close();
    for (const target of targets.values()) {
      target.superuserTransport.close();
      target.workloadTransport.close();
      await target.nexus.close();
    }
    await postgresCluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
}
