/**
 * The node:https → fetch bridge alone: server CPU per request of a trivial
 * Hono app served by `lib/spiffe/mtls_server.ts` + `fetch_adapter.ts`, with
 * the server in its own process (so its CPU time is the bridge's, TLS's and
 * Hono's, not the load generator's) and mTLS clients on kept-alive
 * connections in this one.
 *
 * Run:
 * `deno run --allow-all bench/bridge_bench.ts [--quick] [--rounds N] [--requests N] [--against DIR]`
 *
 * `--against DIR` serves the same app through the bridge of another checkout
 * (e.g. `git archive main | tar -x -C DIR`) in a second process, and the
 * rounds alternate between the two, so a change to the bridge is measured
 * against its base in the same minute.
 *
 * Measured, 16 requests in flight:
 * - `GET /health`: no body
 * - `POST /echo`: a 256-byte body the app reads (every API route does)
 * - `POST /refuse`: a 256-byte body the app never reads (a refusal before
 *   the body matters: no certificate, wrong role, not ready)
 *
 * CPU per request is the server process's user + system time (from
 * `/proc/<pid>/stat`, 10 ms ticks) over the requests of one cell; the table
 * shows the median over rounds, and ratios are medians of per-round ratios.
 *
 * @module
 */
import https from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDevCa, writeSvidFiles } from "../lib/spiffe/dev_ca.ts";
import { spikeIdFor } from "../lib/spiffe/roles.ts";
import { freePort } from "../tests/support/ports.ts";
import { formatNumber, formatRatio, hasFlag, markdownTable, median, numberFlag } from "./support.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const OPS = ["GET /health", "POST /echo (body read)", "POST /refuse (body unread)"] as const;
type OpName = typeof OPS[number];
const CONCURRENCY = 16;
const BODY = "x".repeat(256);
/** Linux reports process CPU time in these ticks per second. */
const CLOCK_TICKS_PER_SECOND = 100;

/** One bridge under test: a server process and a kept-alive client agent. */
interface Target {
  readonly label: string;
  readonly pid: number;
  readonly port: number;
  readonly agent: https.Agent;
  stop(): Promise<void>;
}

/** Server CPU time (user + system) of `pid`, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) start at ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

async function startTarget(label: string, root: string, svidDir: string, client: https.AgentOptions): Promise<Target> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      `--config=${join(root, "deno.json")}`,
      join(HERE, "bridge_server.ts"),
      root,
      String(port),
      svidDir,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`${label} server exited before listening`);
    seen += value;
  }
  const agent = new https.Agent({ ...client, keepAlive: true, maxSockets: CONCURRENCY });
  return {
    label,
    pid: child.pid,
    port,
    agent,
    async stop() {
      agent.destroy();
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** One request; resolves once the answer is read whole. */
function call(target: Target, op: OpName): Promise<void> {
  const [method, path] = op.split(" ") as [string, string];
  const body = method === "POST" ? BODY : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port: target.port,
      method,
      path,
      agent: target.agent,
      headers: body ? { "content-type": "application/json", "content-length": String(body.length) } : {},
    }, (res) => {
      res.resume();
      res.once("end", resolve);
      res.once("error", reject);
    });
    req.once("error", reject);
    req.end(body);
  });
}

/** Runs `requests` calls at {@linkcode CONCURRENCY}; returns server CPU µs per request. */
async function measure(target: Target, op: OpName, requests: number): Promise<number> {
  let started = 0;
  const before = cpuSeconds(target.pid);
  const caller = async () => {
    while (started++ < requests) await call(target, op);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, caller));
  return (cpuSeconds(target.pid) - before) / requests * 1e6;
}

async function main(): Promise<void> {
  const args = Deno.args;
  const quick = hasFlag(args, "--quick");
  const rounds = numberFlag(args, "--rounds", quick ? 1 : 7, 1, 50);
  const requests = numberFlag(args, "--requests", quick ? 500 : 5000, 100, 1_000_000);
  const againstIndex = args.findIndex((a) => a === "--against");
  const against = againstIndex >= 0 ? args[againstIndex + 1] : undefined;
  if (againstIndex >= 0 && !against) throw new Error("--against needs a directory");

  const dir = await Deno.makeTempDir({ prefix: "spike_bridge_bench_" });
  const targets: Target[] = [];
  try {
    const ca = await createDevCa();
    const serverDir = join(dir, "server");
    await writeSvidFiles(serverDir, await ca.issue(spikeIdFor("nexus")));
    const client = await ca.issue(spikeIdFor("pilot_superuser"));
    const clientTls: https.AgentOptions = {
      key: new TextDecoder().decode(client.privateKeyPem),
      cert: client.certChainPem,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    };
    targets.push(await startTarget("this checkout", join(HERE, ".."), serverDir, clientTls));
    if (against) targets.push(await startTarget(against, against, serverDir, clientTls));

    // Warm-up: JIT and connections, not measured.
    for (const target of targets) for (const op of OPS) await measure(target, op, Math.min(requests, 1000));

    const cpu = new Map<string, number[]>();
    const ratios = new Map<OpName, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const op of OPS) {
        // Alternate which bridge goes first, so neither always runs on a warmer machine.
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        const perRequest = new Map<Target, number>();
        for (const target of order) perRequest.set(target, await measure(target, op, requests));
        for (const [target, micros] of perRequest) {
          const key = `${target.label}\u0000${op}`;
          cpu.set(key, [...(cpu.get(key) ?? []), micros]);
        }
        if (targets.length === 2) {
          ratios.set(op, [...(ratios.get(op) ?? []), perRequest.get(targets[0]!)! / perRequest.get(targets[1]!)!]);
        }
      }
    }

    const header = ["request", ...targets.map((t) => `server CPU µs/req (${t.label})`)];
    if (targets.length === 2) header.push("this / against");
    const rows = OPS.map((op) => {
      const row = [op, ...targets.map((t) => formatNumber(median(cpu.get(`${t.label}\u0000${op}`) ?? []), 0))];
      if (targets.length === 2) row.push(formatRatio(median(ratios.get(op) ?? [])));
      return row;
    });
    console.log(
      `Server CPU per request, ${CONCURRENCY} in flight over kept-alive mTLS connections, ` +
        `${requests} requests per cell, median of ${rounds} round(s).\n`,
    );
    console.log(markdownTable(header, rows, ["left", ...header.slice(1).map(() => "right" as const)]));
  } finally {
    for (const target of targets) await target.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
