/**
 * Runs every benchmark in `bench/` (each `*_bench.ts`), one after the other
 * in its own process, so one benchmark's JIT state, heap and open sockets
 * never colour another's numbers.
 *
 * Run: `deno task bench [--quick] [name ...]`
 *
 * - `--quick`: a short run of each benchmark, to check they work (rough numbers).
 * - `name`: only the benchmarks whose file name contains one of these words.
 *
 * Prints the machine first (CPU count, load, Deno version), then each
 * benchmark's own Markdown output. Exits non-zero when a benchmark fails.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { formatNumber, hasFlag } from "./support.ts";

/** Flags every benchmark child runs with (Nexus needs the linear-time regex engine). */
export const CHILD_FLAGS: readonly string[] = Object.freeze([
  "run",
  "--allow-all",
  "--v8-flags=--enable-experimental-regexp-engine",
]);

/** What `--quick` becomes for benchmarks that do not take `--quick` themselves. */
const QUICK_ARGS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  "aead_bench.ts": ["--rounds", "1"],
  "audit_bench.ts": ["--rounds", "1", "--requests", "500"],
  "jitless_bench.ts": ["--rounds", "1", "--requests", "200"],
  "audit_table_bench.ts": ["--rounds", "1", "--requests", "300"],
  "metrics_bench.ts": ["--rounds", "1", "--requests", "500"],
});

/** The benchmark files in `dir`, sorted by name. */
export async function findBenchmarks(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith("_bench.ts")) names.push(entry.name);
  }
  return names.sort();
}

/** Arguments for one benchmark child. */
export function childArgs(dir: string, name: string, quick: boolean): string[] {
  const extra = quick ? [...(QUICK_ARGS[name] ?? ["--quick"])] : [];
  return [...CHILD_FLAGS, `${dir}/${name}`, ...extra];
}

function describeMachine(): string {
  let cpu = "unknown CPU";
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    if (model) cpu = model[1]!.trim();
  } catch {
    // Not Linux, or not readable: the CPU model is a nicety.
  }
  const load = Deno.build.os === "windows" ? "n/a" : Deno.loadavg().map((n) => formatNumber(n, 2)).join(" ");
  return `${navigator.hardwareConcurrency} CPUs (${cpu}), load average ${load}, ` +
    `deno ${Deno.version.deno}, v8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}`;
}

async function main(): Promise<number> {
  const args = Deno.args;
  const quick = hasFlag(args, "--quick");
  const filters = args.filter((a) => !a.startsWith("--"));
  const dir = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");
  const selected = (await findBenchmarks(dir)).filter((name) =>
    filters.length === 0 || filters.some((f) => name.includes(f))
  );
  if (selected.length === 0) {
    console.error(`no benchmark in ${dir} matches ${filters.join(", ")}`);
    return 2;
  }

  console.log(`# Benchmarks${quick ? " (--quick)" : ""}\n\n${describeMachine()}\n`);
  const failed: string[] = [];
  for (const name of selected) {
    const argv = childArgs(dir, name, quick);
    console.log(`## ${name}\n\n\`deno ${argv.join(" ").replace(`${dir}/`, "bench/")}\`\n`);
    const started = performance.now();
    // Output goes straight through, so long runs show progress as they go.
    const status = await new Deno.Command(Deno.execPath(), { args: argv, stdout: "inherit", stderr: "inherit" }).spawn()
      .status;
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `\n(${name}: ${status.success ? "done" : `FAILED, exit ${status.code}`} in ${formatNumber(seconds, 1)} s)\n`,
    );
    if (!status.success) failed.push(name);
  }
  if (failed.length > 0) console.error(`failed: ${failed.join(", ")}`);
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main());
}
