/**
 * The systemd units in deploy/systemd/, checked by systemd's own tools and
 * against the code:
 * - `systemd-analyze verify` loads them (with the units they depend on) and
 *   finds nothing to say; a unit with a typo beside them is caught;
 * - `systemd-analyze security --offline` scores each (exposure ≤ 1.5; the
 *   figures are in docs/OPERATIONS.md);
 * - each ExecStart, expanded with the example environment files and an
 *   instance name as systemd would, runs Deno with exactly the flags
 *   `rolePermissionFlags` computes from the configuration that environment
 *   resolves to, in the environment `roleEnvironment` asks for, so the units
 *   cannot drift from lib/config/permissions.ts;
 * - the hardening the project promises is there.
 *
 * tests/systemd_units_test.ts runs the same units under a real systemd.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import {
  netTarget,
  type ProcessRole,
  roleEnvironment,
  rolePermissionFlags,
  type RoleResources,
} from "../lib/config/permissions.ts";
import { resolveBootstrapConfig, resolveKeeperConfig, resolveNexusConfig } from "../lib/config/spike_config.ts";
import type { ListenAddress } from "../lib/config/parse.ts";
import { NOTIFY_BIND_NAME } from "../lib/systemd/notify_socket.ts";
import {
  expandSpecifiers,
  expandVariables,
  parseEnvFile,
  parseUnit,
  serviceEnvironment,
  type UnitFile,
  value,
  values,
} from "./support/systemd_unit.ts";
import { systemdTestRoot } from "./support/systemd_root.ts";

const UNITS_DIR = new URL("../deploy/systemd/", import.meta.url).pathname;
const UNITS = ["spike-nexus.service", "spike-keeper@.service", "spike-bootstrap.service", "spike.target"];
/** How each unit is named when loaded (a template needs an instance). */
const LOADED = ["spike-nexus.service", "spike-keeper@8443.service", "spike-bootstrap.service", "spike.target"];
/** Where spike installs and where the service manager listens (the units' fixed layout). */
const DENO = "/usr/local/bin/deno";
const ENTRY = "/opt/spike/cmd/spike.ts";
const RUNTIME_FLAGS = ["--config=/opt/spike/deno.json", "--frozen", "--cached-only", "--quiet"];
const SYSTEMD_NOTIFY_SOCKET = "/run/systemd/notify";

async function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped", env: { NO_COLOR: "1" } })
    .output();
  const decoder = new TextDecoder();
  return { code: out.code, output: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim() };
}

async function readUnit(name: string): Promise<UnitFile> {
  return parseUnit(await Deno.readTextFile(join(UNITS_DIR, name)));
}

