import assert from "node:assert/strict";
import {
  resolveBootstrapConfig,
  resolveKeeperConfig,
  resolveNexusConfig,
  resolvePilotConfig,
  resolveWorkloadConfig,
} from "./spike_config.ts";
import { ConfigError } from "./parse.ts";

Deno.test("nexus defaults follow SPIKE", () => {
  const c = resolveNexusConfig({ HOME: "/home/u" });
  assert.deepEqual(c.listen, { host: "0.0.0.0", port: 8553 });
  assert.equal(c.backendStore, "sqlite");
  assert.equal(c.dataDir, "/home/u/.spike/data");
  assert.equal(c.maxSecretVersions, 10);
  assert.equal(c.shamirShares, 3);
  assert.equal(c.shamirThreshold, 2);
  assert.equal(c.keeperUpdateIntervalMs, 300_000);
  assert.equal(c.maxCiphertextSize, 65536);
  assert.equal(c.maxBodyBytes, 1048576);
  assert.equal(c.tlsHandshakeTimeoutMs, 10_000);
  assert.equal(c.maxConnections, 1024);
  assert.deepEqual(c.trustRoots.pilot, ["spike.ist"]);
  assert.equal(c.identity.svidDir, undefined);
  assert.equal(c.identity.endpointSocket, "unix:///tmp/spire-agent/public/api.sock");
  assert.ok(Object.isFrozen(c));
});

Deno.test("nexus reads every variable", () => {
  const c = resolveNexusConfig({
    SPIKE_NEXUS_TLS_PORT: "127.0.0.1:9000",
    SPIKE_NEXUS_BACKEND_STORE: "memory",
    SPIKE_NEXUS_DATA_DIR: "/d",
    SPIKE_NEXUS_MAX_SECRET_VERSIONS: "3",
    SPIKE_NEXUS_KEEPER_PEERS: "https://a:1, https://b:2",
    SPIKE_NEXUS_SHAMIR_SHARES: "2",
    SPIKE_NEXUS_SHAMIR_THRESHOLD: "1",
    SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "30s",
    SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT: "2s500ms",
    SPIKE_NEXUS_MAX_CONNECTIONS: "50",
    SPIKE_TRUST_ROOT_PILOT: "a.org,b.org",
    SPIKE_SVID_DIR: "/svid",
  });
  assert.deepEqual(c.listen, { host: "127.0.0.1", port: 9000 });
  assert.equal(c.backendStore, "memory");
  assert.deepEqual(c.keeperPeers, ["https://a:1", "https://b:2"]);
  assert.equal(c.keeperUpdateIntervalMs, 30_000);
  assert.equal(c.tlsHandshakeTimeoutMs, 2_500);
  assert.equal(c.maxConnections, 50);
  assert.deepEqual(c.trustRoots.pilot, ["a.org", "b.org"]);
  assert.equal(c.identity.svidDir, "/svid");
});

Deno.test("bad settings name the variable", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ SPIKE_NEXUS_BACKEND_STORE: "mysql" }, /^SPIKE_NEXUS_BACKEND_STORE: /],
    [{ SPIKE_NEXUS_SHAMIR_THRESHOLD: "4" }, /^SPIKE_NEXUS_SHAMIR_THRESHOLD: /],
    [{ SPIKE_NEXUS_KEEPER_PEERS: "https://a:1" }, /^SPIKE_NEXUS_KEEPER_PEERS: /],
    [
      { SPIKE_NEXUS_KEEPER_PEERS: "https://a:1,https://b:2,https://a:1/" },
      /^SPIKE_NEXUS_KEEPER_PEERS: https:\/\/a:1 is listed twice/,
    ],
    [{ SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: "5" }, /^SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: /],
    [{ SPIKE_NEXUS_MAX_SECRET_VERSIONS: "0" }, /^SPIKE_NEXUS_MAX_SECRET_VERSIONS: /],
    [{ SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT: "10" }, /^SPIKE_NEXUS_TLS_HANDSHAKE_TIMEOUT: /],
    [{ SPIKE_NEXUS_MAX_CONNECTIONS: "0" }, /^SPIKE_NEXUS_MAX_CONNECTIONS: /],
    [{ SPIKE_TRUST_ROOT_NEXUS: "Bad Domain" }, /^SPIKE_TRUST_ROOT_NEXUS: /],
  ];
  for (const [env, pattern] of cases) {
    assert.throws(
      () => resolveNexusConfig({ HOME: "/h", ...env }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  }
});

