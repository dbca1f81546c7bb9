/**
 * What one fsync costs on a given disk: rewrites 4 KiB at the start of a
 * scratch file and `fdatasync`s it, one at a time, on the calling thread
 * (so nothing but the disk and the kernel is timed). The write benchmarks
 * run it in the data directory between their cells, to set a durable
 * write's latency against the disk's own floor in the same run.
 *
 * @module
 */
import { join } from "node:path";
import { type LatencySummary, summarize } from "./support.ts";

/** Times `count` rewrite+fdatasync pairs of a 4 KiB block in `dir` (milliseconds). */
export function probeFsync(dir: string, count = 200): LatencySummary {
  const file = join(dir, `fsync-probe-${crypto.randomUUID()}`);
  const block = crypto.getRandomValues(new Uint8Array(4096));
  const handle = Deno.openSync(file, { read: true, write: true, createNew: true, mode: 0o600 });
  const samples: number[] = [];
  try {
    // The first sync also makes the new file's size and directory entry durable: untimed.
    handle.writeSync(block);
    handle.syncSync();
    for (let i = 0; i < count; i++) {
      handle.seekSync(0, Deno.SeekMode.Start);
      block[0] = i & 0xff;
      const started = performance.now();
      handle.writeSync(block);
      handle.syncDataSync();
      samples.push(performance.now() - started);
    }
  } finally {
    handle.close();
    Deno.removeSync(file);
  }
  return summarize(samples);
}
