/**
 * What the entropy warm-up (`cmd/entropy_warmup.ts`) buys a fresh process:
 * each round spawns probes that spend a fixed time of main-thread work
 * (standing in for module loading) and then make one mTLS connection to a
 * local server, with and without the warm-up started first. Reported per
 * variant (medians over rounds): the connection's wall time, the process's
 * wall time from its first line to connected, and the CPU time of its main
 * thread and of its other threads. Without the warm-up, the first
 * handshake seeds AWS-LC's randomness (CPU jitter entropy) on the main
 * thread; with it, another thread did that during the main-thread work.
 *
 * Run: `deno run -A bench/entropy_warmup_bench.ts [--quick] [--rounds 15] [--work-ms 50]`
 *
 * @module
 */
import { mintBenchIdentities } from "./bench_stack.ts";
import { startHandshakeServer } from "./handshake_server.ts";
import { formatNumber, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

/** One probe process: optional warm-up, `work` ms of main-thread work, one mTLS connection; prints timings as JSON. */
const PROBE = `
import { startEntropyWarmup } from ${JSON.stringify(new URL("../cmd/entropy_warmup.ts", import.meta.url).href)};
const [dir, port, variant, workMs] = Deno.args;
const started = performance.now();
if (variant === "warm-up") startEntropyWarmup(["secret"]);
const until = performance.now() + Number(workMs);
while (performance.now() < until) { /* main-thread work */ }
const read = (name) => Deno.readTextFileSync(dir + "/" + name);
const connectStarted = performance.now();
const conn = await Deno.connectTls({
  hostname: "127.0.0.1", port: Number(port), caCerts: [read("svid_bundle.pem")],
  cert: read("svid.pem"), key: read("svid_key.pem"),
});
// The server's SVID names no host, so verification ends in an error after the handshake's work is done.
await conn.handshake().catch(() => {});
try { conn.close(); } catch { /* closed by the failed verification */ }
const connected = performance.now();
let main = 0, others = 0;
for (const task of Deno.readDirSync("/proc/self/task")) {
  const ns = Number(Deno.readTextFileSync("/proc/self/task/" + task.name + "/schedstat").split(" ")[0]);
  if (task.name === String(Deno.pid)) main += ns; else others += ns;
}
console.log(JSON.stringify({ connectMs: connected - connectStarted, totalMs: connected - started, mainCpuMs: main / 1e6, otherCpuMs: others / 1e6 }));
`;

interface ProbeResult {
  readonly connectMs: number;
  readonly totalMs: number;
  readonly mainCpuMs: number;
  readonly otherCpuMs: number;
}

async function main(): Promise<void> {
  const args = Deno.args;
  const rounds = numberFlag(args, "--rounds", hasFlag(args, "--quick") ? 3 : 15, 1, 200);
  const workMs = numberFlag(args, "--work-ms", 50, 0, 1000);
  const dir = await Deno.makeTempDir({ prefix: "spike-entropy-" });
  const ids = await mintBenchIdentities(dir);
  const server = await startHandshakeServer(ids.dirOf("nexus"));
  const clientDir = ids.dirOf("pilot-superuser");
  const probe = `${dir}/probe.mjs`;
  await Deno.writeTextFile(probe, PROBE);
  const variants = ["cold", "warm-up"] as const;
  const samples = new Map<string, ProbeResult[]>(variants.map((v) => [v, []]));
  const loadBefore = Deno.loadavg();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
        const output = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", probe, clientDir, String(server.port), variant, String(workMs)],
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (!output.success) throw new Error(`probe failed: ${new TextDecoder().decode(output.stderr)}`);
        samples.get(variant)!.push(JSON.parse(new TextDecoder().decode(output.stdout)));
      }
    }
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const loadAfter = Deno.loadavg();
  const med = (variant: string, field: keyof ProbeResult) => median(samples.get(variant)!.map((s) => s[field]));
  console.log(
    `Entropy warm-up, ${rounds} round(s) of fresh processes (median): ${workMs} ms of main-thread work, then one ` +
      `mTLS connection. Load average before: ${loadBefore.map((n) => formatNumber(n, 2)).join(" ")}, after: ${
        loadAfter.map((n) => formatNumber(n, 2)).join(" ")
      }.\n`,
  );
  console.log(markdownTable(
    ["variant", "connection ms", "start to connected ms", "main thread CPU ms", "other threads CPU ms"],
    variants.map((v) => [
      v,
      formatNumber(med(v, "connectMs"), 1),
      formatNumber(med(v, "totalMs"), 1),
      formatNumber(med(v, "mainCpuMs"), 1),
      formatNumber(med(v, "otherCpuMs"), 1),
    ]),
    ["left", "right", "right", "right", "right"],
  ));
}

if (import.meta.main) {
  await main();
}
