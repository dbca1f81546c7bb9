/**
 * One change, measured (a tool, not run by `deno task bench`: it needs the
 * checkouts to compare): our stack (SQLite, three Keepers, bootstrapped, run
 * as the installed command runs it) started from each of several checkouts,
 * and `secret get` of 100 secrets driven against each in interleaved rounds
 * by the Go load generator. Prints, per checkout, the median server CPU per
 * request and req/s, each with the median of same-round ratios against the
 * first checkout (req/s shows what moving work to another thread buys,
 * which CPU per request cannot).
 *
 * Run:
 * `deno run --allow-all --v8-flags=--enable-experimental-regexp-engine bench/checkout_ab.ts [--rounds N] [--seconds S] [--handshakes] <checkout> <checkout>...`
 *
 * Make the checkouts with `git archive <commit> | tar -x -C <dir>` (or
 * patch a copy to switch one thing off). `--handshakes` opens a connection
 * per request (1 and 8 in flight) instead of keeping 1 and 16 alive.
 *
 * Each stack is one set of processes for the whole run, and processes
 * differ by themselves (heap layout, JIT decisions): give the first
 * checkout twice (first and last) and read the last one's ratio as the
 * noise of the run. On the development machine that noise was 0.99–1.08x.
 *
 * @module
 */
import { NexusClient } from "../lib/client/nexus_client.ts";
import { type BenchStack, mintBenchIdentities, seedSecrets, startOurStack, superuserClient } from "./bench_stack.ts";
import { ensureLoadgen, runLoadgen, secretGetArgs } from "./loadgen_build.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

const SECRETS = 100;
const NEXUS_ID = "spiffe://spike.ist/spike/nexus";

async function main(): Promise<void> {
  const args = Deno.args;
  const rounds = numberFlag(args, "--rounds", 10, 1, 100);
  const seconds = numberFlag(args, "--seconds", 2, 0.2, 60);
  const handshakes = hasFlag(args, "--handshakes");
  const checkouts = args.filter((arg, i) => !arg.startsWith("--") && !["--rounds", "--seconds"].includes(args[i - 1]!));
  if (checkouts.length < 2) throw new Error("give at least two checkouts (the first is the reference)");
  const connections = handshakes ? [1, 8] : [1, 16];
  const loadBefore = Deno.loadavg();
  const loadgen = await ensureLoadgen();
  const dir = await Deno.makeTempDir({ prefix: "spike-checkout-ab-" });
  const stacks: BenchStack[] = [];
  try {
    const ids = await mintBenchIdentities(dir);
    for (const [i, root] of checkouts.entries()) {
      console.error(`checkout_ab: starting ${root}`);
      await Deno.mkdir(`${dir}/${i}`);
      stacks.push(await startOurStack(`${dir}/${i}`, ids, { root, extraNexusEnv: { SPIKE_LOG_LEVEL: "info" } }));
    }
    for (const stack of stacks) {
      const client = superuserClient(ids.byName.get("pilot-superuser")!, 30_000);
      try {
        const nexus = new NexusClient(stack.nexusUrl, client);
        await seedSecrets(nexus, SECRETS, (i) => `bench/s-${i}`);
      } finally {
        client.close();
      }
    }
    const cpu = new Map<string, number[]>();
    const rate = new Map<string, number[]>();
    for (let round = 0; round <= rounds; round++) {
      console.error(`checkout_ab: ${round === 0 ? "warm-up" : `round ${round}/${rounds}`}`);
      for (const conns of connections) {
        const order = round % 2 === 1 ? [...stacks.keys()].reverse() : [...stacks.keys()];
        for (const i of order) {
          const stack = stacks[i]!;
          const result = await runLoadgen(loadgen, [
            ...secretGetArgs(stack.nexusUrl, SECRETS),
            "-svid-dir",
            ids.dirOf("pilot-superuser"),
            "-server-id",
            NEXUS_ID,
            "-server-pid",
            String(stack.nexus().pid),
            "-conns",
            String(conns),
            ...(handshakes ? ["-new-conn"] : []),
            "-duration",
            round === 0 ? "0.5s" : `${seconds}s`,
          ]);
          if (round === 0) continue;
          const key = `${i}|${conns}`;
          cpu.set(key, [...(cpu.get(key) ?? []), result.server_cpu_us_per_request ?? NaN]);
          rate.set(key, [...(rate.get(key) ?? []), result.rps]);
        }
      }
    }
    const loadAfter = Deno.loadavg();
    console.log(
      `secret get${handshakes ? " on a new connection each" : ""}, ${rounds} interleaved round(s) of ` +
        `${formatNumber(seconds, 1)} s; load average before ${loadBefore.map((n) => formatNumber(n, 2)).join(" ")}, ` +
        `after ${loadAfter.map((n) => formatNumber(n, 2)).join(" ")}.\n`,
    );
    console.log(markdownTable(
      [
        "checkout",
        ...connections.flatMap((c) => [`c=${c} CPU µs/req`, "÷ first", `c=${c} req/s`, "÷ first"]),
      ],
      checkouts.map((root, i) => [
        root,
        ...connections.flatMap((c) =>
          [cpu, rate].flatMap((measure) => {
            const own = measure.get(`${i}|${c}`)!;
            const reference = measure.get(`0|${c}`)!;
            return [formatNumber(median(own), 0), formatRatio(median(own.map((x, k) => x / reference[k]!)))];
          })
        ),
      ]),
      ["left", ...connections.flatMap(() => ["right", "right", "right", "right"] as const)],
    ));
  } finally {
    for (const stack of stacks) await stack.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  await main();
}
