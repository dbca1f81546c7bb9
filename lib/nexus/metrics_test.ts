import assert from "node:assert/strict";
import { PATHS } from "../api/paths.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { Store } from "../store/types.ts";
import { KeeperStatus } from "./keeper_status.ts";
import { NexusMetrics } from "./metrics.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { RootKeyState } from "./root_key_state.ts";
import { createTestNexus, NO_CERT, peer } from "./testing.ts";

const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");

/**
 * Every sample line is `name{labels} value`; blank lines separate metrics.
 * (`prom-client` writes a not-yet-measured event-loop lag as `Nan`, which
 * Prometheus parses; `tests/metrics_promtool_test.ts` runs promtool itself.)
 */
function assertPrometheusText(text: string): void {
  for (const line of text.trimEnd().split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    assert.match(line, /^[a-z_][a-z0-9_]*(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? (-?[0-9.e+-]+|Nan)$/, line);
  }
}

/** The value of the one sample named exactly `series` (name plus labels as rendered). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function metricsText(nexus: Awaited<ReturnType<typeof createTestNexus>>): Promise<string> {
  const response = await nexus.call(NO_CERT, "/metrics", "", undefined, { method: "GET" });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return new TextDecoder().decode(response.body as Uint8Array);
}

Deno.test("GET /metrics counts requests by known route and status, without a client certificate", async () => {
  const nexus = await createTestNexus();
  await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { pass: "hunter2" } });
  await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "app/db" });
  await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "missing" });
  await nexus.call(NO_CERT, PATHS.secrets, "get", { path: "app/db" });
  await nexus.call(SUPERUSER, "/made/up/path/that-should-not-be-a-label", "", {});
  const text = await metricsText(nexus);
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

Deno.test("GET /metrics shows stored counts, root key state, store calls and requests in flight", async () => {
  const nexus = await createTestNexus();
  for (const path of ["a", "b", "c/d"]) {
    assert.equal((await nexus.call(SUPERUSER, PATHS.secrets, "", { path, values: { k: "v" } })).status, 200);
  }
  const policy = {
    name: "p",
    spiffeidPattern: "^spiffe://spike\\.ist/app$",
    pathPattern: "^a$",
    permissions: ["read"],
  };
  assert.equal((await nexus.call(SUPERUSER, PATHS.policy, "", policy)).status, 200);
  const text = await metricsText(nexus);
  assertPrometheusText(text);
  assert.equal(sample(text, "spike_nexus_secrets"), 3);
  assert.equal(sample(text, "spike_nexus_policies"), 1);
  assert.equal(sample(text, 'spike_nexus_root_key_state{state="loaded"}'), 1);
  assert.equal(sample(text, 'spike_nexus_root_key_state{state="missing"}'), 0);
  assert.ok(sample(text, "spike_nexus_root_key_installed_timestamp_seconds")! > 0);
  // The scrape itself is the one request in flight.
  assert.equal(sample(text, "spike_nexus_requests_in_flight"), 1);
  assert.ok(sample(text, 'spike_nexus_store_operation_duration_seconds_count{operation="write_secret"}')! >= 3);
  // Metrics are collected side by side: the count made for this scrape shows in the next one.
  const next = await metricsText(nexus);
  assert.equal(sample(next, 'spike_nexus_store_operation_duration_seconds_count{operation="counts"}'), 1);
  assert.equal(sample(text, 'spike_nexus_build_info{version="0.1.0"}'), 1);
  assert.equal(sample(text, "spike_nexus_rate_limited_total"), 0);
  assert.equal(sample(text, "spike_nexus_audit_write_failures_total"), 0);
  assert.doesNotMatch(text, /spike_nexus_store_errors_total\{/);
});

Deno.test("a store call that fails is counted by operation; a later count keeps the last good value", async () => {
  const inner = createMemoryStore();
  let failing = false;
  const flaky: Store = {
    ...inner,
    readSecret: (path) => failing ? Promise.reject(new Error("down")) : inner.readSecret(path),
    counts: () => failing ? Promise.reject(new Error("down")) : inner.counts(),
  };
  const nexus = await createTestNexus({ store: flaky });
  await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "a", values: { k: "v" } });
  assert.equal(sample(await metricsText(nexus), "spike_nexus_secrets"), 1);
  failing = true;
  assert.equal((await nexus.call(SUPERUSER, PATHS.secrets, "get", { path: "a" })).status, 500);
  await metricsText(nexus);
  const text = await metricsText(nexus);
  assert.equal(sample(text, 'spike_nexus_store_errors_total{operation="read_secret"}'), 1);
  assert.ok(sample(text, 'spike_nexus_store_errors_total{operation="counts"}')! >= 1);
  assert.equal(sample(text, "spike_nexus_secrets"), 1, "the last count is shown while the store fails");
});

Deno.test("requests refused by the rate limit are counted", async () => {
  const nexus = await createTestNexus({ rateLimiter: new RateLimiter({ perSecond: 1, burst: 1 }, { now: () => 0 }) });
  await nexus.call(SUPERUSER, PATHS.secrets, "list", {});
  assert.equal((await nexus.call(SUPERUSER, PATHS.secrets, "list", {})).status, 429);
  assert.equal((await nexus.call(SUPERUSER, PATHS.secrets, "list", {})).status, 429);
  const text = await metricsText(nexus);
  assert.equal(sample(text, "spike_nexus_rate_limited_total"), 2);
  assert.equal(sample(text, 'spike_nexus_requests_total{route="/v1/store/secrets?list",code="429"}'), 2);
});

Deno.test("Keeper metrics: reachability, last accepted push and pushes by result, per Keeper position", async () => {
  let clock = 1_700_000_000_000;
  const status = new KeeperStatus(3, 2, () => new Date(clock));
  const keys = new RootKeyState();
  const metrics = new NexusMetrics({
    startedAt: 0,
    keys,
    keeperStatus: status,
    keeperPushIntervalMs: 300_000,
    now: () => clock,
  });
  let text = await metrics.render();
  assertPrometheusText(text);
  assert.equal(sample(text, "spike_nexus_ready"), 0);
  assert.equal(sample(text, 'spike_nexus_root_key_state{state="missing"}'), 1);
  assert.equal(sample(text, "spike_nexus_root_key_installed_timestamp_seconds"), 0);
  assert.equal(sample(text, "spike_nexus_keeper_push_interval_seconds"), 300);
  assert.doesNotMatch(text, /^spike_nexus_keeper_up\{/m, "no Keeper state before the first call");
  assert.doesNotMatch(text, /^spike_nexus_keeper_shards_found /m);
  assert.equal(sample(text, 'spike_nexus_keeper_last_push_success_timestamp_seconds{keeper="keeper-1"}'), 0);

  status.recordContact(0, true);
  status.recordContact(1, false);
  status.recordRound(1);
  await keys.install(new Uint8Array(32).fill(7));
  clock += 5000;
  status.recordKeeperPush(0, "ok");
  status.recordKeeperPush(1, "unreachable");
  status.recordKeeperPush(2, "refused");
  text = await metrics.render();
  assertPrometheusText(text);
  assert.equal(sample(text, "spike_nexus_ready"), 1);
  assert.equal(sample(text, "spike_nexus_root_key_installed_timestamp_seconds"), 1_700_000_000);
  assert.equal(sample(text, "spike_nexus_keeper_shards_found"), 1);
  assert.equal(sample(text, 'spike_nexus_keeper_up{keeper="keeper-1"}'), 1);
  assert.equal(sample(text, 'spike_nexus_keeper_up{keeper="keeper-2"}'), 0);
  assert.equal(sample(text, 'spike_nexus_keeper_up{keeper="keeper-3"}'), 1, "a refusal is an answer");
  assert.equal(
    sample(text, 'spike_nexus_keeper_last_push_success_timestamp_seconds{keeper="keeper-1"}'),
    1_700_000_005,
  );
  assert.equal(sample(text, 'spike_nexus_keeper_last_push_success_timestamp_seconds{keeper="keeper-2"}'), 0);
  assert.equal(sample(text, 'spike_nexus_keeper_pushes_total{keeper="keeper-2",result="unreachable"}'), 1);
  assert.equal(sample(text, 'spike_nexus_keeper_pushes_total{keeper="keeper-3",result="refused"}'), 1);
  assert.match(text, /^# TYPE spike_nexus_keeper_pushes_total counter$/m);
  metrics.close();
});

Deno.test("histogram buckets are cumulative and end with +Inf = count", async () => {
  const metrics = new NexusMetrics({ startedAt: 0, keys: new RootKeyState() });
  metrics.observe("r", 200, 0.003);
  metrics.observe("r", 200, 0.3);
  metrics.observe("r", 500, 20);
  const text = await metrics.render();
  assertPrometheusText(text);
  assert.match(text, /^spike_nexus_ready 0$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="0\.001"\} 0$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="0\.005"\} 1$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="0\.5"\} 2$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="10"\} 2$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_bucket\{route="r",le="\+Inf"\} 3$/m);
  assert.match(text, /^spike_nexus_request_duration_seconds_count\{route="r"\} 3$/m);
  assert.match(text, /^spike_nexus_requests_total\{route="r",code="500"\} 1$/m);
  metrics.close();
});

Deno.test("store counts are cached: scrapes within the max age ask the store once", async () => {
  let asked = 0;
  let clock = 0;
  const metrics = new NexusMetrics({
    startedAt: 0,
    keys: new RootKeyState(),
    counts: () => {
      asked++;
      return Promise.resolve({ secrets: asked, policies: 0 });
    },
    countsMaxAgeMs: 15_000,
    now: () => clock,
  });
  await Promise.all([metrics.render(), metrics.render(), metrics.render()]);
  assert.equal(asked, 1);
  clock += 14_999;
  assert.equal(sample(await metrics.render(), "spike_nexus_secrets"), 1);
  clock += 1;
  assert.equal(sample(await metrics.render(), "spike_nexus_secrets"), 2);
  assert.equal(asked, 2);
  metrics.close();
});

Deno.test("process metrics: CPU, memory, file descriptors, event-loop lag and GC time", async () => {
  const metrics = new NexusMetrics({ startedAt: 0, keys: new RootKeyState(), processMetrics: true });
  try {
    // Garbage enough for a few collections.
    let keep: unknown[] = [];
    for (let i = 0; i < 2_000_000; i++) {
      keep.push({ i });
      if (keep.length > 10_000) keep = [];
    }
    const text = await metrics.render();
    assertPrometheusText(text);
    assert.ok(sample(text, "process_cpu_seconds_total")! > 0);
    assert.ok(sample(text, "process_resident_memory_bytes")! > 1_000_000);
    assert.ok(sample(text, "process_open_fds")! > 2);
    assert.ok(sample(text, "process_max_fds")! > 2);
    assert.ok(sample(text, "nodejs_heap_size_used_bytes")! > 0);
    assert.notEqual(sample(text, "nodejs_eventloop_lag_p99_seconds"), undefined);
    assert.ok(sample(text, 'nodejs_gc_duration_seconds_count{kind="minor"}')! > 0);
  } finally {
    metrics.close();
  }
});
