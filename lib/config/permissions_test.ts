import assert from "node:assert/strict";
import { netTarget, roleEnvironment, rolePermissionFlags, SERVER_MEMORY_V8 } from "./permissions.ts";

Deno.test("nexus may read its SVID and data, write only data, and use only its ports", () => {
  assert.deepEqual(
    rolePermissionFlags("nexus", {
      svidDir: "/d/id/nexus",
      dataDir: "/d/data",
      listen: "127.0.0.1:8553",
      connect: ["127.0.0.1:8443", "127.0.0.1:8543"],
    }),
    [
      "--no-prompt",
      "--allow-env",
      "--allow-read=/d/id/nexus,/d/data",
      "--allow-write=/d/data",
      "--allow-net=127.0.0.1:8553,127.0.0.1:8443,127.0.0.1:8543",
      "--v8-flags=--enable-experimental-regexp-engine,--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000",
    ],
  );
});

Deno.test("nexus on postgres: writes only its audit file, reads its password file, reaches the database", () => {
  assert.deepEqual(
    rolePermissionFlags("nexus", {
      svidDir: "/d/id/nexus",
      readFiles: ["/run/secrets/pg"],
      writeFiles: ["/var/log/spike/audit.log"],
      listen: "0.0.0.0:8553",
      connect: [netTarget("postgres://spike@db.internal/spike"), "10.0.0.5:8443"],
    }),
    [
      "--no-prompt",
      "--allow-env",
      "--allow-read=/d/id/nexus,/run/secrets/pg",
      "--allow-write=/var/log/spike/audit.log",
      "--allow-net=0.0.0.0:8553,db.internal:5432,10.0.0.5:8443",
      "--v8-flags=--enable-experimental-regexp-engine,--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000",
    ],
  );
});

Deno.test("a keeper cannot write files and bootstrap cannot listen", () => {
  const keeper = rolePermissionFlags("keeper", { svidDir: "/k", listen: "127.0.0.1:8443" });
  assert.ok(!keeper.some((f) => f.startsWith("--allow-write")));
  assert.ok(!keeper.some((f) => f.startsWith("--allow-run")));
  const bootstrap = rolePermissionFlags("bootstrap", { svidDir: "/b", connect: ["127.0.0.1:8553"] });
  assert.deepEqual(bootstrap, ["--no-prompt", "--allow-env", "--allow-read=/b", "--allow-net=127.0.0.1:8553"]);
});

Deno.test("netTarget keeps host and port", () => {
  assert.equal(netTarget("https://127.0.0.1:8443"), "127.0.0.1:8443");
  assert.equal(netTarget("https://localhost"), "localhost:443");
  assert.equal(netTarget("postgresql://u:p@db:6432/spike?sslmode=require"), "db:6432");
});

Deno.test("with SPIRE's Workload API: read, write and unix: net access to the socket, no SVID directory", () => {
  assert.deepEqual(
    rolePermissionFlags("keeper", { workloadApiSocket: "/run/spire-agent/public/api.sock", listen: "0.0.0.0:8443" }),
    [
      "--no-prompt",
      "--allow-env",
      "--allow-read=/run/spire-agent/public/api.sock",
      "--allow-write=/run/spire-agent/public/api.sock",
      "--allow-net=0.0.0.0:8443,unix:/run/spire-agent/public/api.sock",
      "--v8-flags=--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000",
    ],
  );
});

Deno.test("under systemd: the notification socket and its sending end, with --unstable-net", () => {
  assert.deepEqual(
    rolePermissionFlags("nexus", {
      workloadApiSocket: "/run/spire-agent/public/api.sock",
      dataDir: "/var/lib/spike-nexus",
      listen: "0.0.0.0:8553",
      connect: ["127.0.0.1:8443"],
      notify: { socket: "/run/systemd/notify", bind: "/run/spike-nexus/notify.sock" },
    }),
    [
      "--no-prompt",
      "--allow-env",
      "--allow-read=/run/spire-agent/public/api.sock,/var/lib/spike-nexus,/run/spike-nexus/notify.sock",
      "--allow-write=/run/spire-agent/public/api.sock,/var/lib/spike-nexus,/run/spike-nexus/notify.sock," +
      "/run/systemd/notify",
      "--allow-net=0.0.0.0:8553,127.0.0.1:8443,unix:/run/spire-agent/public/api.sock," +
      "unix:/run/spike-nexus/notify.sock,unix:/run/systemd/notify",
      "--unstable-net",
      "--v8-flags=--enable-experimental-regexp-engine,--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000",
    ],
  );
});

Deno.test("jitless: V8's JIT off, next to Nexus's own V8 flag", () => {
  assert.deepEqual(rolePermissionFlags("bootstrap", { svidDir: "/b", jitless: true }).at(-1), "--v8-flags=--jitless");
  assert.deepEqual(
    rolePermissionFlags("nexus", { svidDir: "/n", jitless: true }).at(-1),
    "--v8-flags=--enable-experimental-regexp-engine,--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000,--jitless",
  );
});

Deno.test("the server roles run with a 2 MiB young generation and large blocks mapped apart; bootstrap does not", () => {
  for (const role of ["nexus", "keeper"] as const) {
    assert.match(rolePermissionFlags(role, { svidDir: "/s" }).at(-1)!, new RegExp(`^--v8-flags=.*${SERVER_MEMORY_V8}`));
    assert.deepEqual(roleEnvironment(role), { MALLOC_MMAP_THRESHOLD_: "16384" });
  }
  assert.ok(!rolePermissionFlags("bootstrap", { svidDir: "/b" }).some((flag) => flag.includes("semi-space")));
  assert.deepEqual(roleEnvironment("bootstrap"), {});
});
