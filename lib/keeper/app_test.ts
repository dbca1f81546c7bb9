/**
 * The Keeper app: every route × every kind of caller, the shard's life
 * (stored, replaced, all-zero ignored, returned as 32 integers), and the
 * request rules (method, path, action, body). In-process first, then the
 * same rules over real mTLS through `startKeeper`.
 */
import assert from "node:assert/strict";
import { PATHS } from "../api/paths.ts";
import type { LogFields, Logger } from "../log/logger.ts";
import type { PeerResult } from "../nexus/peer.ts";
import { createDevCa } from "../spiffe/dev_ca.ts";
import { trustRoots } from "../spiffe/roles.ts";
import { createStaticSource } from "../spiffe/static_source.ts";
import { rawRequest } from "../spiffe/testing/raw_https.ts";
import { createKeeperApp, KEEPER_MAX_BODY_BYTES } from "./app.ts";
import { startKeeper } from "./server.ts";
import { ShardHolder } from "./shard_holder.ts";

const TD = "spiffe://spike.ist";
const NEXUS: PeerResult = { ok: true, spiffeId: `${TD}/spike/nexus` };
const NEXUS_SUB: PeerResult = { ok: true, spiffeId: `${TD}/spike/nexus/eu-1` };
const BOOTSTRAP: PeerResult = { ok: true, spiffeId: `${TD}/spike/bootstrap` };
const SUPERUSER: PeerResult = { ok: true, spiffeId: `${TD}/spike/pilot/role/superuser` };
const KEEPER: PeerResult = { ok: true, spiffeId: `${TD}/spike/keeper` };
const FOREIGN_NEXUS: PeerResult = { ok: true, spiffeId: "spiffe://evil.example/spike/nexus" };
const LOOKALIKE: PeerResult = { ok: true, spiffeId: `${TD}/spike/nexus-evil` };
const NO_CERT: PeerResult = { ok: false, reason: "no client certificate" };

const SHARD = Array.from({ length: 32 }, (_, i) => (i * 11 + 1) & 0xff);
const OTHER_SHARD = Array.from({ length: 32 }, (_, i) => (i * 5 + 2) & 0xff);

/** A log that keeps every line, to prove no shard byte ever reaches it. */
function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (message: string, fields?: LogFields) =>
    lines.push(JSON.stringify({ level, message, ...fields }));
  return { lines, debug: put("debug"), info: put("info"), warn: put("warn"), error: put("error") };
}

