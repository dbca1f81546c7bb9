/**
 * What the key-value features cost, through a real Nexus over mTLS:
 *
 * 1. Listing N paths (default 100,000) page by page: time per page, the
 *    whole walk, and the peak heap while walking, next to SPIKE's one-answer
 *    `list` of the same paths; and a workload granted 1 path in 1,000 by an
 *    anchored policy (only its range is read) or by an unanchored one (every
 *    path is read, 10,000 per request).
 * 2. Patch against put: requests per second and p50, one client and 16, on
 *    one path per client and on one hot path, in interleaved rounds (ratios
 *    are of the same round).
 *
 * On SQLite (in-thread store, `synchronous=FULL`) and Postgres (a throwaway
 * durable cluster on loopback). Paths are seeded through the backup import
 * (one transaction), so the seed is not what is measured.
 *
 * Run: `deno run -A --v8-flags=--enable-experimental-regexp-engine bench/kv_bench.ts [--quick]
 *       [--paths N] [--rounds R] [--no-postgres] [--only list|write]`
 *
 * @module
 */
import { join } from "node:path";
import type { BackupItem } from "../lib/backup/format.ts";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { installRootKey } from "../lib/nexus/key_installer.ts";
import { type RunningNexus, startNexus } from "../lib/nexus/server.ts";
import { createDevCa } from "../lib/spiffe/dev_ca.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import type { X509Identity } from "../lib/spiffe/identity.ts";
import { importIntoPostgres } from "../lib/store/postgres_backup.ts";
import { createPostgresStore } from "../lib/store/postgres_store.ts";
import { importIntoSqlite } from "../lib/store/sqlite_backup.ts";
import { createSqliteStore } from "../lib/store/sqlite_store.ts";
import type { Store } from "../lib/store/types.ts";
import { startPostgresCluster } from "../tests/support/postgres_cluster.ts";
import {
  exposeGc,
  formatBytes,
  formatNumber,
  formatRatio,
  hasFlag,
  markdownTable,
  median,
  runBounded,
  summarize,
} from "./support.ts";

const args = Deno.args;
const QUICK = hasFlag(args, "--quick");
const PATHS = numberArg("--paths", QUICK ? 10_000 : 100_000);
const ROUNDS = numberArg("--rounds", QUICK ? 1 : 5);
const TEAM_ID = "spiffe://spike.ist/team-7/svc";
/** `--only list` or `--only write`: one half of the benchmark. */
const ONLY = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
if (ONLY !== undefined && ONLY !== "list" && ONLY !== "write") throw new RangeError("--only takes list or write");
const gc = exposeGc();

function numberArg(name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const n = Number(args[at + 1]);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} takes a positive whole number`);
  return n;
}

/** Path `i` of the seed: one in 1,000 belongs to team-7, the others spread over 97 teams. */
function pathOf(i: number): string {
  return `bench/${i % 1000 === 7 ? "team-7" : `t${String(i % 97).padStart(2, "0")}`}/${String(i).padStart(7, "0")}`;
}

/** N secrets of one version each (sealed bytes are opaque here: listings never open them). */
function* seedItems(count: number): Generator<BackupItem> {
  const sealed = crypto.getRandomValues(new Uint8Array(64));
  const at = new Date(Date.UTC(2030, 0, 1));
  for (let i = 0; i < count; i++) {
    yield {
      kind: "secret",
      path: pathOf(i),
      record: {
        revision: 1,
        currentVersion: 1,
        oldestVersion: 1,
        maxVersions: 10,
        createdTime: at,
        updatedTime: at,
        versions: new Map([[1, { version: 1, createdTime: at, deletedTime: null, sealed, keyVersion: 1 }]]),
      },
    };
  }
}

interface Target {
  readonly name: string;
  readonly nexus: RunningNexus;
  readonly superuser: NexusClient;
  readonly team: NexusClient;
  readonly transports: MtlsClient[];
  client(identity: X509Identity): NexusClient;
}

async function startTarget(
  name: string,
  store: Store,
  dir: string,
  ids: { nexus: X509Identity; superuser: X509Identity; team: X509Identity },
): Promise<Target> {
  const config = resolveNexusConfig({
    HOME: dir,
    SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
    SPIKE_NEXUS_KEEPER_PEERS: "",
    SPIKE_NEXUS_AUDIT_LOG: join(dir, `audit-${name}.log`),
    SPIKE_NEXUS_MAX_SECRET_VERSIONS: "10",
  });
  const nexus = await startNexus({ config, identity: createStaticSource(ids.nexus), log: silentLogger, store });
  const key = crypto.getRandomValues(new Uint8Array(32));
  key[0] = key[0]! & 0x7f;
  try {
    if (await installRootKey(nexus.deps, key) !== "installed") throw new Error("root key refused");
  } finally {
    key.fill(0);
  }
  const url = `https://127.0.0.1:${nexus.port}`;
  const transports: MtlsClient[] = [];
  const client = (identity: X509Identity) => {
    const transport = createMtlsClient({
      identity: createStaticSource(identity),
      serverId: (id) => isNexus(id),
      timeoutMs: 60_000,
    });
    transports.push(transport);
    return new NexusClient(url, transport);
  };
  return { name, nexus, superuser: client(ids.superuser), team: client(ids.team), transports, client };
}

