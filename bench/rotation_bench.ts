/**
 * Root key rotation benchmark: how long re-sealing every stored record
 * takes, and what it does to reads served meanwhile.
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/rotation_bench.ts [--quick]`
 *
 * Per store (`--store sqlite|postgres|both`, default both): a store seeded
 * with `--secrets` paths of `--versions` versions each (default 100,000 ×
 * 10 = 1,000,000 sealed versions; `--quick`: 2,000 × 10), every version
 * sealed under root key version 1 exactly as Nexus seals it; three Keepers
 * in this process over real mTLS (threshold 2); the rotation coordinator
 * Nexus runs (`KeyRotation`, batches of `--batch` paths; default Nexus's:
 * 25 on SQLite, 100 on Postgres). SQLite is the
 * in-thread store on a temporary directory with `synchronous=FULL`;
 * Postgres a throwaway cluster on loopback with production durability
 * (`fsync`, `synchronous_commit`, `full_page_writes` on), TLS off.
 *
 * Reads: `--readers` callers (default 4) read random paths through the
 * secret service in this process (open with the key of the record's
 * version), for `--before` seconds (default 10) before the rotation and all
 * through it. Latency is per read; the rotation runs in the same process
 * and event loop, as in Nexus.
 *
 * Bounds: seeding stops after `--seed-seconds` (default 1200) with what it
 * has (reported); the rotation is given `--max-seconds` (default 3600).
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { join } from "node:path";
import { seal } from "../lib/crypto/aead.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { generateRootKey } from "../lib/crypto/root_key.ts";
import { splitSecret } from "../lib/crypto/shamir.ts";
import { createTestPki, localUrl, startTestKeeper, testClient } from "../lib/keeper/testing.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { startKeeperSync } from "../lib/nexus/keeper_sync.ts";
import { KeyManager } from "../lib/nexus/key_manager.ts";
import { offerRootKey } from "../lib/nexus/key_installer.ts";
import { KeyRotation } from "../lib/nexus/key_rotation.ts";
import { KeyedQueue } from "../lib/nexus/keyed_queue.ts";
import { RootKeyState } from "../lib/nexus/root_key_state.ts";
import { secretAad, SecretService } from "../lib/nexus/secret_service.ts";
import { isKeeper, trustRoots } from "../lib/spiffe/roles.ts";
import { createPostgresStore } from "../lib/store/postgres_store.ts";
import { createSqliteStore } from "../lib/store/sqlite_store.ts";
import type { SecretRecord, SecretVersion, SecretWrite, Store } from "../lib/store/types.ts";
import { startPostgresCluster } from "../tests/support/postgres_cluster.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, numberFlag, summarize } from "./support.ts";

interface Settings {
  readonly secrets: number;
  readonly versions: number;
  readonly readers: number;
  readonly beforeMs: number;
  /** Paths per batch; `undefined`: Nexus's default for the store (25 SQLite, 100 Postgres). */
  readonly batch: number | undefined;
  readonly seedMs: number;
  readonly maxMs: number;
  readonly stores: readonly ("sqlite" | "postgres")[];
}

function settingsFrom(args: readonly string[]): Settings {
  const quick = hasFlag(args, "--quick");
  const store = args.find((a) => a.startsWith("--store="))?.slice(8) ??
    (args.includes("--store") ? args[args.indexOf("--store") + 1] : "both");
  if (!["sqlite", "postgres", "both"].includes(store ?? "")) {
    throw new RangeError("--store is sqlite, postgres or both");
  }
  return {
    secrets: numberFlag(args, "--secrets", quick ? 2_000 : 100_000, 1, 10_000_000),
    versions: numberFlag(args, "--versions", 10, 1, 100),
    readers: numberFlag(args, "--readers", 4, 0, 64),
    beforeMs: numberFlag(args, "--before", quick ? 3 : 10, 1, 600) * 1000,
    batch: args.some((a) => a.startsWith("--batch")) ? numberFlag(args, "--batch", 100, 1, 10_000) : undefined,
    seedMs: numberFlag(args, "--seed-seconds", 1200, 1, 86_400) * 1000,
    maxMs: numberFlag(args, "--max-seconds", 3600, 1, 86_400) * 1000,
    stores: store === "both" ? ["sqlite", "postgres"] : [store as "sqlite" | "postgres"],
  };
}

const log = (line: string) => console.error(`rotation_bench: ${line}`);
const encoder = new TextEncoder();

