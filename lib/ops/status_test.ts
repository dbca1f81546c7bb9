/**
 * How `spike status` reads answers it does not expect (beside the real
 * process test in `tests/status_test.ts`): non-JSON bodies, other statuses,
 * a Nexus that sends only a reason, a version other than the CLI's.
 */
import assert from "node:assert/strict";
import type { Probe, ProbeAnswer } from "./probe.ts";
import { collectLiveness, collectStatus, renderLivenessLines, renderStatusLines } from "./status.ts";

/** A probe answering from a table by URL; a missing URL is "connection refused". */
function tableProbe(answers: Record<string, ProbeAnswer>): Probe {
  return {
    get: (url, path) => {
      const answer = answers[`${url}${path}`];
      return answer ? Promise.resolve(answer) : Promise.reject(new Error(`connection refused to ${url}`));
    },
    close() {},
  };
}

Deno.test("odd answers are not ready, with the HTTP status; a reason-only Nexus shows its reason", async () => {
  const probe = tableProbe({
    "https://n/ready": { status: 503, body: JSON.stringify({ ready: false, reason: "root key not loaded" }) },
    "https://k1/ready": { status: 404, body: '{"err":"api_bad_request"}' },
    "https://k2/ready": { status: 200, body: "<html>" },
    "https://k3/ready": { status: 200, body: JSON.stringify({ ready: true, version: "9.9.9" }) },
  });
  const report = await collectStatus(probe, {
    nexusUrl: "https://n",
    keeperUrls: ["https://k1", "https://k2", "https://k3", "https://k4"],
    cliVersion: "1.0.0",
  });
  assert.equal(report.ok, false);
  assert.deepEqual(report.nexus, {
    url: "https://n",
    reachable: true,
    ready: false,
    reason: "root key not loaded",
    rootKey: null,
    store: null,
    version: null,
    keepers: null,
  });
  assert.deepEqual(report.keepers.map((k) => [k.reachable, k.shardHeld, k.reason]), [
    [true, false, "unexpected answer to GET /ready (HTTP 404)"],
    [true, false, "unexpected answer to GET /ready (HTTP 200)"],
    [true, true, null],
    [false, false, "connection refused to https://k4"],
  ]);
  const lines = renderStatusLines(report).split("\n");
  assert.match(lines[0]!, /^nexus\s+https:\/\/n\s+not ready\s+root key not loaded$/);
  assert.match(lines[3]!, /^keeper-3\s+https:\/\/k3\s+ready\s+shard held, version 9\.9\.9 \(CLI is 1\.0\.0\)$/);
  assert.match(lines[4]!, /^keeper-4\s+https:\/\/k4\s+unreachable\s+connection refused to https:\/\/k4$/);
});

Deno.test("all ready is ok; Keepers alone are ok without Nexus", async () => {
  const ready = { status: 200, body: JSON.stringify({ ready: true, rootKey: "loaded", store: "ok", version: "1" }) };
  const probe = tableProbe({ "https://n/ready": ready, "https://k/ready": { status: 200, body: '{"ready":true}' } });
  assert.equal((await collectStatus(probe, { nexusUrl: "https://n", keeperUrls: [], cliVersion: "1" })).ok, true);
  const keepersOnly = await collectStatus(probe, { keeperUrls: ["https://k"], cliVersion: "1" });
  assert.deepEqual([keepersOnly.ok, keepersOnly.nexus], [true, null]);
});

Deno.test("liveness: GET /health only; a Nexus without its key is live; odd answers and silence are not", async () => {
  const probe = tableProbe({
    "https://n/health": { status: 200, body: '{"status":"ok"}' },
    "https://n/ready": { status: 503, body: JSON.stringify({ ready: false, reason: "root key not loaded" }) },
    "https://k1/health": { status: 200, body: '{"status":"ok"}' },
    "https://k2/health": { status: 500, body: "{}" },
  });
  const report = await collectLiveness(probe, {
    nexusUrl: "https://n",
    keeperUrls: ["https://k1", "https://k2", "https://k3"],
    cliVersion: "1.0.0",
  });
  assert.equal(report.ok, false);
  assert.equal(report.check, "live");
  assert.deepEqual(report.components.map((c) => [c.name, c.live]), [
    ["nexus", true],
    ["keeper-1", true],
    ["keeper-2", false],
    ["keeper-3", false],
  ]);
  const lines = renderLivenessLines(report).split("\n");
  assert.match(lines[0]!, /^nexus\s+https:\/\/n\s+live$/);
  assert.match(lines[2]!, /^keeper-2\s+https:\/\/k2\s+not live\s+unexpected answer to GET \/health \(HTTP 500\)$/);
  assert.match(lines[3]!, /^keeper-3\s+https:\/\/k3\s+unreachable\s+connection refused to https:\/\/k3$/);
  assert.match(lines[4]!, /^cli\s+version 1\.0\.0$/);
  const nexusAlone = await collectLiveness(probe, { nexusUrl: "https://n", keeperUrls: [], cliVersion: "1.0.0" });
  assert.equal(nexusAlone.ok, true);
});
