/**
 * What the audit trail costs a request: the same Nexus app (memory store,
 * in process, no TLS, so the audit write is as large a share of a request
 * as it can be) answering the Pilot superuser's `secret get`, once with its
 * audit records appended to a file (what `SPIKE_NEXUS_AUDIT_LOG=<file>`
 * does) and once with records dropped. Also the cost of one record alone.
 *
 * Run: `deno run -A --v8-flags=--enable-experimental-regexp-engine bench/audit_bench.ts [--rounds N] [--requests N]`
 *
 * Rounds alternate the two apps (and their order), each round bounded by a
 * request count and 2 s of wall time; figures are medians over rounds, and
 * the ratio is the median of per-round ratios.
 *
 * @module
 */
import { join } from "node:path";
import { PATHS } from "../lib/api/paths.ts";
import { silentLogger } from "../lib/log/logger.ts";
import type { AuditRecord } from "../lib/nexus/audit.ts";
import { openAuditOutput } from "../lib/nexus/audit_output.ts";
import { createTestNexus, peer, type TestNexus } from "../lib/nexus/testing.ts";
import { formatNumber, formatRatio, markdownTable, median, numberFlag } from "./support.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");

/** Mean µs per request over up to `count` sequential gets, stopping after `maxMs`. */
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

async function main(): Promise<void> {
  const rounds = numberFlag(Deno.args, "--rounds", 7, 1, 50);
  const requests = numberFlag(Deno.args, "--requests", 5000, 100, 1_000_000);
  const dir = await Deno.makeTempDir({ prefix: "spike-audit-bench-" });
  const output = await openAuditOutput(join(dir, "audit.log"), silentLogger);
  try {
    const withFile = await createTestNexus({ auditSink: output.sink });
    const dropped = await createTestNexus({ auditSink: { record() {} } });
    for (const nexus of [withFile, dropped]) {
      const put = await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "bench/db", values: { pass: "p" } });
      if (put.status !== 200) throw new Error(`seeding answered ${put.status}`);
      await timeGets(nexus, 500, 2000); // warm-up
    }
    const fileTimes: number[] = [];
    const droppedTimes: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [withFile, dropped] : [dropped, withFile];
      const times = new Map<TestNexus, number>();
      for (const nexus of order) times.set(nexus, await timeGets(nexus, requests, 2000));
      fileTimes.push(times.get(withFile)!);
      droppedTimes.push(times.get(dropped)!);
      ratios.push(times.get(withFile)! / times.get(dropped)!);
    }

    // One record alone: a fresh trail id, JSON, one append.
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
    const recordTimes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const started = performance.now();
      for (let i = 0; i < requests; i++) output.sink.record({ ...record, trail: crypto.randomUUID() });
      recordTimes.push(((performance.now() - started) / requests) * 1000);
    }

    console.log(
      `deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} CPUs; ` +
        `${rounds} rounds, ≤ ${requests} requests and ≤ 2 s each\n`,
    );
    console.log(markdownTable(
      ["superuser `secret get`, in process, memory store", "µs per request (median)"],
      [
        ["audit records appended to a file", formatNumber(median(fileTimes), 1)],
        ["audit records dropped", formatNumber(median(droppedTimes), 1)],
        ["file ÷ dropped (median of per-round ratios)", formatRatio(median(ratios))],
        ["one record alone (id, JSON, append)", formatNumber(median(recordTimes), 2)],
      ],
      ["left", "right"],
    ));
  } finally {
    await output.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
}
