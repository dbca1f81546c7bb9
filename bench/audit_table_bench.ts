/**
 * What the Postgres audit table (`SPIKE_NEXUS_AUDIT_TABLE`) costs: two Nexus
 * apps in process (no TLS, so the database's share is as large as it gets),
 * each on its own database of one throwaway PostgreSQL cluster started with
 * `fsync`, `synchronous_commit` and `full_page_writes` on, as in production.
 * Both append the keyed audit chain to a file; the second also writes every
 * record to `audit_logs`, a put's intent row inside the put's own statement
 * and the other rows in batches.
 *
 * Measured at 1 and 16 requests in flight: the superuser's `secret put` (a
 * new version of one of 100 paths) and `secret get`. Rounds interleave the
 * two apps (and swap their order); each cell is bounded by a request count
 * and 2 s. Figures are medians over rounds; ratios medians of per-round
 * ratios.
 *
 * Run: `deno run -A --v8-flags=--enable-experimental-regexp-engine bench/audit_table_bench.ts [--rounds N] [--requests N]`
 *
 * @module
 */
import { join } from "node:path";
import postgres from "postgres";
import { PATHS } from "../lib/api/paths.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { type AuditKeySource, rootKeyAuditKeys } from "../lib/nexus/audit_key.ts";
import { type AuditOutput, openAuditOutput } from "../lib/nexus/audit_output.ts";
import { createTestNexus, peer, type TestNexus } from "../lib/nexus/testing.ts";
import { createPostgresStore } from "../lib/store/postgres_store.ts";
import type { Store } from "../lib/store/types.ts";
import { startPostgresCluster } from "../tests/support/postgres_cluster.ts";
import { formatNumber, formatRatio, markdownTable, median, numberFlag } from "./support.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");

interface App {
  readonly nexus: TestNexus;
  readonly output: AuditOutput;
  readonly store: Store;
}

/** A test Nexus on `url` whose keyed chain goes to `file` (and to `audit_logs` with `table`). */
async function startApp(url: string, file: string, table: boolean): Promise<App> {
  const store = createPostgresStore({ url });
  // deno-lint-ignore prefer-const -- assigned once the Nexus exists; the closure below reads it later
  let source: AuditKeySource | undefined;
  const keys: AuditKeySource = { currentVersion: () => source?.currentVersion(), key: (v) => source?.key(v) };
  const output = await openAuditOutput(file, silentLogger, {
    keys,
    ...(table ? { table: { insert: (rows, options) => store.insertAuditRows!(rows, options) } } : {}),
  });
  const nexus = await createTestNexus({ store, auditSink: output.sink });
  source = rootKeyAuditKeys(nexus.deps.keys);
  output.sink.keyChanged();
  return { nexus, output, store };
}

/** Requests per second of `call` with `inFlight` callers, up to `count` requests or `maxMs`. */
async function rate(call: (i: number) => Promise<{ status: number }>, inFlight: number, count: number, maxMs: number) {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count && performance.now() - started < maxMs) {
      const i = next++;
      const response = await call(i);
      if (response.status !== 200) throw new Error(`the call answered ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return next / ((performance.now() - started) / 1000);
}

const put = (app: App) => (i: number) =>
  app.nexus.call(SUPERUSER, PATHS.secrets, "", { path: `bench/p${i % 100}`, values: { pass: `v${i}` } });
const get = (app: App) => (i: number) => app.nexus.call(SUPERUSER, PATHS.secrets, "get", { path: `bench/p${i % 100}` });

async function main(): Promise<void> {
  const rounds = numberFlag(Deno.args, "--rounds", 5, 1, 50);
  const requests = numberFlag(Deno.args, "--requests", 2000, 100, 1_000_000);
  const dir = await Deno.makeTempDir({ prefix: "spike-audit-table-bench-" });
  const cluster = await startPostgresCluster({ durable: true });
  const apps: App[] = [];
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    const urls: string[] = [];
    for (const name of ["bench_file", "bench_table"]) {
      await admin.unsafe(`CREATE DATABASE ${name}`);
      const url = new URL(cluster.url);
      url.pathname = `/${name}`;
      urls.push(url.href);
    }
    await admin.end();
    apps.push(await startApp(urls[0]!, join(dir, "file.log"), false));
    apps.push(await startApp(urls[1]!, join(dir, "table.log"), true));
    for (const app of apps) {
      await rate(put(app), 16, 300, 5000); // seeds every path; warm-up
      await rate(get(app), 16, 300, 5000);
    }
    const cells = [["put", 1], ["put", 16], ["get", 1], ["get", 16]] as const;
    const samples = new Map<string, number[]>();
    const add = (key: string, value: number) => samples.set(key, [...(samples.get(key) ?? []), value]);
    for (let round = 0; round < rounds; round++) {
      for (const [op, inFlight] of cells) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        const rates: number[] = [];
        for (const i of order) {
          const app = apps[i]!;
          rates[i] = await rate(op === "put" ? put(app) : get(app), inFlight, requests, 2000);
        }
        add(`${op}/${inFlight}/file`, rates[0]!);
        add(`${op}/${inFlight}/table`, rates[1]!);
        add(`${op}/${inFlight}/ratio`, rates[1]! / rates[0]!);
      }
    }
    const counter = postgres(urls[1]!, { max: 1, onnotice: () => {} });
    const rows = await counter`SELECT count(*)::int AS n FROM audit_logs`;
    await counter.end();
    console.log(
      `deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs; ` +
        `${rounds} rounds, ≤ ${requests} requests and ≤ 2 s per cell; PostgreSQL durable, loopback, no TLS; ` +
        `${rows[0]!.n} audit rows written\n`,
    );
    console.log(markdownTable(
      [
        "superuser call, in process",
        "in flight",
        "chain to a file (req/s)",
        "+ audit_logs table (req/s)",
        "table ÷ file",
      ],
      cells.map(([op, inFlight]) => [
        `secret ${op}`,
        String(inFlight),
        formatNumber(median(samples.get(`${op}/${inFlight}/file`)!)),
        formatNumber(median(samples.get(`${op}/${inFlight}/table`)!)),
        formatRatio(median(samples.get(`${op}/${inFlight}/ratio`)!)),
      ]),
      ["left", "right", "right", "right", "right"],
    ));
  } finally {
    for (const app of apps) {
      await app.output.close();
      await app.store.close();
    }
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
}
