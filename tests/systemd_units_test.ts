/**
 * The units of deploy/systemd/ under a real systemd (PID 1 of its own
 * namespaces, see support/systemd_container.ts), exactly as shipped: the
 * example environment files, the users from spike.sysusers.conf, every
 * hardening setting, and identities from a real SPIRE agent selecting each
 * role by its Unix user.
 *
 * `systemctl start spike.target` brings up three Keepers, Nexus and the
 * bootstrap oneshot; Nexus becomes active (Type=notify) only once it holds
 * its key; the operator CLI writes and reads a secret; bootstrap run again
 * hands out nothing; a Nexus whose event loop stops is killed by the
 * watchdog and comes back with its key from the Keepers; Nexus with
 * MemoryDenyWriteExecute=yes cannot start (V8's JIT), while the Keepers run
 * under it (--jitless); stopping the target stops everything cleanly.
 */
import assert from "node:assert/strict";
import { ensureSpireBinaries } from "./support/spire_binaries.ts";
import { startSystemdContainer, type SystemdContainer } from "./support/systemd_container.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const KEEPERS = ["spike-keeper@8443.service", "spike-keeper@8444.service", "spike-keeper@8445.service"];

/** Where this Deno keeps its cache (the units' DENO_DIR is mounted from it). */
function denoDir(): string {
  const explicit = Deno.env.get("DENO_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  return xdg ? `${xdg}/deno` : `${Deno.env.get("HOME")}/.cache/deno`;
}

/** A SPIRE server and agent as units inside, the agent's socket where the spike units look for it. */
const SPIRE_SETUP = String.raw`set -euo pipefail
mkdir -p /etc/spire
cat > /etc/spire/server.conf <<'EOF'
server {
  bind_address = "127.0.0.1"
  bind_port = "8081"
  socket_path = "/run/spire-server/private/api.sock"
  trust_domain = "spike.ist"
  data_dir = "/var/lib/spire-server"
  log_level = "WARN"
  ca_ttl = "24h"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "/var/lib/spire-server/datastore.sqlite3"
    }
  }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
EOF
cat > /etc/spire/agent.conf <<'EOF'
agent {
  data_dir = "/var/lib/spire-agent"
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "8081"
  socket_path = "/run/spire-agent/public/api.sock"
  trust_domain = "spike.ist"
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
EOF
printf '[Service]\nExecStart=/opt/spire/spire-server run -config /etc/spire/server.conf\nStateDirectory=spire-server\n' \
  > /etc/systemd/system/spire-server.service
printf '[Service]\nEnvironmentFile=/run/spire-token.env\nExecStart=/opt/spire/spire-agent run -config /etc/spire/agent.conf -joinToken $TOKEN\nStateDirectory=spire-agent\n' \
  > /etc/systemd/system/spire-agent.service
systemctl daemon-reload
systemctl start spire-server
server=/run/spire-server/private/api.sock
for i in $(seq 1 120); do /opt/spire/spire-server healthcheck -socketPath $server >/dev/null 2>&1 && break; sleep 0.25; done
token=$(/opt/spire/spire-server token generate -socketPath $server -spiffeID spiffe://spike.ist/test/agent | awk '/Token/{print $2}')
echo "TOKEN=$token" > /run/spire-token.env
systemctl start spire-agent
for i in $(seq 1 120); do
  /opt/spire/spire-agent healthcheck -socketPath /run/spire-agent/public/api.sock >/dev/null 2>&1 && break; sleep 0.25
done
systemd-sysusers
entry() {
  /opt/spire/spire-server entry create -socketPath $server -parentID spiffe://spike.ist/test/agent \
    -spiffeID "spiffe://spike.ist/$1" -selector "$2" >/dev/null
}
entry spike/nexus unix:user:spike-nexus
entry spike/keeper unix:user:spike-keeper
entry spike/bootstrap unix:user:spike-bootstrap
entry spike/pilot/role/superuser unix:uid:0
# Wait until the agent hands out the operator's identity (it syncs entries every few seconds).
for i in $(seq 1 120); do
  /opt/spire/spire-agent api fetch x509 -socketPath /run/spire-agent/public/api.sock 2>/dev/null \
    | grep -q pilot/role/superuser && break
  sleep 0.5
done
systemctl is-active spire-server spire-agent
`;

/** The operator CLI, run inside as root (the Pilot superuser). */
const SPIKE_CLI =
  "HOME=/root DENO_DIR=/opt/spike/deno-dir SPIFFE_ENDPOINT_SOCKET=unix:///run/spire-agent/public/api.sock " +
  "SPIKE_NEXUS_API_URL=https://127.0.0.1:8553 /usr/local/bin/deno run --config=/opt/spike/deno.json --frozen " +
  "--cached-only --quiet -A /opt/spike/cmd/spike.ts";

/** `systemctl show` properties of a unit. */
async function show(ctr: SystemdContainer, unit: string): Promise<Record<string, string>> {
  const { output } = await ctr.sh(`systemctl show '${unit}'`);
  return Object.fromEntries(output.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** Polls until `check` holds for the unit's properties; throws with them after `timeoutMs`. */
async function untilUnit(
  ctr: SystemdContainer,
  unit: string,
  check: (p: Record<string, string>) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const props = await show(ctr, unit);
    if (check(props)) return props;
    if (Date.now() > deadline) {
      const journal = await ctr.sh(`journalctl -u '${unit}' --no-pager | tail -30`);
      throw new Error(`${unit}: ${what} did not happen: ${JSON.stringify(props)}\n${journal.output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function journal(ctr: SystemdContainer, unit: string): Promise<string> {
  return (await ctr.sh(`journalctl -u '${unit}' --no-pager -o cat`)).output;
}

Deno.test("systemd units: the whole stack under a real systemd, as shipped", async (t) => {
  assert.equal(Deno.uid(), 0, "booting systemd in its own namespaces needs root");
  const spireBin = await ensureSpireBinaries();
  const ctr = await startSystemdContainer({ repo: REPO, denoDir: denoDir(), spireBin });
  try {
    await t.step("SPIRE server and agent; one entry per role, selected by Unix user", async () => {
      const spire = await ctr.sh(SPIRE_SETUP, { timeoutMs: 120_000 });
      assert.equal(spire.code, 0, spire.output);
    });

    await t.step("systemctl start spike.target: Keepers ready, bootstrap verifies, then Nexus is active", async () => {
      const enable = await ctr.sh(`systemctl enable spike-nexus.service ${KEEPERS.join(" ")} spike-bootstrap.service`);
      assert.equal(enable.code, 0, enable.output);
      // Returns once every start job is done: Nexus's only once it sent READY=1.
      const start = await ctr.sh("systemctl start spike.target", { timeoutMs: 180_000 });
      assert.equal(start.code, 0, start.output + "\n" + await journal(ctr, "spike-nexus.service"));
      const nexus = await show(ctr, "spike-nexus.service");
      assert.deepEqual([nexus.ActiveState, nexus.SubState, nexus.StatusText], [
        "active",
        "running",
        "serving on port 8553",
      ]);
      for (const keeper of KEEPERS) {
        const props = await untilUnit(ctr, keeper, (p) => /holding a shard/.test(p.StatusText ?? ""), "shard held");
        assert.equal(props.ActiveState, "active");
      }
      const bootstrap = await show(ctr, "spike-bootstrap.service");
      assert.deepEqual([bootstrap.ActiveState, bootstrap.Result], ["active", "success"]);
      assert.match(await journal(ctr, "spike-bootstrap.service"), /^bootstrap: verified$/m);
      // Each role got its own identity from the agent.
      assert.match(await journal(ctr, "spike-nexus.service"), /"spiffeId":"spiffe:\/\/spike\.ist\/spike\/nexus"/);
    });

    await t.step("the operator CLI writes and reads a secret through Nexus", async () => {
      const put = await ctr.sh(`${SPIKE_CLI} secret put app/db --from-stdin pass`, { stdin: "s3cret\n" });
      assert.equal(put.code, 0, put.output);
      const get = await ctr.sh(`${SPIKE_CLI} secret get app/db pass`);
      assert.deepEqual([get.code, get.output], [0, "s3cret"]);
    });

    await t.step("bootstrap again (a reboot): exits 0 and hands out nothing", async () => {
      const rerun = await ctr.sh("systemctl restart spike-bootstrap.service");
      assert.equal(rerun.code, 0, rerun.output);
      const log = await journal(ctr, "spike-bootstrap.service");
      assert.match(log, /^bootstrap: already initialized, nothing to do$/m);
      assert.equal(log.match(/shard delivered/g)?.length, 3, "only the first run delivered shards");
    });

    await t.step("a Nexus whose event loop stops is killed by the watchdog and comes back with its key", async () => {
      // A shorter watchdog than the shipped 30 s, so the test does not wait that long.
      const dropIn = await ctr.sh(
        `mkdir -p /etc/systemd/system/spike-nexus.service.d &&
        printf '[Service]\\nWatchdogSec=4s\\n' > /etc/systemd/system/spike-nexus.service.d/test-watchdog.conf &&
        systemctl daemon-reload && systemctl restart spike-nexus.service`,
        { timeoutMs: 120_000 },
      );
      assert.equal(dropIn.code, 0, dropIn.output);
      const before = await show(ctr, "spike-nexus.service");
      assert.equal(before.WatchdogUSec, "4s");
      const stopped = await ctr.sh(`kill -STOP ${before.MainPID}`);
      assert.equal(stopped.code, 0, stopped.output);
      const after = await untilUnit(
        ctr,
        "spike-nexus.service",
        (p) => p.NRestarts === "1" && p.ActiveState === "active" && p.MainPID !== before.MainPID,
        "a watchdog restart",
      );
      assert.equal(after.StatusText, "serving on port 8553");
      assert.match(await journal(ctr, "spike-nexus.service"), /Failed with result 'watchdog'/);
      const get = await ctr.sh(`${SPIKE_CLI} secret get app/db pass`);
      assert.deepEqual([get.code, get.output], [0, "s3cret"]);
    });

    await t.step("MemoryDenyWriteExecute=yes: Nexus (V8 with its JIT) cannot start; jitless Keepers run", async () => {
      const tried = await ctr.sh(
        `printf '[Service]\\nMemoryDenyWriteExecute=yes\\nRestart=no\\n' \\
          > /etc/systemd/system/spike-nexus.service.d/test-mdwe.conf && systemctl daemon-reload &&
        systemctl restart spike-nexus.service`,
        { timeoutMs: 60_000 },
      );
      assert.notEqual(tried.code, 0, tried.output);
      const failed = await show(ctr, "spike-nexus.service");
      assert.equal(failed.ActiveState, "failed");
      assert.match(await journal(ctr, "spike-nexus.service"), /Deno has panicked|Fatal error/);
      for (const keeper of KEEPERS) {
        const props = await show(ctr, keeper);
        assert.deepEqual([props.ActiveState, props.MemoryDenyWriteExecute], ["active", "yes"], keeper);
      }
      const back = await ctr.sh(
        `rm /etc/systemd/system/spike-nexus.service.d/test-mdwe.conf &&
        systemctl daemon-reload && systemctl reset-failed spike-nexus.service && systemctl start spike-nexus.service`,
        {
          timeoutMs: 120_000,
        },
      );
      assert.equal(back.code, 0, back.output);
    });

    await t.step("systemctl stop spike.target stops every unit cleanly", async () => {
      const stop = await ctr.sh("systemctl stop spike.target", { timeoutMs: 120_000 });
      assert.equal(stop.code, 0, stop.output);
      for (const unit of ["spike-nexus.service", ...KEEPERS]) {
        const props = await untilUnit(ctr, unit, (p) => p.ActiveState === "inactive", "stopped", 30_000);
        assert.equal(props.Result, "success", unit);
      }
    });
  } finally {
    await ctr.stop();
  }
});
