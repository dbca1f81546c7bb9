/**
 * A CPU profile of our Nexus under one load: the stack of the side-by-side
 * benchmark (SQLite, three Keepers, bootstrapped, run as the installed
 * command runs it) with `--cpu-prof` on Nexus, driven by the Go load
 * generator; the profile is written when Nexus stops and summarized with
 * `bench/cpu_profile_summary.ts`.
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/nexus_profile.ts [--cell get|put|handshake] [--conns N] [--seconds S] [--out DIR] [--top N] [--flags "<deno flags for Nexus>"]`
 *
 * The profile also holds start-up and the seeding of 100 secrets; keep
 * `--seconds` well above one so the load dominates.
 *
 * @module
 */
import { join } from "node:path";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { mintBenchIdentities, seedSecrets, startOurStack, superuserClient } from "./bench_stack.ts";
import { type CpuProfile, formatSummary, summarizeProfile } from "./cpu_profile_summary.ts";
import { ensureLoadgen, runLoadgen, secretGetArgs, secretPutArgs } from "./loadgen_build.ts";
import { numberFlag } from "./support.ts";

const SECRETS = 100;
const NEXUS_ID = "spiffe://spike.ist/spike/nexus";

function stringFlag(args: readonly string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
}

async function main(): Promise<void> {
  const args = Deno.args;
  const cell = stringFlag(args, "--cell", "get");
  if (!["get", "put", "handshake"].includes(cell)) throw new Error("--cell must be get, put or handshake");
  const conns = numberFlag(args, "--conns", 16, 1, 256);
  const seconds = numberFlag(args, "--seconds", 10, 1, 120);
  const top = numberFlag(args, "--top", 40, 1, 1000);
  const extra = stringFlag(args, "--flags", "").split(/\s+/).filter(Boolean);
  const out = stringFlag(args, "--out", await Deno.makeTempDir({ prefix: "spike-profile-" }));
  const loadgen = await ensureLoadgen();
  const dir = await Deno.makeTempDir({ prefix: "spike-profile-stack-" });
  const ids = await mintBenchIdentities(dir);
  const stack = await startOurStack(dir, ids, {
    extraNexusEnv: { SPIKE_LOG_LEVEL: "info" },
    nexusDenoFlags: ["--cpu-prof", `--cpu-prof-dir=${out}`, "--cpu-prof-interval=250", ...extra],
  });
  try {
    const client = superuserClient(ids.byName.get("pilot-superuser")!, 30_000);
    try {
      const nexus = new NexusClient(stack.nexusUrl, client);
      await seedSecrets(nexus, SECRETS, (i) => `bench/s-${i}`);
    } finally {
      client.close();
    }
    const common = ["-svid-dir", ids.dirOf("pilot-superuser"), "-server-id", NEXUS_ID];
    const cellArgs = cell === "put"
      ? secretPutArgs(stack.nexusUrl, "bench/new-{i}")
      : [...secretGetArgs(stack.nexusUrl, SECRETS), ...(cell === "handshake" ? ["-new-conn"] : [])];
    const result = await runLoadgen(loadgen, [
      ...cellArgs,
      ...common,
      "-server-pid",
      String(stack.nexus().pid),
      "-conns",
      String(conns),
      "-duration",
      `${seconds}s`,
    ]);
    console.log(JSON.stringify(result));
  } finally {
    await stack.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const files = [...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error(`no profile in ${out}`);
  const newest = files.map((e) => join(out, e.name)).sort((a, b) =>
    Deno.statSync(b).mtime!.getTime() - Deno.statSync(a).mtime!.getTime()
  )[0]!;
  console.log(`profile: ${newest}`);
  const profile = JSON.parse(await Deno.readTextFile(newest)) as CpuProfile;
  console.log(formatSummary(summarizeProfile(profile), top));
}

if (import.meta.main) {
  await main();
}
