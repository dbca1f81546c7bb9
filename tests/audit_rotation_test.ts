/**
 * `spike nexus` with `SPIKE_NEXUS_AUDIT_LOG` naming a file: records go to
 * the file (mode 0600), and after log rotation moves the file away, SIGHUP
 * makes Nexus write to a new file at the same path; nothing is lost.
 */
import assert from "node:assert/strict";
import * as https from "node:https";
import { join } from "node:path";
import { mintDevIdentities } from "../lib/dev/identities.ts";
import { eventually, freePort, SpikeProcess } from "./support/process.ts";

/** A POST without a client certificate: Nexus answers 401 and audits it. */
function anonymousPost(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: "127.0.0.1", port, path: "/v1/store/secrets?action=list", method: "POST", rejectUnauthorized: false },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    request.on("error", reject);
    request.end("{}");
  });
}

/** The request records of a file (the chain's own records, start, reopen, segment, aside). */
async function lines(file: string): Promise<Array<Record<string, unknown>>> {
  return (await Deno.readTextFile(file)).trimEnd().split("\n").filter(Boolean).map((line) => JSON.parse(line))
    .filter((record) => record.type === "audit");
}

Deno.test("audit file: written 0600 by a real Nexus, reopened on SIGHUP after rotation", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spike_audit_rotation_" });
  const port = freePort();
  const file = join(dir, "audit.log");
  const ids = await mintDevIdentities(dir, "spike.ist", 0);
  const nexus = new SpikeProcess(["nexus"], {
    env: {
      SPIKE_SVID_DIR: ids.dirOf("nexus"),
      SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${port}`,
      SPIKE_NEXUS_BACKEND_STORE: "memory",
      SPIKE_NEXUS_AUDIT_LOG: file,
    },
  });
  try {
    await nexus.waitFor(/nexus listening/);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600, "created at start, owner-only");
    assert.equal(await anonymousPost(port), 401);
    // The record is written just after the answer leaves, so poll for it.
    await eventually(async () => (await lines(file)).length === 1, "the first record is in the file");

    await Deno.rename(file, `${file}.1`);
    Deno.kill(nexus.pid, "SIGHUP");
    await nexus.waitFor(/audit log reopened/);
    assert.equal(await anonymousPost(port), 401);
    assert.equal(await anonymousPost(port), 401);
    await eventually(async () => (await lines(file)).length === 2, "the new file has the later records");

    const rotated = await lines(`${file}.1`);
    assert.equal(rotated.length, 1, "the rotated file kept its record and got no more");
    for (const record of [...rotated, ...await lines(file)]) {
      assert.deepEqual([record.type, record.spiffeId, record.outcome], ["audit", null, "denied"]);
    }
    assert.doesNotMatch(nexus.output, /"type":"audit"/, "no audit record on stdout when a file is set");
  } finally {
    const status = await nexus.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, nexus.output);
  }
});
