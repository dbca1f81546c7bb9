/**
 * The systemd notification protocol on real processes: a Keeper and a Nexus
 * run with exactly the Deno permissions `rolePermissionFlags` gives them
 * under systemd, `NOTIFY_SOCKET` pointing at a Unix datagram socket this
 * test listens on (as systemd's `/run/systemd/notify`), `WATCHDOG_USEC` set
 * and `RUNTIME_DIRECTORY` where `RuntimeDirectory=` would put it.
 *
 * The Keeper reports READY=1 once listening. Nexus reports a waiting status
 * and no READY=1 until bootstrap hands it the root key, then READY=1 (and
 * `/ready` answers 200 by then); its watchdog pings arrive at half the
 * watchdog period, never further apart than the period itself; SIGTERM
 * brings STOPPING=1 and exit 0.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { rolePermissionFlags } from "../lib/config/permissions.ts";
import { getPlainStatus } from "../lib/dev/health.ts";
import { mintDevIdentities } from "../lib/dev/identities.ts";
import { NOTIFY_BIND_NAME } from "../lib/systemd/notify_socket.ts";
import { NotifyListener } from "./support/notify_listener.ts";
import { eventually, freePort, runSpike, SpikeProcess, TEST_DENO_FLAGS } from "./support/process.ts";

/** The watchdog period handed to Nexus: pings are due every 2 s, at the latest every 4 s. */
const WATCHDOG_USEC = 4_000_000;

