/**
 * The Go load generator against the ceiling server, both real processes
 * over real mTLS: it counts requests and the server's CPU, and refuses a
 * server whose SPIFFE ID is not the one asked for.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createDevCa, writeSvidFiles } from "../lib/spiffe/dev_ca.ts";
import { BenchProcess, pollUntil, REPO_ROOT } from "./bench_stack.ts";
import { ensureLoadgen, runLoadgen } from "./loadgen_build.ts";
import { freePort } from "../tests/support/ports.ts";

Deno.test("loadgen drives the ceiling server over mTLS and measures its CPU; a wrong server ID is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_loadgen_" });
  const ca = await createDevCa();
  await writeSvidFiles(join(dir, "server"), await ca.issue("spiffe://spike.ist/spike/nexus"));
  await writeSvidFiles(join(dir, "client"), await ca.issue("spiffe://spike.ist/spike/pilot/role/superuser"));
  const port = freePort();
  const server = new BenchProcess("ceiling", Deno.execPath(), [
    "run",
    `--config=${join(REPO_ROOT, "deno.json")}`,
    "--allow-all",
    join(REPO_ROOT, "bench/ceiling_server.ts"),
    join(dir, "server"),
    String(port),
  ], {});
  try {
    const loadgen = await ensureLoadgen();
    await pollUntil(
      () => Promise.resolve(server.lines.some((l) => l.startsWith("listening"))),
      "listening",
      60_000,
      20,
      server,
    );
    const common = ["-svid-dir", join(dir, "client"), "-method", "POST", "-body", `{"path":"bench/s-{i}"}`];
    const url = `https://127.0.0.1:${port}/v1/store/secrets?action=get`;
    const result = await runLoadgen(loadgen, [
      ...common,
      "-url",
      url,
      "-server-id",
      "spiffe://spike.ist/spike/nexus",
      "-server-pid",
      String(server.pid),
      "-conns",
      "2",
      "-duration",
      "5s",
      "-requests",
      "300",
    ]);
    assert.equal(result.errors, 0, result.first_error ?? "");
    assert.equal(result.requests, 300, "the count bound stops the run");
    assert.ok(result.rps > 0 && result.p50_ms > 0 && result.p99_ms >= result.p50_ms);
    assert.ok(result.server_cpu_ms! > 0, "the server used CPU for 300 requests");
    assert.ok(result.server_cpu_us_per_request! > 0);

    await assert.rejects(
      runLoadgen(loadgen, [
        ...common,
        "-url",
        url,
        "-server-id",
        "spiffe://spike.ist/spike/keeper/1",
        "-requests",
        "1",
      ]),
      /server is not spiffe:\/\/spike\.ist\/spike\/keeper\/1/,
    );
  } finally {
    await server.kill("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});
