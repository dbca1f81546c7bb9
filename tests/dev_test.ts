/**
 * `spike dev` smoke test: start, wait for `ready`, use `pilot.env` with the
 * real CLI, stop with SIGTERM, start again on the same directory, and read
 * the same secret back.
 */
import assert from "node:assert/strict";
import { freePort, runSpike, SpikeProcess } from "./support/process.ts";

/** Parses the `export NAME='value'` lines of pilot.env. */
async function readPilotEnv(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await Deno.readTextFile(file)).split("\n")) {
    const match = /^export ([A-Z_]+)='(.*)'$/.exec(line);
    if (match) env[match[1]!] = match[2]!.replaceAll(`'"'"'`, "'");
  }
  return env;
}

Deno.test("spike dev: start, use, stop, start again with the same secrets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike-dev-test-" });
  const ports = [freePort(), freePort(), freePort(), freePort()];
  const args = ["dev", "--dir", dir, "--nexus-port", String(ports[0]), "--keeper-ports", ports.slice(1).join(",")];
  try {
    const first = new SpikeProcess(args);
    await first.waitFor(/ready/, 90_000);
    const env = await readPilotEnv(`${dir}/pilot.env`);
    assert.equal(env.SPIKE_NEXUS_API_URL, `https://127.0.0.1:${ports[0]}`);
    assert.equal(env.SPIKE_SVID_DIR, `${dir}/identities/pilot-superuser`);
    assert.equal((await Deno.stat(`${dir}/pilot.env`)).mode! & 0o777, 0o600);

    const put = await runSpike(["secret", "put", "app/db", "user=admin", "--from-stdin", "pass"], {
      env,
      stdin: "s3cret\n",
    });
    assert.equal(put.code, 0, put.stderr);
    const get = await runSpike(["secret", "get", "app/db", "pass"], { env });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, "s3cret"); // piped: the exact value, no newline added

    // The audit trail goes to <dir>/audit.log (the console shows where), not to the console.
    assert.match(first.output, new RegExp(`tail -f ${dir}/audit\\.log`));
    assert.doesNotMatch(first.output, /"type":"audit"/);
    const audit = (await Deno.readTextFile(`${dir}/audit.log`)).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.ok(audit.some((r) => r.route === "/v1/store/secrets" && r.action === "get" && r.resource === "app/db"));
    assert.ok(!JSON.stringify(audit).includes("s3cret"));

    const stopped = await first.stop("SIGTERM");
    assert.equal(stopped.code, 0, first.output);
    assert.match(first.output, /spike dev: stopped/);

    const second = new SpikeProcess(args);
    try {
      await second.waitFor(/ready/, 90_000);
      assert.match(second.output, /restoring the root key/);
      const again = await runSpike(["secret", "get", "app/db", "-f", "json"], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(JSON.parse(again.stdout), { pass: "s3cret", user: "admin" });
    } finally {
      assert.equal((await second.stop("SIGTERM")).code, 0, second.output);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spike dev: a port already in use is a clear error, not a hang", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike-dev-test-" });
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  try {
    const result = await runSpike(["dev", "--dir", dir, "--nexus-port", String(port)], { timeoutMs: 30_000 });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`port ${port} \\(for Nexus\\) is already in use`));
  } finally {
    busy.close();
    await Deno.remove(dir, { recursive: true });
  }
});