Deno.test("systemd notify: Keeper ready when listening, Nexus ready after bootstrap, watchdog pings, STOPPING", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_notify_" });
  const ids = await mintDevIdentities(tmp, "spike.ist", 1);
  const listener = new NotifyListener(join(tmp, "notify"));
  const keeperPort = freePort();
  const nexusPort = freePort();
  const keeperUrl = `https://127.0.0.1:${keeperPort}`;
  const shamir = { SPIKE_NEXUS_SHAMIR_SHARES: "1", SPIKE_NEXUS_SHAMIR_THRESHOLD: "1" };
  const runtimeDir = async (name: string) => {
    const dir = join(tmp, "run", name);
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  };
  const keeperRun = await runtimeDir("spike-keeper-1");
  const nexusRun = await runtimeDir("spike-nexus");
  const keeperFrom = join(keeperRun, NOTIFY_BIND_NAME);
  const nexusFrom = join(nexusRun, NOTIFY_BIND_NAME);

  const keeper = new SpikeProcess(["keeper"], {
    env: {
      SPIKE_SVID_DIR: ids.dirOf("keeper-1"),
      SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${keeperPort}`,
      NOTIFY_SOCKET: listener.path,
      WATCHDOG_USEC: String(WATCHDOG_USEC),
      RUNTIME_DIRECTORY: keeperRun,
    },
    denoFlags: [
      ...rolePermissionFlags("keeper", {
        svidDir: ids.dirOf("keeper-1"),
        listen: `127.0.0.1:${keeperPort}`,
        notify: { socket: listener.path, bind: keeperFrom },
        jitless: true, // as spike-keeper@.service runs it
      }),
      "--quiet",
    ],
  });
  const dataDir = join(tmp, "data");
  const nexus = new SpikeProcess(["nexus"], {
    env: {
      ...shamir,
      SPIKE_SVID_DIR: ids.dirOf("nexus"),
      SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
      SPIKE_NEXUS_BACKEND_STORE: "sqlite",
      SPIKE_NEXUS_DATA_DIR: dataDir,
      SPIKE_NEXUS_KEEPER_PEERS: keeperUrl,
      NOTIFY_SOCKET: listener.path,
      WATCHDOG_USEC: String(WATCHDOG_USEC),
      RUNTIME_DIRECTORY: nexusRun,
    },
    denoFlags: [
      ...rolePermissionFlags("nexus", {
        svidDir: ids.dirOf("nexus"),
        dataDir,
        listen: `127.0.0.1:${nexusPort}`,
        connect: [`127.0.0.1:${keeperPort}`],
        notify: { socket: listener.path, bind: nexusFrom },
      }),
      "--quiet",
    ],
  });
  const children = [keeper, nexus];
  try {
    const keeperReady = await listener.waitFor((f) => f.READY === "1", { from: keeperFrom });
    assert.match(keeperReady.fields.STATUS ?? "", /no shard yet/);

    await listener.waitFor((f) => /waiting for the root key/.test(f.STATUS ?? ""), { from: nexusFrom });
    await nexus.waitFor(/nexus listening/);
    assert.equal(await getPlainStatus(nexusPort, "/ready"), 503);
    assert.ok(!listener.received.some((n) => n.from === nexusFrom && n.fields.READY), "no READY=1 without a key");

    const boot = await runSpike(["bootstrap"], {
      env: {
        ...shamir,
        SPIKE_SVID_DIR: ids.dirOf("bootstrap"),
        SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
        SPIKE_NEXUS_KEEPER_PEERS: keeperUrl,
      },
    });
    assert.equal(boot.code, 0, boot.stderr);

    const ready = await listener.waitFor((f) => f.READY === "1", { from: nexusFrom });
    assert.equal(await getPlainStatus(nexusPort, "/ready"), 200, "READY=1 only once /ready answers 200");
    assert.match(ready.fields.STATUS ?? "", new RegExp(`serving on port ${nexusPort}`));
    await listener.waitFor((f) => /holding a shard/.test(f.STATUS ?? ""), { from: keeperFrom });

    const pings = () => listener.received.filter((n) => n.from === nexusFrom && n.fields.WATCHDOG === "1");
    await eventually(
      () => Promise.resolve(pings().filter((n) => n.at > ready.at).length >= 3),
      "three watchdog pings after READY=1 (about 4 s at the 2 s cadence)",
      3 * WATCHDOG_USEC / 1000,
    );
    const seen = pings();
    for (let i = 1; i < seen.length; i++) {
      const gapMs = seen[i]!.at - seen[i - 1]!.at;
      assert.ok(gapMs < WATCHDOG_USEC / 1000, `ping ${i} came ${gapMs} ms after the last: systemd would restart Nexus`);
    }
    assert.ok(listener.received.some((n) => n.from === keeperFrom && n.fields.WATCHDOG === "1"), "the Keeper pings");

    for (const [child, from] of [[nexus, nexusFrom], [keeper, keeperFrom]] as const) {
      const status = await child.stop("SIGTERM");
      assert.equal(status.code, 0, child.output);
      await listener.waitFor((f) => f.STOPPING === "1", { from, timeoutMs: 5000 });
    }
  } finally {
    await Promise.all(children.map((child) => child.stop("SIGKILL")));
    await listener.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("systemd notify: a NOTIFY_SOCKET that cannot be used stops the role at once, saying why", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "spike_notify_bad_" });
  const ids = await mintDevIdentities(tmp, "spike.ist", 1);
  const keeper = (env: Record<string, string>, denoFlags: string[]) =>
    runSpike(["keeper"], {
      env: { SPIKE_SVID_DIR: ids.dirOf("keeper-1"), SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${freePort()}`, ...env },
      denoFlags,
    });
  try {
    const [stable, abstract] = await Promise.all([
      keeper({ NOTIFY_SOCKET: join(tmp, "notify") }, TEST_DENO_FLAGS),
      keeper({ NOTIFY_SOCKET: "@/org/freedesktop/systemd1/notify" }, [...TEST_DENO_FLAGS, "--unstable-net"]),
    ]);
    assert.equal(stable.code, 1, stable.stderr);
    assert.match(stable.stderr, /NOTIFY_SOCKET is set, but Deno's Unix datagram sockets need the --unstable-net flag/);
    assert.equal(abstract.code, 1, abstract.stderr);
    assert.match(abstract.stderr, /NOTIFY_SOCKET: abstract socket addresses/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