Deno.test("systemd-analyze verify: the units load cleanly; a broken one beside them is reported", async () => {
  const root = await systemdTestRoot(UNITS_DIR, UNITS);
  try {
    const clean = await run("systemd-analyze", ["verify", `--root=${root}`, ...LOADED]);
    assert.deepEqual(clean, { code: 0, output: "" });

    // The check can fail: a typo in a copy is named, with its line.
    const broken = (await Deno.readTextFile(join(UNITS_DIR, "spike-nexus.service")))
      .replace("ProtectSystem=strict", "ProtectSytem=strict");
    await Deno.writeTextFile(join(root, "etc/systemd/system/spike-broken.service"), broken);
    const caught = await run("systemd-analyze", ["verify", `--root=${root}`, "spike-broken.service"]);
    assert.match(caught.output, /spike-broken\.service:\d+: Unknown key 'ProtectSytem' in section \[Service\]/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("systemd-analyze security: every service scores an exposure of 1.5 or less", async () => {
  const root = await systemdTestRoot(UNITS_DIR, UNITS);
  try {
    const scores: Record<string, number> = {};
    for (const unit of LOADED.filter((u) => u.endsWith(".service"))) {
      const { code, output } = await run("systemd-analyze", ["security", "--offline=true", `--root=${root}`, unit]);
      assert.equal(code, 0, output);
      const score = /Overall exposure level for \S+: (\d+\.\d)/.exec(output)?.[1];
      assert.ok(score, output);
      scores[unit] = Number(score);
    }
    console.log("systemd-analyze security --offline=true:", JSON.stringify(scores));
    for (const [unit, score] of Object.entries(scores)) assert.ok(score <= 1.5, `${unit}: ${score}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The environment a unit's service sees: its Environment= lines, overridden by its EnvironmentFile=s (the examples). */
async function serviceEnv(unit: UnitFile, instance = ""): Promise<Record<string, string>> {
  const env = serviceEnvironment(unit, instance);
  for (const file of values(unit, "Service", "EnvironmentFile")) {
    assert.match(file, /^\/etc\/spike\/[a-z]+\.env$/, "environment files live in /etc/spike");
    Object.assign(env, parseEnvFile(await Deno.readTextFile(join(UNITS_DIR, "env", basename(file)))));
  }
  return env;
}

/** ExecStart split into Deno's runtime flags, the role's flags, and the spike command. */
function execStart(unit: UnitFile, env: Record<string, string>, instance = "") {
  const words = expandVariables(expandSpecifiers(value(unit, "Service", "ExecStart"), instance), env).split(" ");
  assert.deepEqual(words.slice(0, 2), [DENO, "run"]);
  const entry = words.indexOf(ENTRY);
  assert.ok(entry > 0, `ExecStart runs ${ENTRY}`);
  return {
    runtime: words.slice(2, 2 + RUNTIME_FLAGS.length),
    role: words.slice(2 + RUNTIME_FLAGS.length, entry),
    command: words.slice(entry + 1),
  };
}

const listenOf = (address: ListenAddress) => `${address.host || "0.0.0.0"}:${address.port}`;
const socketPath = (endpoint: string) => {
  assert.match(endpoint, /^unix:\/\//);
  return endpoint.slice("unix://".length);
};
const notifyOf = (unit: UnitFile, instance = "") => ({
  socket: SYSTEMD_NOTIFY_SOCKET,
  bind: `/run/${expandSpecifiers(value(unit, "Service", "RuntimeDirectory"), instance)}/${NOTIFY_BIND_NAME}`,
});

function assertFlags(unit: UnitFile, env: Record<string, string>, role: ProcessRole, resources: RoleResources, i = "") {
  const { runtime, role: flags, command } = execStart(unit, env, i);
  assert.deepEqual(runtime, RUNTIME_FLAGS);
  assert.deepEqual(flags, rolePermissionFlags(role, resources));
  assert.deepEqual(command, [role]);
  // The role's memory settings (the environment glibc reads at start) are set by the unit.
  for (const [name, want] of Object.entries(roleEnvironment(role))) assert.equal(env[name], want, name);
}

Deno.test("ExecStart: Nexus runs with exactly rolePermissionFlags for the configuration its environment sets", async () => {
  const unit = await readUnit("spike-nexus.service");
  const env = await serviceEnv(unit);
  const config = resolveNexusConfig(env);
  assert.equal(config.dataDir, `/var/lib/${value(unit, "Service", "StateDirectory")}`);
  assert.equal(value(unit, "Service", "SocketBindAllow"), `tcp:${config.listen.port}`);
  assertFlags(unit, env, "nexus", {
    workloadApiSocket: socketPath(config.identity.endpointSocket),
    dataDir: config.dataDir,
    listen: listenOf(config.listen),
    connect: config.keeperPeers.map(netTarget),
    notify: notifyOf(unit),
  });
});

Deno.test("ExecStart: a Keeper instance runs with exactly its flags, on the port its instance names, JIT off", async () => {
  const unit = await readUnit("spike-keeper@.service");
  for (const port of ["8443", "9100"]) {
    const env = await serviceEnv(unit, port);
    const config = resolveKeeperConfig(env);
    assert.equal(config.listen.port, Number(port));
    assertFlags(unit, env, "keeper", {
      workloadApiSocket: socketPath(config.identity.endpointSocket),
      listen: listenOf(config.listen),
      notify: notifyOf(unit, port),
      jitless: true,
    }, port);
  }
});

Deno.test("ExecStart: bootstrap reaches Nexus and every Keeper, nothing else, JIT off, and skips an initialized deployment", async () => {
  const unit = await readUnit("spike-bootstrap.service");
  const env = await serviceEnv(unit);
  const config = resolveBootstrapConfig(env);
  assert.equal(config.skipIfInitialized, true);
  assertFlags(unit, env, "bootstrap", {
    workloadApiSocket: socketPath(config.identity.endpointSocket),
    connect: [netTarget(config.nexusUrl), ...config.keeperPeers.map(netTarget)],
    jitless: true,
  });
});

Deno.test("every service carries the promised hardening and restart policy", async () => {
  const expected: Record<string, string> = {
    NoNewPrivileges: "yes",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    PrivateDevices: "yes",
    CapabilityBoundingSet: "",
    LimitCORE: "0",
    RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6",
  };
  for (const name of UNITS.filter((u) => u.endsWith(".service"))) {
    const unit = await readUnit(name);
    for (const [key, want] of Object.entries(expected)) {
      assert.equal(value(unit, "Service", key), want, `${name} ${key}`);
    }
    assert.ok(values(unit, "Service", "SystemCallFilter").includes("@system-service"), name);
    assert.ok(!values(unit, "Service", "User").includes("root"), name);
    // MemoryDenyWriteExecute only where V8 runs without its JIT (see tests/systemd_units_test.ts).
    const jitless = value(unit, "Service", "ExecStart").includes("--jitless");
    assert.equal(values(unit, "Service", "MemoryDenyWriteExecute")[0] === "yes", jitless, name);
    if (name === "spike-bootstrap.service") {
      assert.equal(value(unit, "Service", "Type"), "oneshot");
    } else {
      assert.equal(value(unit, "Service", "Type"), "notify", name);
      assert.equal(value(unit, "Service", "Restart"), "always", name);
      assert.match(value(unit, "Service", "WatchdogSec"), /^\d+s$/, name);
    }
  }
});
