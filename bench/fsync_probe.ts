/**
 * What one fsync costs on a given disk: rewrites 4 KiB at the start of a
 * scratch file and `fdatasync`s it, one at a time, on the calling thread
 * (so nothing but the disk and the kernel is timed). The write benchmarks
 * run it in the data directory between their cells, to set a durable
 * write's latency against the disk's own floor in the same run.
 *
 * `probeCommitFsync` times the fsync a lone SQLite commit actually needs:
 * the WAL frames of one `secret put` (four pages of 4,096 bytes, each with
 * its 24-byte frame header: strace of a put) written over an existing
 * 4 MiB file, moving on through it write by write, as SQLite reuses its WAL
 * from the start after each checkpoint; then `fdatasync`. More bytes, and
 * not block-aligned, so it costs more than the 4 KiB rewrite.
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

/** Bytes of one WAL frame: a 24-byte header and a 4,096-byte page. */
const WAL_FRAME_BYTES = 24 + 4096;

/** How far the commit probe moves through its file before it starts over (SQLite's default WAL before a checkpoint: 1,000 pages). */
const WAL_SPAN_BYTES = 1000 * WAL_FRAME_BYTES;

/** Times `count` writes of `frames` WAL frames over an existing file + fdatasync, in `dir` (milliseconds). */
export function probeCommitFsync(dir: string, count = 200, frames = 4): LatencySummary {
  const file = join(dir, `fsync-commit-probe-${crypto.randomUUID()}`);
  const commit = crypto.getRandomValues(new Uint8Array(frames * WAL_FRAME_BYTES));
  const handle = Deno.openSync(file, { read: true, write: true, createNew: true, mode: 0o600 });
  const samples: number[] = [];
  try {
    // The file exists at its full size first (untimed): the timed writes overwrite, as a reused WAL does.
    handle.writeSync(new Uint8Array(WAL_SPAN_BYTES + commit.length));
    handle.syncSync();
    let offset = 0;
    for (let i = 0; i < count; i++) {
      commit[0] = i & 0xff;
      handle.seekSync(offset, Deno.SeekMode.Start);
      const started = performance.now();
      let written = 0;
      while (written < commit.length) written += handle.writeSync(commit.subarray(written));
      handle.syncDataSync();
      samples.push(performance.now() - started);
      offset = (offset + commit.length) % WAL_SPAN_BYTES;
    }
  } finally {
    handle.close();
    Deno.removeSync(file);
  }
  return summarize(samples);
}
