/**
 * What the audit trail costs a request: the same Nexus app (memory store,
 * in process, no TLS, so the audit write is as large a share of a request
 * as it can be) answering the Pilot superuser's `secret get` with its
 * records
 *
 * - dropped (the baseline),
 * - appended to a file as plain JSON lines (the trail before the chain),
 * - appended as the keyed chain (`SPIKE_NEXUS_AUDIT_LOG=<file>`: HMAC-SHA-256
 *   plus the SHA-256 link per record),
 * - appended as the chain, fail-closed (`SPIKE_NEXUS_AUDIT_FAIL_CLOSED`:
 *   every record fdatasync'd before the answer leaves),
 *
 * and `secret put` fail-closed (an intent record synced before the change,
 * then the request's record synced) against the chain alone. Also the cost
 * of one record alone, plain and chained.
 *
 * Run: `deno run -A --v8-flags=--enable-experimental-regexp-engine bench/audit_bench.ts [--rounds N] [--requests N]`
 *
 * Rounds alternate the apps (and their order), each bounded by a request
 * count and 2 s of wall time; figures are medians over rounds, and ratios
 * are medians of per-round ratios against the baseline of the same round.
 *
 * @module
 */
import { join } from "node:path";
import { PATHS } from "../lib/api/paths.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { type AuditRecord, type AuditSink, jsonLineAuditSink } from "../lib/nexus/audit.ts";
import { rootKeyAuditKeys } from "../lib/nexus/audit_key.ts";
import { type AuditOutput, openAuditOutput } from "../lib/nexus/audit_output.ts";
import { RootKeyState } from "../lib/nexus/root_key_state.ts";
import { createTestNexus, peer, type TestNexus, testRootKey } from "../lib/nexus/testing.ts";
import { formatNumber, formatRatio, markdownTable, median, numberFlag } from "./support.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");

/** Mean µs per request over up to `count` sequential calls of `call`, stopping after `maxMs`. */
async function time(call: () => Promise<{ status: number }>, count: number, maxMs: number): Promise<number> {
  const started = performance.now();
  let done = 0;
  while (done < count && performance.now() - started < maxMs) {
    const response = await call();
    if (response.status !== 200) throw new Error(`the call answered ${response.status}`);
    done++;
  }
  return ((performance.now() - started) / done) * 1000;
}

const get = (nexus: TestNexus) => () => nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "bench/db" });
const put = (nexus: TestNexus) => () =>
  nexus.call(SUPERUSER, PATHS.secrets, "", { path: "bench/put", values: { pass: "p" } });

/** A keyed chain on `file`, as `spike nexus` opens it. */
async function chained(file: string, failClosed: boolean): Promise<AuditOutput> {
  const keys = new RootKeyState();
  await keys.install(testRootKey());
  const output = await openAuditOutput(file, silentLogger, { keys: rootKeyAuditKeys(keys), failClosed });
  output.sink.keyChanged();
  return output;
}

async function main(): Promise<void> {
  const rounds = numberFlag(Deno.args, "--rounds", 7, 1, 50);
  const requests = numberFlag(Deno.args, "--requests", 5000, 100, 1_000_000);
  const dir = await Deno.makeTempDir({ prefix: "spike-audit-bench-" });
  const plainFile = await Deno.open(join(dir, "plain.log"), { append: true, create: true, mode: 0o600 });
  const encoder = new TextEncoder();
  const plainSink = jsonLineAuditSink((line) => void plainFile.writeSync(encoder.encode(line)));
  const chain = await chained(join(dir, "chain.log"), false);
  const closedChain = await chained(join(dir, "closed.log"), true);
  try {
    const apps: Array<[string, AuditSink]> = [
      ["audit records dropped (baseline)", { record() {}, sweep: () => Promise.resolve(true) }],
      ["plain JSON lines appended to a file", plainSink],
      ["keyed chain appended to a file", chain.sink],
      ["keyed chain, fail-closed (fdatasync per record)", closedChain.sink],
    ];
    const nexuses = await Promise.all(apps.map(([, sink]) => createTestNexus({ auditSink: sink })));
    for (const nexus of nexuses) {
      const seeded = await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "bench/db", values: { pass: "p" } });
      if (seeded.status !== 200) throw new Error(`seeding answered ${seeded.status}`);
      await time(get(nexus), 300, 2000); // warm-up
    }
    const getTimes = apps.map(() => [] as number[]);
    const getRatios = apps.map(() => [] as number[]);
    const putTimes = [[], []] as number[][];
    const putRatios: number[] = [];
    const [, , chainNexus, closedNexus] = nexuses;
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [...nexuses.keys()] : [...nexuses.keys()].reverse();
      const times: number[] = [];
      for (const i of order) times[i] = await time(get(nexuses[i]!), requests, 2000);
      for (const [i, t] of times.entries()) {
        getTimes[i]!.push(t);
        getRatios[i]!.push(t / times[0]!);
      }
      const puts = round % 2 === 0 ? [chainNexus!, closedNexus!] : [closedNexus!, chainNexus!];
      const putTime = new Map<TestNexus, number>();
      for (const nexus of puts) putTime.set(nexus, await time(put(nexus), requests, 2000));
      putTimes[0]!.push(putTime.get(chainNexus!)!);
      putTimes[1]!.push(putTime.get(closedNexus!)!);
      putRatios.push(putTime.get(closedNexus!)! / putTime.get(chainNexus!)!);
    }

    // One record alone: plain JSON and one append, or sealed into the chain and appended.
    const record: AuditRecord = {
      time: new Date().toISOString(),
      type: "audit",
      trail: crypto.randomUUID(),
      spiffeId: "spiffe://spike.ist/app/web",
      route: PATHS.secrets,
      action: "get",
      resource: "app/db",
      permissions: ["read"],
      status: 200,
      err: null,
      outcome: "ok",
      durationMs: 0.4,
    };
    const single = (sink: AuditSink) => {
      const samples: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const started = performance.now();
        for (let i = 0; i < requests; i++) sink.record({ ...record, trail: crypto.randomUUID() });
        samples.push(((performance.now() - started) / requests) * 1000);
      }
      return median(samples);
    };
    const plainAlone = single(plainSink);
    const chainAlone = single(chain.sink);

    console.log(
      `deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs; ` +
        `${rounds} rounds, ≤ ${requests} requests and ≤ 2 s each; files in ${dir}\n`,
    );
    console.log(markdownTable(
      ["superuser `secret get`, in process, memory store", "µs per request (median)", "÷ baseline"],
      apps.map(([name], i) => [name, formatNumber(median(getTimes[i]!), 1), formatRatio(median(getRatios[i]!))]),
      ["left", "right", "right"],
    ));
    console.log();
    console.log(markdownTable(
      ["superuser `secret put`, in process, memory store", "µs per request (median)", "÷ chain"],
      [
        ["keyed chain appended to a file", formatNumber(median(putTimes[0]!), 1), "1.00x"],
        [
          "keyed chain, fail-closed (intent + record, each synced)",
          formatNumber(median(putTimes[1]!), 1),
          formatRatio(median(putRatios)),
        ],
      ],
      ["left", "right", "right"],
    ));
    console.log();
    console.log(markdownTable(
      ["one record alone", "µs (median)"],
      [
        ["plain: id, JSON, append", formatNumber(plainAlone, 2)],
        ["chained: id, JSON, HMAC-SHA-256, SHA-256 link, append", formatNumber(chainAlone, 2)],
      ],
      ["left", "right"],
    ));
  } finally {
    plainFile.close();
    await chain.close();
    await closedChain.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
}