Deno.test("postgres backend: URL required and checked, password file and pool size, no password in errors", () => {
  const base = { HOME: "/h", SPIKE_NEXUS_BACKEND_STORE: "postgres" };
  const c = resolveNexusConfig({
    ...base,
    SPIKE_NEXUS_POSTGRES_URL: "postgres://spike@db.internal:5432/spike?sslmode=verify-full",
    SPIKE_NEXUS_POSTGRES_PASSWORD_FILE: "/run/secrets/pg",
    SPIKE_NEXUS_POSTGRES_CA_FILE: "/etc/spike/pg-ca.pem",
    SPIKE_NEXUS_POSTGRES_MAX_CONNECTIONS: "25",
  });
  assert.deepEqual(c.postgres, {
    url: "postgres://spike@db.internal:5432/spike?sslmode=verify-full",
    passwordFile: "/run/secrets/pg",
    caFile: "/etc/spike/pg-ca.pem",
    maxConnections: 25,
    statementTimeoutMs: 10_000,
  });
  assert.equal(
    resolveNexusConfig({ ...base, SPIKE_NEXUS_POSTGRES_URL: "postgresql://u@h/d" }).postgres?.maxConnections,
    10,
  );
  assert.equal(resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_POSTGRES_URL: "postgres://u@h/d" }).postgres, undefined);
  // No data directory, so no HOME needed (a container user may have none).
  const noHome = resolveNexusConfig({
    SPIKE_NEXUS_BACKEND_STORE: "postgres",
    SPIKE_NEXUS_POSTGRES_URL: "postgres://u@h/d",
  });
  assert.equal(noHome.dataDir, undefined);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /^SPIKE_NEXUS_POSTGRES_URL: is required/],
    [{ SPIKE_NEXUS_POSTGRES_URL: "mysql://u:hunter2@h/d" }, /^SPIKE_NEXUS_POSTGRES_URL: must use postgres:\/\//],
    [{ SPIKE_NEXUS_POSTGRES_URL: "postgres://u:hunter2@h:5432" }, /^SPIKE_NEXUS_POSTGRES_URL: names no database/],
    [{ SPIKE_NEXUS_POSTGRES_URL: "postgres://u:hunter2@[bad/d" }, /^SPIKE_NEXUS_POSTGRES_URL: is not a URL/],
    [{ SPIKE_NEXUS_POSTGRES_URL: "postgres://:hunter2@h/d" }, /^SPIKE_NEXUS_POSTGRES_URL: names no user/],
    [{ SPIKE_NEXUS_POSTGRES_URL: "postgres://u@h/d", SPIKE_NEXUS_POSTGRES_MAX_CONNECTIONS: "0" }, /MAX_CONNECTIONS/],
  ];
  for (const [env, pattern] of cases) {
    assert.throws(
      () => resolveNexusConfig({ ...base, ...env }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message) && !e.message.includes("hunter2"),
    );
  }
});

Deno.test("rate limit: off unless set; burst defaults to two seconds' worth; bad values name the variable", () => {
  assert.equal(resolveNexusConfig({ HOME: "/h" }).rateLimit, undefined);
  assert.equal(resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_RATE_LIMIT: "0" }).rateLimit, undefined);
  assert.deepEqual(resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_RATE_LIMIT: "50" }).rateLimit, {
    perSecond: 50,
    burst: 100,
  });
  assert.deepEqual(resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_RATE_LIMIT: "0.2" }).rateLimit, {
    perSecond: 0.2,
    burst: 1,
  });
  assert.deepEqual(
    resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_RATE_LIMIT: "5", SPIKE_NEXUS_RATE_LIMIT_BURST: "40" }).rateLimit,
    { perSecond: 5, burst: 40 },
  );
  for (
    const [env, pattern] of [
      [{ SPIKE_NEXUS_RATE_LIMIT: "fast" }, /^SPIKE_NEXUS_RATE_LIMIT: /],
      [{ SPIKE_NEXUS_RATE_LIMIT: "-1" }, /^SPIKE_NEXUS_RATE_LIMIT: /],
      [{ SPIKE_NEXUS_RATE_LIMIT: "5", SPIKE_NEXUS_RATE_LIMIT_BURST: "0" }, /^SPIKE_NEXUS_RATE_LIMIT_BURST: /],
      [{ SPIKE_NEXUS_RATE_LIMIT_BURST: "10" }, /^SPIKE_NEXUS_RATE_LIMIT_BURST: is set but/],
    ] as const
  ) {
    assert.throws(
      () => resolveNexusConfig({ HOME: "/h", ...env }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  }
});

