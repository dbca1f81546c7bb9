/**
 * Start-up of this tree against another checkout, each on its own stack
 * (own data directory, Keepers and key), so trees whose database schemas
 * differ compare fairly; `startup_bench.ts --baseline` instead restarts the
 * other tree's Nexus on this tree's data.
 *
 * Per pass and tree: a fresh stack (SQLite, three Keepers, threshold 2, a
 * bootstrapped key, one secret), Nexus restarted `--restarts` times (SIGTERM)
 * until the first secret read (wall and CPU time of all its threads, and
 * its start-up phases), then `spike secret get` spawn to exit as often.
 * The trees alternate pass by pass, so both see the same machine. A tool
 * like `checkout_ab.ts`, not run by `deno task bench` (it needs the other
 * checkout), hence not named `*_bench.ts`.
 *
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/startup_trees_ab.ts --other DIR [--passes N] [--restarts N]`
 *
 * @module
 */
import { NexusClient } from "../lib/client/nexus_client.ts";
import { STARTUP_MESSAGE } from "../lib/log/startup.ts";
import {
  BENCH_SECRET,
  mintBenchIdentities,
  pollUntil,
  REPO_ROOT,
  startOurStack,
  superuserClient,
} from "./bench_stack.ts";
import { formatNumber, formatRatio, markdownTable, median, numberFlag, processCpuMs } from "./support.ts";

/** Samples of one tree, by row name. */
type Samples = Map<string, number[]>;

function record(samples: Samples, key: string, value: number): void {
  const list = samples.get(key) ?? [];
  list.push(value);
  samples.set(key, list);
}

/** One pass over `root`: a fresh stack, `restarts` Nexus restarts and as many `secret get` runs. */
async function pass(root: string, restarts: number, samples: Samples): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spike-startup-trees-" });
  const ids = await mintBenchIdentities(dir);
  const stack = await startOurStack(dir, ids, { root });
  const transport = superuserClient(ids.byName.get("pilot-superuser")!, 2000);
  try {
    const nexus = new NexusClient(stack.nexusUrl, transport);
    for (let i = 0; i < restarts; i++) {
      const process = await stack.restartNexus("SIGTERM");
      const at = await pollUntil(
        async () => (await nexus.getSecret(BENCH_SECRET)).username === "bench",
        "nexus ready",
        60_000,
        2,
        process,
      );
      record(samples, "Nexus restart to first secret read, ms", at - process.spawnedAt);
      record(samples, "— its CPU time (all threads), ms", processCpuMs(process.pid));
      // The marks of this start are logged by now; let the log lines arrive.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const seen = new Set<string>();
      for (const line of process.lines) {
        if (!line.startsWith("{")) continue;
        try {
          const entry = JSON.parse(line);
          if (entry.message !== STARTUP_MESSAGE || seen.has(entry.phase)) continue;
          seen.add(entry.phase);
          record(samples, `phase: ${entry.phase}, ms since runtime start`, entry.ms);
        } catch {
          // Not a log line.
        }
      }
    }
    const cli = stack.cli(["secret", "get", BENCH_SECRET]);
    for (let i = 0; i < restarts; i++) {
      const started = performance.now();
      const output = await new Deno.Command(cli.executable, {
        args: cli.args,
        env: cli.env,
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!output.success) throw new Error(`secret get failed: ${new TextDecoder().decode(output.stderr)}`);
      record(samples, "`spike secret get` (SVID files), spawn to exit, ms", performance.now() - started);
    }
  } finally {
    transport.close();
    await stack.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function main(): Promise<void> {
  const args = Deno.args;
  const otherAt = args.indexOf("--other");
  const other = otherAt >= 0 ? args[otherAt + 1] : undefined;
  if (!other) throw new Error("--other DIR (another checkout, e.g. `git archive <commit>` unpacked) is required");
  const passes = numberFlag(args, "--passes", 2, 1, 20);
  const restarts = numberFlag(args, "--restarts", 7, 1, 50);
  const loadBefore = Deno.loadavg();
  const ours: Samples = new Map();
  const theirs: Samples = new Map();
  for (let i = 0; i < passes; i++) {
    // The other tree first on odd passes, so neither always runs on a warmer machine.
    const order: [string, Samples][] = i % 2 === 0
      ? [[other, theirs], [REPO_ROOT, ours]]
      : [[REPO_ROOT, ours], [other, theirs]];
    for (const [root, samples] of order) {
      console.error(`startup_trees_ab: pass ${i + 1}/${passes}, ${root}`);
      await pass(root, restarts, samples);
    }
  }
  const loadAfter = Deno.loadavg();
  const rows = [...ours.keys()].map((key) => {
    const a = median(ours.get(key)!);
    const b = theirs.has(key) ? median(theirs.get(key)!) : undefined;
    return [key, formatNumber(a, 1), b === undefined ? "–" : formatNumber(b, 1), b ? formatRatio(a / b) : ""];
  });
  console.log(
    `Start-up of two trees, ${passes} alternating pass(es) of ${restarts} restarts and CLI runs each; medians. ` +
      `Load average before: ${loadBefore.map((n) => n.toFixed(2)).join(" ")}, after: ${
        loadAfter.map((n) => n.toFixed(2)).join(" ")
      }. Other tree: ${other}.\n`,
  );
  console.log(
    markdownTable(["what", "this tree", "other tree", "this ÷ other"], rows, ["left", "right", "right", "right"]),
  );
}

if (import.meta.main) await main();