async function stopTarget(target: Target): Promise<void> {
  for (const t of target.transports) t.close();
  await target.nexus.close();
}

/** Samples the heap every 2 ms while `work` runs; resolves its result and the peak growth over the start. */
async function peakHeap<T>(work: () => Promise<T>): Promise<{ value: T; peak: number }> {
  gc();
  const base = Deno.memoryUsage().heapUsed;
  let peak = 0;
  const sample = () => peak = Math.max(peak, Deno.memoryUsage().heapUsed - base);
  const timer = setInterval(sample, 2);
  try {
    const value = await work();
    sample();
    return { value, peak };
  } finally {
    clearInterval(timer);
  }
}

interface WalkResult {
  readonly pages: number;
  readonly keys: number;
  readonly perPageMs: number[];
  readonly totalMs: number;
  /** Bytes of the largest answer (its JSON): what one request holds in memory at once. */
  readonly largest: number;
}

/** Every page of `client`'s listing under `prefix`, timed. */
async function walk(client: NexusClient, prefix: string, limit: number): Promise<WalkResult> {
  const perPageMs: number[] = [];
  let keys = 0;
  let largest = 0;
  let cursor: string | undefined;
  const start = performance.now();
  do {
    const t0 = performance.now();
    const page = await client.listSecretsPage({ prefix, limit, ...(cursor ? { cursor } : {}) });
    perPageMs.push(performance.now() - t0);
    keys += page.keys.length;
    largest = Math.max(largest, JSON.stringify(page).length);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return { pages: perPageMs.length, keys, perPageMs, totalMs: performance.now() - start, largest };
}

/** `ROUNDS` walks: the one of median total time, and the median peak heap. */
async function medianWalk(run: () => Promise<WalkResult>): Promise<{ walked: WalkResult; peak: number }> {
  const runs: Array<{ walked: WalkResult; peak: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const { value, peak } = await peakHeap(run);
    runs.push({ walked: value, peak });
  }
  const mid = [...runs].sort((a, b) => a.walked.totalMs - b.walked.totalMs)[Math.floor(runs.length / 2)]!;
  return { walked: mid.walked, peak: median(runs.map((r) => r.peak)) };
}

async function listing(target: Target): Promise<string[][]> {
  const rows: string[][] = [];
  const row = (what: string, walked: WalkResult, peak: number) => {
    const pages = summarize(walked.perPageMs);
    rows.push([
      target.name,
      what,
      formatNumber(walked.keys),
      formatNumber(walked.pages),
      formatNumber(pages.p50, 1),
      formatNumber(pages.p90, 1),
      formatNumber(walked.totalMs),
      formatBytes(walked.largest),
      formatBytes(peak),
    ]);
  };
  // Warm-up: JIT, connections, the page cache.
  await walk(target.superuser, "", 1000);
  const all = await medianWalk(() => walk(target.superuser, "", 1000));
  row("superuser, pages of 1,000", all.walked, all.peak);

  const full: Array<{ ms: number; peak: number; keys: number; bytes: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const { value, peak } = await peakHeap(() => target.superuser.listSecrets());
    full.push({ ms: performance.now() - t0, peak, keys: value.length, bytes: JSON.stringify({ keys: value }).length });
  }
  const fullMid = full.sort((a, b) => a.ms - b.ms)[Math.floor(full.length / 2)]!;
  rows.push([
    target.name,
    "superuser, SPIKE's one-answer list",
    formatNumber(fullMid.keys),
    "1",
    formatNumber(fullMid.ms, 1),
    "",
    formatNumber(fullMid.ms),
    formatBytes(fullMid.bytes),
    formatBytes(median(full.map((f) => f.peak))),
  ]);

  await target.superuser.putPolicy({
    name: "team-7",
    spiffeidPattern: `^${TEAM_ID.replaceAll(".", "\\.")}$`,
    pathPattern: "^bench/team-7/",
    permissions: ["read"],
  });
  // The first request after a policy change reads and compiles the policies: not part of listing.
  await target.team.listSecretsPage({ limit: 1 });
  const scoped = await medianWalk(() => walk(target.team, "", 1000));
  row("workload, anchored policy (1 in 1,000)", scoped.walked, scoped.peak);
  await target.superuser.putPolicy({
    name: "team-7",
    spiffeidPattern: `^${TEAM_ID.replaceAll(".", "\\.")}$`,
    pathPattern: "/team-7/",
    permissions: ["read"],
  });
  await target.team.listSecretsPage({ limit: 1 });
  const unanchored = await medianWalk(() => walk(target.team, "", 1000));
  row("workload, unanchored policy (1 in 1,000)", unanchored.walked, unanchored.peak);
  return rows;
}

/** Put and patch, interleaved, at 1 and 16 clients, on own paths and on one hot path. */
async function patchVersusPut(target: Target, superuser: X509Identity): Promise<string[][]> {
  const rows: string[][] = [];
  const values = { user: "svc-user", pass: "p".repeat(32), host: "db.internal", port: "5432", mode: "verify-full" };
  for (const concurrency of [1, 16]) {
    const clients = Array.from({ length: concurrency }, () => target.client(superuser));
    for (const hot of [false, true]) {
      const pathFor = (i: number) => (hot ? "kv/hot" : `kv/own-${i % concurrency}`);
      for (let i = 0; i < concurrency; i++) await clients[i]!.putSecret(pathFor(i), values);
      const put = (i: number) => clients[i % concurrency]!.putSecret(pathFor(i), { ...values, pass: `p${i}` });
      const patch = (i: number) => clients[i % concurrency]!.patchSecret(pathFor(i), { pass: `p${i}` });
      await runBounded(put, concurrency, 200, 2000);
      await runBounded(patch, concurrency, 200, 2000);
      const puts = [];
      const patches = [];
      const ratios = [];
      for (let r = 0; r < ROUNDS; r++) {
        const a = await runBounded(put, concurrency, QUICK ? 300 : 2000, QUICK ? 1500 : 4000);
        const b = await runBounded(patch, concurrency, QUICK ? 300 : 2000, QUICK ? 1500 : 4000);
        if (a.errors + b.errors > 0) throw new Error(`errors: ${a.firstError ?? b.firstError}`);
        puts.push(a);
        patches.push(b);
        ratios.push(b.perSecond / a.perSecond);
      }
      rows.push([
        target.name,
        String(concurrency),
        hot ? "one hot path" : "a path per client",
        formatNumber(median(puts.map((s) => s.perSecond))),
        formatNumber(median(puts.map((s) => s.p50)), 2),
        formatNumber(median(patches.map((s) => s.perSecond))),
        formatNumber(median(patches.map((s) => s.p50)), 2),
        formatRatio(median(ratios)),
      ]);
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const loadBefore = Deno.loadavg()[0]!;
  const dir = await Deno.makeTempDir({ prefix: "spike_kv_bench_" });
  const ca = await createDevCa();
  const ids = {
    nexus: await ca.issue(spikeIdFor("nexus")),
    superuser: await ca.issue(spikeIdFor("pilot_superuser")),
    team: await ca.issue(TEAM_ID),
  };
  const cluster = hasFlag(args, "--no-postgres") ? undefined : await startPostgresCluster({ durable: true });
  const listRows: string[][] = [];
  const writeRows: string[][] = [];
  try {
    const targets: Array<() => Promise<Target>> = [
      async () => {
        const dataDir = join(dir, "sqlite");
        await importIntoSqlite(dataDir, async (t) => {
          for (const item of seedItems(PATHS)) await t.add(item);
        });
        return startTarget("SQLite", createSqliteStore({ dataDir }), dir, ids);
      },
    ];
    if (cluster) {
      targets.push(async () => {
        await importIntoPostgres({ url: cluster.url }, async (t) => {
          for (const item of seedItems(PATHS)) await t.add(item);
        });
        return startTarget("Postgres", createPostgresStore({ url: cluster.url }), dir, ids);
      });
    }
    for (const start of targets) {
      const target = await start();
      try {
        if (!ONLY || ONLY === "list") listRows.push(...await listing(target));
        if (!ONLY || ONLY === "write") writeRows.push(...await patchVersusPut(target, ids.superuser));
      } finally {
        await stopTarget(target);
      }
    }
  } finally {
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`## Key-value features (${formatNumber(PATHS)} paths, ${ROUNDS} round(s), median)\n`);
  console.log(
    `Load average (1 min): ${formatNumber(loadBefore, 2)} at the start, ${
      formatNumber(Deno.loadavg()[0]!, 2)
    } at the end.\n`,
  );
  console.log("### Listing page by page\n");
  console.log(
    markdownTable(
      ["store", "who", "paths", "pages", "page p50 ms", "page p90 ms", "total ms", "largest answer", "peak heap"],
      listRows,
      ["left", "left", "right", "right", "right", "right", "right", "right", "right"],
    ),
  );
  console.log("\n### Patch against put (5-key secret; patch changes 1 key)\n");
  console.log(
    markdownTable(
      ["store", "clients", "paths", "put req/s", "put p50 ms", "patch req/s", "patch p50 ms", "patch/put"],
      writeRows,
      ["left", "right", "left", "right", "right", "right", "right", "right"],
    ),
  );
}

if (import.meta.main) await main();