function keeper(held?: number[]) {
  const shard = new ShardHolder();
  if (held) shard.set(Uint8Array.from(held));
  const log = recordingLog();
  const app = createKeeperApp({ shard, trustRoots: trustRoots(), log });
  const call = async (
    peer: PeerResult,
    path: string,
    body: unknown = {},
    init: { method?: string; raw?: string } = {},
  ) => {
    const method = init.method ?? "POST";
    const request = new Request(`https://keeper.test${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(method === "GET" || method === "HEAD" ? {} : { body: init.raw ?? JSON.stringify(body) }),
    });
    const response = await app.fetch(request, { peer });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
  };
  return { shard, log, call };
}

Deno.test("contribute: Nexus and Bootstrap may hand over a shard; everyone else gets 401", async () => {
  const cases: [string, PeerResult, number][] = [
    ["nexus", NEXUS, 200],
    ["nexus sub-path", NEXUS_SUB, 200],
    ["bootstrap", BOOTSTRAP, 200],
    ["superuser", SUPERUSER, 401],
    ["keeper", KEEPER, 401],
    ["nexus of a foreign trust domain", FOREIGN_NEXUS, 401],
    ["look-alike path", LOOKALIKE, 401],
    ["no cert", NO_CERT, 401],
  ];
  for (const [name, peer, status] of cases) {
    const k = keeper(OTHER_SHARD);
    const r = await k.call(peer, PATHS.keeperContribute, { shard: SHARD });
    assert.equal(r.status, status, name);
    if (status === 200) {
      assert.deepEqual(r.body, {}, name);
      assert.deepEqual(Array.from(k.shard.get()!), SHARD, name);
    } else {
      assert.deepEqual(r.body, { err: "access_unauthorized" }, name);
      assert.deepEqual(Array.from(k.shard.get()!), OTHER_SHARD, `${name}: shard untouched`);
    }
  }
});

Deno.test("shard: only Nexus gets it back, as 32 integers", async () => {
  const cases: [string, PeerResult, number][] = [
    ["nexus", NEXUS, 200],
    ["nexus sub-path", NEXUS_SUB, 200],
    ["bootstrap", BOOTSTRAP, 401],
    ["superuser", SUPERUSER, 401],
    ["keeper", KEEPER, 401],
    ["nexus of a foreign trust domain", FOREIGN_NEXUS, 401],
    ["look-alike path", LOOKALIKE, 401],
    ["no cert", NO_CERT, 401],
  ];
  const k = keeper(SHARD);
  for (const [name, peer, status] of cases) {
    const r = await k.call(peer, PATHS.keeperShard);
    assert.equal(r.status, status, name);
    assert.deepEqual(r.body, status === 200 ? { shard: SHARD } : { err: "access_unauthorized" }, name);
  }
  assert.deepEqual(Array.from(k.shard.get()!), SHARD, "reading does not consume the shard");
});

Deno.test("shard: 404 when none is held; auth is checked before that", async () => {
  const k = keeper();
  assert.deepEqual(await k.call(NEXUS, PATHS.keeperShard).then((r) => [r.status, r.body]), [
    404,
    { err: "api_not_found" },
  ]);
  assert.equal((await k.call(BOOTSTRAP, PATHS.keeperShard)).status, 401);
  assert.equal((await k.call(NO_CERT, PATHS.keeperShard)).status, 401);
});

Deno.test("an all-zero shard is accepted but ignored: it never erases the held one", async () => {
  const k = keeper(SHARD);
  const r = await k.call(NEXUS, PATHS.keeperContribute, { shard: new Array(32).fill(0) });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {});
  assert.deepEqual(Array.from(k.shard.get()!), SHARD);

  const empty = keeper();
  assert.equal((await empty.call(BOOTSTRAP, PATHS.keeperContribute, { shard: new Array(32).fill(0) })).status, 200);
  assert.equal(empty.shard.held, false);
});

Deno.test("a new shard replaces the old one; the same shard again changes nothing", async () => {
  const k = keeper();
  assert.equal((await k.call(BOOTSTRAP, PATHS.keeperContribute, { shard: SHARD })).status, 200);
  assert.equal((await k.call(NEXUS, PATHS.keeperContribute, { shard: SHARD })).status, 200);
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard)).body, { shard: SHARD });
  assert.equal((await k.call(NEXUS, PATHS.keeperContribute, { shard: OTHER_SHARD })).status, 200);
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard)).body, { shard: OTHER_SHARD });
});

Deno.test("bad shard bodies are 400 and leave the held shard alone", async () => {
  const bad: [string, unknown][] = [
    ["missing", {}],
    ["31 bytes", { shard: SHARD.slice(1) }],
    ["33 bytes", { shard: [...SHARD, 1] }],
    ["256", { shard: [256, ...SHARD.slice(1)] }],
    ["negative", { shard: [-1, ...SHARD.slice(1)] }],
    ["fraction", { shard: [1.5, ...SHARD.slice(1)] }],
    ["strings", { shard: SHARD.map(String) }],
    ["base64", { shard: btoa("x".repeat(32)) }],
    ["array body", [SHARD]],
    ["null body", null],
  ];
  for (const [name, body] of bad) {
    const k = keeper(OTHER_SHARD);
    const r = await k.call(NEXUS, PATHS.keeperContribute, body);
    assert.deepEqual([r.status, r.body], [400, { err: "api_bad_request" }], name);
    assert.deepEqual(Array.from(k.shard.get()!), OTHER_SHARD, name);
  }
  const k = keeper();
  const r = await k.call(NEXUS, PATHS.keeperContribute, undefined, { raw: "{not json" });
  assert.deepEqual([r.status, r.body], [400, { err: "api_bad_request" }]);
  assert.equal((await k.call(NEXUS, PATHS.keeperShard, undefined, { raw: "[]" })).status, 400);
});

Deno.test("an empty body counts as {} on the shard route", async () => {
  const k = keeper(SHARD);
  const r = await k.call(NEXUS, PATHS.keeperShard, undefined, { raw: "" });
  assert.deepEqual([r.status, r.body], [200, { shard: SHARD }]);
});

Deno.test("anything but POST to a known path without action is 400, whoever asks", async () => {
  const k = keeper(SHARD);
  const cases: [string, string, string][] = [
    ["GET", PATHS.keeperShard, "get shard"],
    ["PUT", PATHS.keeperContribute, "put contribute"],
    ["DELETE", PATHS.keeperShard, "delete shard"],
    ["GET", "/", "root"],
    ["POST", "/v1/store/secrets", "nexus path"],
    ["POST", "/v1/store/shards", "near miss"],
    ["POST", `${PATHS.keeperShard}?action=get`, "with action"],
    ["POST", `${PATHS.keeperContribute}?action=list`, "contribute with action"],
  ];
  for (const [method, path, name] of cases) {
    const callers: [string, PeerResult][] = [["nexus", NEXUS], ["no cert", NO_CERT]];
    for (const [who, caller] of callers) {
      const r = await k.call(caller, path, { shard: OTHER_SHARD }, { method });
      assert.deepEqual([r.status, r.body], [400, { err: "api_bad_request" }], `${name} (${who})`);
    }
  }
  assert.deepEqual(Array.from(k.shard.get()!), SHARD);
});

Deno.test("a body over the cap is 413 before it is parsed", async () => {
  const k = keeper(SHARD);
  const raw = JSON.stringify({ shard: OTHER_SHARD, pad: "x".repeat(KEEPER_MAX_BODY_BYTES) });
  const r = await k.call(NEXUS, PATHS.keeperContribute, undefined, { raw });
  assert.deepEqual([r.status, r.body], [413, { err: "api_payload_too_large" }]);
  assert.deepEqual(Array.from(k.shard.get()!), SHARD);
  // Just under the cap is fine.
  const fits = JSON.stringify({ shard: OTHER_SHARD, pad: "" });
  const padded = fits.replace('"pad":""', `"pad":"${"x".repeat(KEEPER_MAX_BODY_BYTES - fits.length)}"`);
  assert.equal(new TextEncoder().encode(padded).length, KEEPER_MAX_BODY_BYTES);
  assert.equal((await k.call(NEXUS, PATHS.keeperContribute, undefined, { raw: padded })).status, 200);
});

Deno.test("health is always 200; ready is 503 until a shard is held", async () => {
  const k = keeper();
  assert.deepEqual(await k.call(NO_CERT, "/health", undefined, { method: "GET" }).then((r) => r.status), 200);
  assert.equal((await k.call(NO_CERT, "/ready", undefined, { method: "GET" })).status, 503);
  await k.call(BOOTSTRAP, PATHS.keeperContribute, { shard: SHARD });
  assert.equal((await k.call(NO_CERT, "/ready", undefined, { method: "GET" })).status, 200);
});

Deno.test("metrics: shard held, when a shard last came, requests by path and status; never a shard byte", async () => {
  const shard = new ShardHolder();
  let clock = 1_700_000_000_000;
  const app = createKeeperApp({ shard, trustRoots: trustRoots(), log: recordingLog(), now: () => clock });
  const get = async (path: string, peer: PeerResult = NO_CERT, init: RequestInit = { method: "GET" }) => {
    const response = await app.fetch(new Request(`https://keeper.test${path}`, init), { peer });
    return { status: response.status, text: await response.text(), type: response.headers.get("content-type") };
  };
  const value = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  const before = await get("/metrics");
  assert.equal(before.status, 200);
  assert.match(before.type ?? "", /^text\/plain; version=0\.0\.4/);
  assert.equal(value(before.text, "spike_keeper_shard_held"), 0);
  assert.equal(value(before.text, "spike_keeper_last_shard_received_timestamp_seconds"), 0);
  assert.equal(value(before.text, "spike_keeper_start_time_seconds"), 1_700_000_000);

  clock += 5000;
  const post = (peer: PeerResult, body: unknown) =>
    get(PATHS.keeperContribute, peer, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  assert.equal((await post(NEXUS, { shard: Array(32).fill(0) })).status, 200); // all-zero: not a shard
  const afterZero = await get("/metrics");
  assert.equal(value(afterZero.text, "spike_keeper_last_shard_received_timestamp_seconds"), 0);
  assert.equal((await post(NEXUS, { shard: SHARD })).status, 200);
  assert.equal((await post(SUPERUSER, { shard: OTHER_SHARD })).status, 401);
  await get("/ready");
  await get("/made/up/path");
  await get("/another/made/up/path");
  const after = await get("/metrics");
  assert.equal(value(after.text, "spike_keeper_shard_held"), 1);
  assert.equal(value(after.text, "spike_keeper_last_shard_received_timestamp_seconds"), 1_700_000_005);
  assert.equal(value(after.text, 'spike_keeper_requests_total{path="/v1/store/contribute",code="200"}'), 2);
  assert.equal(value(after.text, 'spike_keeper_requests_total{path="/v1/store/contribute",code="401"}'), 1);
  assert.equal(value(after.text, 'spike_keeper_requests_total{path="/ready",code="200"}'), 1);
  assert.equal(value(after.text, 'spike_keeper_requests_total{path="/metrics",code="200"}'), 2);
  // Made-up paths share one label instead of growing the series count.
  assert.equal(value(after.text, 'spike_keeper_requests_total{path="other",code="400"}'), 2);
  const needle = SHARD.slice(0, 4).join(",");
  assert.ok(!after.text.includes(needle));
});

Deno.test("every answer carries the no-cache headers", async () => {
  const k = keeper(SHARD);
  for (
    const r of [
      await k.call(NEXUS, PATHS.keeperShard),
      await k.call(NO_CERT, PATHS.keeperShard),
      await k.call(NEXUS, "/nope"),
      await k.call(NO_CERT, "/health", undefined, { method: "GET" }),
    ]
  ) {
    assert.equal(r.headers.get("cache-control"), "no-store, no-cache, must-revalidate, private");
    assert.equal(r.headers.get("pragma"), "no-cache");
    assert.equal(r.headers.get("expires"), "0");
  }
});

Deno.test("no shard byte ever reaches the log", async () => {
  const k = keeper();
  await k.call(BOOTSTRAP, PATHS.keeperContribute, { shard: SHARD });
  await k.call(NEXUS, PATHS.keeperContribute, { shard: SHARD });
  await k.call(NEXUS, PATHS.keeperShard);
  await k.call(NEXUS, PATHS.keeperContribute, { shard: [300, ...SHARD.slice(1)] });
  assert.ok(k.log.lines.length > 0);
  const needle = SHARD.slice(0, 8).join(",");
  for (const line of k.log.lines) assert.ok(!line.includes(needle), line);
  assert.ok(k.log.lines.some((l) => l.includes("shard stored")));
});

Deno.test("who took the shard, and who was refused, is in the log", async () => {
  const k = keeper();
  await k.call(BOOTSTRAP, PATHS.keeperContribute, { shard: SHARD });
  assert.equal((await k.call(NEXUS, PATHS.keeperShard)).status, 200);
  assert.equal((await k.call(BOOTSTRAP, PATHS.keeperShard)).status, 401);
  const handedOut = k.log.lines.filter((l) => l.includes("shard handed out"));
  assert.equal(handedOut.length, 1);
  assert.match(handedOut[0]!, /"to":"spiffe:\/\/spike\.ist\/spike\/nexus"/);
  const refused = k.log.lines.filter((l) => l.includes("request refused"));
  assert.equal(refused.length, 1);
  assert.match(refused[0]!, /"caller":"spiffe:\/\/spike\.ist\/spike\/bootstrap".*"path":"\/v1\/store\/shard"/);
});

Deno.test("over real mTLS: the SVID decides, body cap holds, close zeroes the shard", async () => {
  const ca = await createDevCa();
  const [keeperId, nexusId, bootstrapId, superId] = await Promise.all([
    ca.issue(`${TD}/spike/keeper`),
    ca.issue(`${TD}/spike/nexus`),
    ca.issue(`${TD}/spike/bootstrap`),
    ca.issue(`${TD}/spike/pilot/role/superuser`),
  ]);
  const other = await createDevCa();
  const strangerNexus = await other.issue(`${TD}/spike/nexus`);
  const running = await startKeeper({
    config: {
      identity: { endpointSocket: "unix:///nonexistent" },
      trustRoots: trustRoots(),
      listen: { host: "127.0.0.1", port: 0 },
      tlsHandshakeTimeoutMs: 10_000,
      maxConnections: 128,
    },
    identity: createStaticSource(keeperId),
    log: recordingLog(),
  });
  try {
    const post = (identity: typeof nexusId | undefined, path: string, body: unknown) =>
      rawRequest(running.port, path, {
        identity,
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
    assert.equal((await post(nexusId, PATHS.keeperShard, {})).status, 404);
    assert.equal((await post(bootstrapId, PATHS.keeperContribute, { shard: SHARD })).status, 200);
    const got = await post(nexusId, PATHS.keeperShard, {});
    assert.deepEqual([got.status, JSON.parse(got.text)], [200, { shard: SHARD }]);
    assert.equal((await post(bootstrapId, PATHS.keeperShard, {})).status, 401);
    assert.equal((await post(superId, PATHS.keeperContribute, { shard: OTHER_SHARD })).status, 401);
    assert.equal((await post(undefined, PATHS.keeperShard, {})).status, 401);
    // The right name from the wrong CA is nobody.
    assert.equal((await post(strangerNexus, PATHS.keeperShard, {})).status, 401);
    const big = await post(nexusId, PATHS.keeperContribute, "x".repeat(KEEPER_MAX_BODY_BYTES + 1));
    assert.deepEqual([big.status, JSON.parse(big.text)], [413, { err: "api_payload_too_large" }]);
    assert.equal((await rawRequest(running.port, "/ready")).status, 200);
  } finally {
    await running.close();
  }
  assert.equal(running.shard.held, false);
});

Deno.test("a Keeper on a port already in use fails to start instead of hanging", async () => {
  const ca = await createDevCa();
  const identity = createStaticSource(await ca.issue(`${TD}/spike/keeper`));
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      startKeeper({
        config: {
          identity: { endpointSocket: "unix:///nonexistent" },
          trustRoots: trustRoots(),
          listen: { host: "127.0.0.1", port: (busy.addr as Deno.NetAddr).port },
          tlsHandshakeTimeoutMs: 10_000,
          maxConnections: 128,
        },
        identity,
        log: recordingLog(),
      }),
      (error: Error & { code?: string }) => error.code === "EADDRINUSE" || /in use/i.test(error.message),
    );
  } finally {
    busy.close();
  }
});

Deno.test("key versions [ours]: shards are kept per version, asked for by version, and retired", async () => {
  const k = keeper();
  const V2 = Array.from({ length: 32 }, (_, i) => (i * 3 + 7) & 0xff);
  assert.deepEqual(await k.call(NEXUS, PATHS.keeperContribute, { shard: SHARD, keyVersion: 1 }), {
    status: 200,
    body: { keyVersion: 1, versions: [1] },
    headers: (await k.call(NEXUS, PATHS.keeperContribute, { shard: SHARD, keyVersion: 1 })).headers,
  });
  const second = await k.call(NEXUS, PATHS.keeperContribute, { shard: V2, keyVersion: 2 });
  assert.deepEqual(second.body, { keyVersion: 2, versions: [1, 2] });
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: 1 })).body, { shard: SHARD, keyVersion: 1 });
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: 2 })).body, { shard: V2, keyVersion: 2 });
  assert.equal((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: 3 })).status, 404, "a version not held");
  // SPIKE's Nexus asks without a version: it gets the highest held, labelled.
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard, {})).body, { shard: V2, keyVersion: 2 });

  // An unversioned shard (SPIKE's Nexus or Bootstrap) goes to a slot of its own and answers SPIKE's way.
  assert.deepEqual((await k.call(BOOTSTRAP, PATHS.keeperContribute, { shard: OTHER_SHARD })).body, {});
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard, {})).body, { shard: OTHER_SHARD });
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: 3 })).body, { shard: OTHER_SHARD });
  assert.deepEqual((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: 2 })).body, { shard: V2, keyVersion: 2 });

  // Retiring drops the lower versions and the unversioned shard, only once a newer one is in hand.
  const retired = await k.call(NEXUS, PATHS.keeperContribute, { shard: V2, keyVersion: 2, retireBelow: 2 });
  assert.deepEqual(retired.body, { keyVersion: 2, versions: [2] });
  assert.deepEqual(k.shard.versions(), [2]);
  assert.equal((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: 1 })).status, 404);
  const refusedRetire = await k.call(NEXUS, PATHS.keeperContribute, { shard: V2, keyVersion: 2, retireBelow: 3 });
  assert.deepEqual(refusedRetire.body, { keyVersion: 2, versions: [2] }, "never retires the version just given");
  assert.ok(k.log.lines.some((l) => l.includes("shards of retired root key versions dropped")));
  for (const line of k.log.lines) {
    for (const bytes of [SHARD, V2, OTHER_SHARD]) assert.ok(!line.includes(bytes.join(",")), "no shard bytes logged");
  }
});

Deno.test("key versions [ours]: a malformed keyVersion or retireBelow is 400 and changes nothing", async () => {
  const k = keeper(SHARD);
  for (const bad of [0, -1, 1.5, "1", 2 ** 31, true]) {
    const contribute = await k.call(NEXUS, PATHS.keeperContribute, { shard: OTHER_SHARD, keyVersion: bad });
    assert.deepEqual([contribute.status, contribute.body], [400, { err: "api_bad_request" }], String(bad));
    const retire = await k.call(NEXUS, PATHS.keeperContribute, { shard: OTHER_SHARD, keyVersion: 1, retireBelow: bad });
    assert.equal(retire.status, 400, String(bad));
    assert.equal((await k.call(NEXUS, PATHS.keeperShard, { keyVersion: bad })).status, 400, String(bad));
  }
  assert.deepEqual(Array.from(k.shard.get()!), SHARD);
  assert.deepEqual(k.shard.versions(), [0]);
});