/** Seeds `settings.secrets` paths of `settings.versions` versions, sealed under version 1; resolves how many paths. */
async function seed(store: Store, keys: RootKeyState, settings: Settings): Promise<number> {
  const key = keys.keys().secrets;
  const started = performance.now();
  const perBatch = 500;
  let paths = 0;
  for (let from = 0; from < settings.secrets; from += perBatch) {
    if (performance.now() - started > settings.seedMs) {
      log(`seeding stopped at its time bound with ${formatNumber(paths)} paths`);
      break;
    }
    const count = Math.min(perBatch, settings.secrets - from);
    const writes: SecretWrite[] = await Promise.all(Array.from({ length: count }, async (_, j) => {
      const path = `bench/tenant-${Math.floor((from + j) / 1000)}/secret-${from + j}`;
      const versions = new Map<number, SecretVersion>();
      const at = new Date();
      for (let v = 1; v <= settings.versions; v++) {
        const value = encoder.encode(JSON.stringify({ password: `value-${from + j}-${v}-${"x".repeat(24)}` }));
        versions.set(v, {
          version: v,
          createdTime: at,
          deletedTime: null,
          sealed: await seal(key, value, secretAad(path, v), systemRandom),
          keyVersion: 1,
        });
      }
      const next: SecretRecord = {
        revision: 0,
        currentVersion: settings.versions,
        oldestVersion: 1,
        createdTime: at,
        updatedTime: at,
        maxVersions: settings.versions,
        versions,
      };
      return { path, expectedRevision: 0, next, sealedUnder: 1 };
    }));
    await store.writeSecrets(writes);
    paths += count;
    if ((from / perBatch) % 20 === 0) {
      const rate = paths / ((performance.now() - started) / 1000);
      log(`seeded ${formatNumber(paths)} paths (${formatNumber(rate)}/s)`);
    }
  }
  return paths;
}

interface Phase {
  readonly latencies: number[];
  errors: number;
  startedAt: number;
  endedAt: number;
}

