import assert from "node:assert/strict";
import { PATHS } from "../api/paths.ts";
import { createTestNexus, NO_CERT, peer } from "./testing.ts";
import { NexusMetrics } from "./metrics.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");

/** Every sample line is `name{labels} value` with a finite number. */
function assertPrometheusText(text: string): void {
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    assert.match(line, /^[a-z_]+(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? -?[0-9.e+-]+$/, line);
  }
}

Deno.test("GET /metrics counts requests by known route and status, without a client certificate", async () => {
  const nexus = await createTestNexus();
  await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { pass: "hunter2" } });
  await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "app/db" });
  await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "missing" });
  await nexus.call(NO_CERT, PATHS.secrets, "get", { path: "app/db" });
  await nexus.call(SUPERUSER, "/made/up/path/that-should-not-be-a-label", "", {});
  const response = await nexus.call(NO_CERT, "/metrics", "", undefined, { method: "GET" });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = new TextDecoder().decode(response.body as Uint8Array);
  assertPrometheusText(text);
  assert.match(text, /^spike_nexus_ready 1$/m);
  // State metrics: key version, rotation, tampered rows.
  assert.match(text, /^spike_nexus_root_key_version 1$/m);
  assert.match(text, /^spike_nexus_root_key_versions_held 1$/m);
  assert.match(text, /^spike_nexus_rotation_phase 0$/m);
  assert.match(text, /^spike_nexus_rotation_records_to_reseal 0$/m);
  assert.match(text, /^spike_nexus_policy_tampered_total 0$/m);
  assert.match(text, /^spike_nexus_requests_total\{route="\/v1\/store\/secrets\?get",code="200"\} 1$/m);
  assert.match(text, /^spike_nexus_requests_total\{route="\/v1\/store\/secrets\?get",code="404"\} 1$/m);
  assert.match(text, /^spike_nexus_requests_total\{route="\/v1\/store\/secrets\?get",code="401"\} 1$/m);
  assert.match(text, /^spike_nexus_requests_total\{route="\/v1\/store\/secrets",code="200"\} 1$/m);
  assert.match(text, /^spike_nexus_requests_total\{route="other",code="400"\} 1$/m);
  assert.doesNotMatch(text, /made\/up|hunter2|app\/db/);
});

Deno.test("histogram buckets are cumulative and end with +Inf = count", () => {
  const metrics = new NexusMetrics(0);
  metrics.observe("r", 200, 0.003);
  metrics.observe("r", 200, 0.3);
  metrics.observe("r", 500, 20);
  const text = metrics.render(false);
  assertPrometheusText(text);
  assert.match(text, /^spike_nexus_ready 0$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="0\.001"\} 0$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="0\.005"\} 1$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="0\.5"\} 2$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="10"\} 2$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="\+Inf"\} 3$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_count\{route="r"\} 3$/m);
});