Deno.test("audit: fail-closed and the audit table are off by default; the table needs Postgres", () => {
  const plain = resolveNexusConfig({ HOME: "/h" });
  assert.deepEqual([plain.auditFailClosed, plain.auditTable], [false, false]);
  const pg = { HOME: "/h", SPIKE_NEXUS_BACKEND_STORE: "postgres", SPIKE_NEXUS_POSTGRES_URL: "postgres://u@db/spike" };
  const on = resolveNexusConfig({ ...pg, SPIKE_NEXUS_AUDIT_FAIL_CLOSED: "true", SPIKE_NEXUS_AUDIT_TABLE: "true" });
  assert.deepEqual([on.auditFailClosed, on.auditTable], [true, true]);
  for (
    const [env, pattern] of [
      [{ SPIKE_NEXUS_AUDIT_TABLE: "true" }, /^SPIKE_NEXUS_AUDIT_TABLE: needs SPIKE_NEXUS_BACKEND_STORE=postgres/],
      [{ SPIKE_NEXUS_AUDIT_FAIL_CLOSED: "maybe" }, /^SPIKE_NEXUS_AUDIT_FAIL_CLOSED: /],
    ] as const
  ) {
    assert.throws(
      () => resolveNexusConfig({ HOME: "/h", ...env }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  }
});

Deno.test("keeper, pilot and bootstrap configs", () => {
  const keeper = resolveKeeperConfig({});
  assert.deepEqual([keeper.listen.port, keeper.tlsHandshakeTimeoutMs, keeper.maxConnections], [8443, 10_000, 128]);
  const tuned = resolveKeeperConfig({ SPIKE_KEEPER_TLS_HANDSHAKE_TIMEOUT: "3s", SPIKE_KEEPER_MAX_CONNECTIONS: "8" });
  assert.deepEqual([tuned.tlsHandshakeTimeoutMs, tuned.maxConnections], [3_000, 8]);
  assert.throws(() => resolveKeeperConfig({ SPIKE_KEEPER_MAX_CONNECTIONS: "x" }), /^.*SPIKE_KEEPER_MAX_CONNECTIONS/);
  const pilot = resolvePilotConfig({ HOME: "/h" });
  assert.equal(pilot.nexusUrl, "https://localhost:8553");
  assert.equal(pilot.recoveryDir, "/h/.spike/recover");
  assert.throws(() => resolveBootstrapConfig({}), /SPIKE_NEXUS_KEEPER_PEERS/);
  const b = resolveBootstrapConfig({
    SPIKE_NEXUS_KEEPER_PEERS: "https://a:1,https://b:2,https://c:3",
    SPIKE_BOOTSTRAP_FORCE: "true",
  });
  assert.equal(b.force, true);
  assert.equal(b.skipIfInitialized, false);
  assert.equal(b.keeperPeers.length, 3);
  const peers = { SPIKE_NEXUS_KEEPER_PEERS: "https://a:1,https://b:2,https://c:3" };
  assert.equal(
    resolveBootstrapConfig({ ...peers, SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED: "true" }).skipIfInitialized,
    true,
  );
  assert.throws(
    () =>
      resolveBootstrapConfig({ ...peers, SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED: "true", SPIKE_BOOTSTRAP_FORCE: "true" }),
    /SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED: cannot be true together with SPIKE_BOOTSTRAP_FORCE/,
  );
  assert.throws(
    () => resolveBootstrapConfig({ ...peers, SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED: "maybe" }),
    /SPIKE_BOOTSTRAP_SKIP_IF_INITIALIZED/,
  );
});

Deno.test("workload (SDK) config needs no HOME and validates the Nexus URL", () => {
  const config = resolveWorkloadConfig({ SPIKE_SVID_DIR: " /run/svid ", SPIKE_TRUST_ROOT_NEXUS: "a.org,b.org" });
  assert.equal(config.nexusUrl, "https://localhost:8553");
  assert.equal(config.identity.svidDir, "/run/svid");
  assert.deepEqual(config.trustRoots.nexus, ["a.org", "b.org"]);
  assert.throws(() => resolveWorkloadConfig({ SPIKE_NEXUS_API_URL: "http://n:1" }), /SPIKE_NEXUS_API_URL/);
});

Deno.test("SPIKE_NEXUS_DB_SYNCHRONOUS: full by default, any case, SQLite backends only, bad values named", () => {
  assert.equal(resolveNexusConfig({ HOME: "/h" }).sqliteSynchronous, "full");
  for (const [value, level] of [["full", "full"], ["NORMAL", "normal"], [" Off ", "off"], ["", "full"]] as const) {
    assert.equal(resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_DB_SYNCHRONOUS: value }).sqliteSynchronous, level);
  }
  const worker = resolveNexusConfig({
    HOME: "/h",
    SPIKE_NEXUS_BACKEND_STORE: "sqlite-worker",
    SPIKE_NEXUS_DB_SYNCHRONOUS: "normal",
  });
  assert.equal(worker.sqliteSynchronous, "normal");
  const memory = resolveNexusConfig({
    HOME: "/h",
    SPIKE_NEXUS_BACKEND_STORE: "memory",
    SPIKE_NEXUS_DB_SYNCHRONOUS: "off",
  });
  assert.equal(memory.sqliteSynchronous, undefined);
  for (const bad of ["extra", "2", "fsync"]) {
    assert.throws(
      () => resolveNexusConfig({ HOME: "/h", SPIKE_NEXUS_DB_SYNCHRONOUS: bad }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `SPIKE_NEXUS_DB_SYNCHRONOUS: '${bad}' is not one of full, normal, off`,
    );
  }
});
