/**
 * What Nexus's metrics cost a request: the same app (memory store, in
 * process, no TLS, so metrics are as large a share of a request as they can
 * be) answering the Pilot superuser's `secret get` with metrics on (request
 * counter, latency histogram, in-flight gauge, two timed store calls) and
 * off; with `--against DIR`, also the app of another checkout (e.g. the
 * commit before prom-client, whose metrics were a plain `Map`). Then the
 * bookkeeping of one request alone: this module's `observe` plus the two
 * store observations and in-flight bump, against `prom-client`'s own
 * Counter/Histogram/Gauge doing the same (what "use prom-client for the hot
 * path" would have cost).
 *
 * Run: `deno run -A --v8-flags=--enable-experimental-regexp-engine bench/metrics_bench.ts [--rounds N] [--requests N] [--against DIR]`
 *
 * Rounds alternate the apps and their order, each bounded by a request
 * count and 2 s; figures are medians over rounds, ratios medians of
 * per-round ratios.
 *
 * @module
 */
import { join } from "node:path";
import client from "prom-client";
import { PATHS } from "../lib/api/paths.ts";
import { NexusMetrics } from "../lib/nexus/metrics.ts";
import { RootKeyState } from "../lib/nexus/root_key_state.ts";
import { createTestNexus, peer, type TestNexus } from "../lib/nexus/testing.ts";
import { formatNumber, formatRatio, markdownTable, median, numberFlag } from "./support.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");
const ROUTES = ["/v1/store/secrets?get", "/v1/store/secrets", "/v1/acl/policy?list", "other"];
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

async function timeGets(nexus: TestNexus, count: number, maxMs: number): Promise<number> {
  const started = performance.now();
  let done = 0;
  while (done < count && performance.now() - started < maxMs) {
    const response = await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "bench/db" });
    if (response.status !== 200) throw new Error(`secret get answered ${response.status}`);
    done++;
  }
  return ((performance.now() - started) / done) * 1000;
}

/** ns per request of `book` (one request's metric updates), over `count` requests. */
function timeBookkeeping(book: (i: number) => void, count: number): number {
  for (let i = 0; i < 50_000; i++) book(i);
  const started = performance.now();
  for (let i = 0; i < count; i++) book(i);
  return ((performance.now() - started) / count) * 1e6;
}

async function main(): Promise<void> {
  const rounds = numberFlag(Deno.args, "--rounds", 7, 1, 50);
  const requests = numberFlag(Deno.args, "--requests", 5000, 100, 1_000_000);
  const againstAt = Deno.args.indexOf("--against");
  const against = againstAt >= 0 ? Deno.args[againstAt + 1] : undefined;

  const apps = new Map<string, TestNexus>([
    ["metrics on", await createTestNexus({ auditSink: { record() {}, sweep: () => Promise.resolve(true) } })],
    [
      "metrics off",
      await createTestNexus({ auditSink: { record() {}, sweep: () => Promise.resolve(true) }, metrics: false }),
    ],
  ]);
  if (against) {
    const base = await import(join(against, "lib/nexus/testing.ts"));
    apps.set(
      "base checkout (metrics on)",
      await base.createTestNexus({ auditSink: { record() {}, sweep: () => Promise.resolve(true) } }),
    );
  }
  for (const nexus of apps.values()) {
    const put = await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "bench/db", values: { pass: "p" } });
    if (put.status !== 200) throw new Error(`seeding answered ${put.status}`);
    await timeGets(nexus, 500, 2000);
  }
  const times = new Map<string, number[]>([...apps.keys()].map((name) => [name, []]));
  const ratios = new Map<string, number[]>([...apps.keys()].map((name) => [name, []]));
  const names = [...apps.keys()];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    const thisRound = new Map<string, number>();
    for (const name of order) thisRound.set(name, await timeGets(apps.get(name)!, requests, 2000));
    for (const name of names) {
      times.get(name)!.push(thisRound.get(name)!);
      ratios.get(name)!.push(thisRound.get(name)! / thisRound.get("metrics off")!);
    }
  }

  // One request's bookkeeping alone.
  const ours = new NexusMetrics({ startedAt: 0, keys: new RootKeyState() });
  const oursBook = (i: number) => {
    ours.requestStarted();
    ours.storeOperation("policy_generation", 0.00002, true);
    ours.storeOperation("read_secret", 0.00004, true);
    ours.requestEnded();
    ours.observe(ROUTES[i & 3]!, 200, 0.0004);
  };
  const registry = new client.Registry();
  const requestsTotal = new client.Counter({
    name: "r_total",
    help: "h",
    labelNames: ["route", "code"],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: "d",
    help: "h",
    labelNames: ["route"],
    buckets: BUCKETS,
    registers: [registry],
  });
  const store = new client.Histogram({
    name: "s",
    help: "h",
    labelNames: ["operation"],
    buckets: BUCKETS,
    registers: [registry],
  });
  const inFlight = new client.Gauge({ name: "f", help: "h", registers: [registry] });
  const promBook = (i: number) => {
    inFlight.inc();
    store.observe({ operation: "policy_generation" }, 0.00002);
    store.observe({ operation: "read_secret" }, 0.00004);
    inFlight.dec();
    const route = ROUTES[i & 3]!;
    requestsTotal.inc({ route, code: "200" });
    duration.observe({ route }, 0.0004);
  };
  // The base checkout's metrics, when given: before this module, `observe` alone (a Map-based counter and histogram).
  let baseBook: ((i: number) => void) | undefined;
  if (against) {
    const { NexusMetrics: BaseMetrics } = await import(join(against, "lib/nexus/metrics.ts"));
    const base = new BaseMetrics(0);
    baseBook = (i: number) => base.observe(ROUTES[i & 3]!, 200, 0.0004);
  }
  const oursNs: number[] = [];
  const promNs: number[] = [];
  const baseNs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    oursNs.push(timeBookkeeping(oursBook, 500_000));
    promNs.push(timeBookkeeping(promBook, 500_000));
    if (baseBook) baseNs.push(timeBookkeeping(baseBook, 500_000));
  }
  ours.close();

  console.log(
    `deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs; ` +
      `${rounds} rounds, ≤ ${requests} requests and ≤ 2 s each\n`,
  );
  console.log(markdownTable(
    ["superuser `secret get`, in process, memory store", "µs per request (median)", "÷ metrics off"],
    names.map((name) => [name, formatNumber(median(times.get(name)!), 1), formatRatio(median(ratios.get(name)!))]),
    ["left", "right", "right"],
  ));
  console.log();
  console.log(markdownTable(
    ["one request's metric updates alone", "ns (median)"],
    [
      ["lib/metrics (Map lookups, plain counters)", formatNumber(median(oursNs), 0)],
      ["prom-client Counter / Histogram / Gauge with labels", formatNumber(median(promNs), 0)],
      ...(baseBook ? [["base checkout: request counter and histogram only", formatNumber(median(baseNs), 0)]] : []),
    ],
    ["left", "right"],
  ));
}

if (import.meta.main) {
  await main();
}