/** Readers on random paths until `stop()`; each read's latency goes to the phase current at its start. */
function readLoad(service: SecretService, paths: number, settings: Settings) {
  let stopped = false;
  const phases: Phase[] = [];
  let current: Phase = { latencies: [], errors: 0, startedAt: performance.now(), endedAt: 0 };
  phases.push(current);
  const readers = Array.from({ length: settings.readers }, async (_, r) => {
    let i = r;
    while (!stopped) {
      const n = (i++ * 7919) % paths;
      const phase = current;
      const t0 = performance.now();
      try {
        await service.get(`bench/tenant-${Math.floor(n / 1000)}/secret-${n}`, 0);
        phase.latencies.push(performance.now() - t0);
      } catch {
        phase.errors++;
      }
      // A read of a settled SQLite row never leaves the microtask queue, so
      // without this the readers would starve every timer, the rotation's
      // included (a server's requests come from I/O, which yields).
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  return {
    next(): Phase {
      current.endedAt = performance.now();
      current = { latencies: [], errors: 0, startedAt: performance.now(), endedAt: 0 };
      phases.push(current);
      return phases[phases.length - 2]!;
    },
    async stop(): Promise<Phase> {
      stopped = true;
      await Promise.all(readers);
      current.endedAt = performance.now();
      return current;
    },
  };
}

interface Result {
  readonly store: string;
  readonly batchSize: number;
  readonly paths: number;
  readonly records: number;
  readonly seedSeconds: number;
  readonly rotationSeconds: number;
  readonly finished: boolean;
  readonly before: Phase;
  readonly during: Phase;
}

async function runStore(kind: "sqlite" | "postgres", settings: Settings, dir: string, postgresUrl?: string) {
  const pki = await createTestPki();
  const rootKey = generateRootKey(systemRandom);
  const shares = splitSecret(rootKey, 3, 2);
  const keepers = await Promise.all(shares.map(async (share) => {
    const keeper = await startTestKeeper(pki);
    keeper.shard.set(share.value, 1);
    return keeper;
  }));
  const store = kind === "sqlite"
    ? createSqliteStore({ dataDir: join(dir, "sqlite") })
    : createPostgresStore({ url: postgresUrl!, maxConnections: 10 });
  const keys = new RootKeyState();
  const client = await testClient(pki, "spike/nexus", (id) => isKeeper(id, trustRoots()), 10_000);
  const clock = () => new Date();
  const deps = { store, keys, random: systemRandom, log: silentLogger, clock };
  const sync = startKeeperSync(deps, client, {
    peers: keepers.map((k) => localUrl(k.port)),
    threshold: 2,
    pushIntervalMs: 3_600_000,
  });
  const batchSize = settings.batch ?? (kind === "sqlite" ? 25 : 100);
  const rotation = new KeyRotation(deps, sync, { threshold: 2, batchSize, leaseMs: 60_000 });
  const manager = new KeyManager();
  manager.attach(sync, rotation);
  try {
    if ((await offerRootKey(deps, rootKey)).result !== "installed") throw new Error("root key refused");
    rootKey.fill(0);
    await sync.recovered;
    log(`${kind}: seeding ${formatNumber(settings.secrets)} × ${settings.versions} sealed versions`);
    const seedStart = performance.now();
    const paths = await seed(store, keys, settings);
    const seedSeconds = (performance.now() - seedStart) / 1000;
    const records = (await store.countSealedBelow(2)).secretVersions;
    log(`${kind}: seeded ${formatNumber(records)} versions in ${formatNumber(seedSeconds, 1)} s; reads before`);
    const service = new SecretService({
      store,
      keys,
      clock,
      random: systemRandom,
      maxVersions: settings.versions,
      keyCatchUp: manager,
      writes: new KeyedQueue(),
    });
    const load = readLoad(service, paths, settings);
    await new Promise((resolve) => setTimeout(resolve, settings.beforeMs));
    const before = load.next();
    log(`${kind}: rotating`);
    const t0 = performance.now();
    await rotation.start();
    let finished = false;
    while (performance.now() - t0 < settings.maxMs) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const state = await store.keyState();
      if (state.phase === "idle" && state.currentVersion === 2 && !rotation.running) {
        finished = true;
        break;
      }
    }
    const rotationSeconds = (performance.now() - t0) / 1000;
    const during = await load.stop();
    if (!finished) log(`${kind}: the rotation did not finish within --max-seconds`);
    const left = await store.countSealedBelow(2);
    if (finished && left.secretVersions + left.policies !== 0) throw new Error("records left under version 1");
    log(`${kind}: rotated in ${formatNumber(rotationSeconds, 1)} s`);
    return {
      store: kind,
      batchSize,
      paths,
      records,
      seedSeconds,
      rotationSeconds,
      finished,
      before,
      during,
    } satisfies Result;
  } finally {
    await rotation.stop();
    const stopping = sync.stop();
    client.close();
    await stopping;
    await Promise.all(keepers.map((k) => k.close()));
    await store.close();
    keys.clear();
  }
}

function report(results: readonly Result[], settings: Settings): string {
  const rows = results.map((r) => [
    r.store,
    formatNumber(r.batchSize),
    `${formatNumber(r.paths)} × ${settings.versions}`,
    formatNumber(r.records),
    formatNumber(r.seedSeconds, 0),
    r.finished ? formatNumber(r.rotationSeconds, 1) : `> ${formatNumber(r.rotationSeconds, 0)} (unfinished)`,
    formatNumber(r.records / r.rotationSeconds),
  ]);
  const reads = results.flatMap((r) => {
    const phase = (name: string, p: Phase) => {
      const s = summarize(p.latencies);
      const seconds = (p.endedAt - p.startedAt) / 1000;
      return [
        r.store,
        name,
        formatNumber(s.count),
        formatNumber(s.count / seconds),
        formatNumber(s.p50, 2),
        formatNumber(s.p99, 2),
        formatNumber(p.errors),
      ];
    };
    return [phase("before", r.before), phase("during rotation", r.during)];
  });
  const ratios = results.map((r) => {
    const b = summarize(r.before.latencies);
    const d = summarize(r.during.latencies);
    return [r.store, formatRatio(d.p50 / b.p50), formatRatio(d.p99 / b.p99)];
  });
  return [
    `Rotation of every stored secret version, ${settings.readers} readers throughout.`,
    "",
    markdownTable(
      ["store", "batch (paths)", "secrets × versions", "sealed versions", "seed s", "rotation s", "records/s"],
      rows,
      ["left", "right", "right", "right", "right", "right", "right"],
    ),
    "",
    markdownTable(
      ["store", "reads", "count", "reads/s", "p50 ms", "p99 ms", "errors"],
      reads,
      ["left", "left", "right", "right", "right", "right", "right"],
    ),
    "",
    markdownTable(["store", "p50 during ÷ before", "p99 during ÷ before"], ratios, ["left", "right", "right"]),
  ].join("\n");
}

async function main(): Promise<void> {
  const settings = settingsFrom(Deno.args);
  const dir = await Deno.makeTempDir({ prefix: "spike_rotation_bench_" });
  const results: Result[] = [];
  try {
    for (const kind of settings.stores) {
      if (kind === "sqlite") results.push(await runStore("sqlite", settings, dir));
      else {
        const cluster = await startPostgresCluster({ durable: true });
        try {
          results.push(await runStore("postgres", settings, dir, cluster.url));
        } finally {
          await cluster.stop();
        }
      }
    }
    console.log(
      `deno ${Deno.version.deno}, v8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}, ` +
        `${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log(report(results, settings));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
