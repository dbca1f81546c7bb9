/**
 * What moving a secret write to the SQLite worker costs as a message: the
 * structured clone of a `batch` request holding one `writeSecret` (a record
 * with 1, 3 or 10 kept versions of ~120 sealed bytes each), and posting and
 * receiving it over a `MessageChannel` (one thread, so no wake-up is timed).
 * Answers whether encoding the record into one transferred `ArrayBuffer`
 * could matter next to the ~500 µs of CPU a put costs (issue 12, item 2).
 *
 * Run: `deno run -A bench/worker_message_bench.ts [--quick] [--rounds 5] [--count 20000]`
 * (`--quick`: 1 round of 2,000). Results: docs/BENCHMARKS.md, "Durable writes".
 *
 * @module
 */
import type { SecretRecord } from "../lib/store/types.ts";
import { formatNumber, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

function writeMessage(versions: number) {
  const now = new Date();
  const record: SecretRecord = {
    revision: 0,
    currentVersion: versions,
    oldestVersion: 1,
    createdTime: now,
    updatedTime: now,
    maxVersions: 10,
    versions: new Map(
      Array.from({ length: versions }, (_, i) => [
        i + 1,
        {
          version: i + 1,
          createdTime: now,
          deletedTime: null,
          sealed: crypto.getRandomValues(new Uint8Array(120)),
          keyVersion: 1,
        },
      ]),
    ),
  };
  return { type: "batch", id: 1, calls: [{ name: "writeSecret", args: ["bench/new-1-12345", versions - 1, record] }] };
}

function cloneMicros(message: unknown, count: number): number {
  const started = performance.now();
  for (let i = 0; i < count; i++) structuredClone(message);
  return ((performance.now() - started) / count) * 1000;
}

async function postMicros(message: unknown, count: number): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  try {
    let received = 0;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      port2.onmessage = () => {
        if (++received === count) resolve();
      };
      for (let i = 0; i < count; i++) port1.postMessage(message);
    });
    return ((performance.now() - started) / count) * 1000;
  } finally {
    port1.close();
    port2.close();
  }
}

async function main(): Promise<void> {
  const quick = hasFlag(Deno.args, "--quick");
  const rounds = numberFlag(Deno.args, "--rounds", quick ? 1 : 5, 1, 50);
  const count = numberFlag(Deno.args, "--count", quick ? 2000 : 20000, 100, 1_000_000);
  const rows: string[][] = [];
  for (const versions of [1, 3, 10]) {
    const message = writeMessage(versions);
    const clone: number[] = [];
    const post: number[] = [];
    cloneMicros(message, count); // warm-up
    await postMicros(message, Math.min(count, 5000));
    for (let r = 0; r < rounds; r++) {
      clone.push(cloneMicros(message, count));
      post.push(await postMicros(message, Math.min(count, 5000)));
    }
    rows.push([String(versions), formatNumber(median(clone), 1), formatNumber(median(post), 1)]);
  }
  console.log(
    `One writeSecret as a worker message, median of ${rounds} rounds (load average ${
      Deno.loadavg().map((n) => formatNumber(n, 2)).join(" ")
    }):\n\n` +
      markdownTable(
        ["kept versions", "structuredClone µs", "postMessage + receive µs"],
        rows,
        ["right", "right", "right"],
      ),
  );
}

if (import.meta.main) await main();
