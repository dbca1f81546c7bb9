/**
 * The whole stack on identities from a real SPIRE deployment: a SPIRE
 * server and agent (built from the pinned release), every spike process
 * reading its SVID from the agent's Workload API (no SVID files, no "secret
 * zero"), each process told apart by the Unix attestor through its group.
 *
 * Bootstrap hands the Keepers their shards and verifies Nexus; the Pilot
 * superuser writes a secret and a policy; a workload reads it under that
 * policy and another workload is refused; then Nexus's short-lived SVID
 * is renewed by SPIRE and Nexus presents the new one on new connections
 * without a restart, and everything keeps working.
 */
import assert from "node:assert/strict";
import * as tls from "node:tls";
import { runSpike, SpikeProcess, waitForReady } from "./support/process.ts";
import { freePort } from "./support/ports.ts";
import { type SpireStack, startSpire } from "./support/spire.ts";
import { ensureSpireBinaries } from "./support/spire_binaries.ts";

const TD = "spiffe://spike.ist";
/** Primary group of each process: what SPIRE's Unix attestor tells them apart by. */
const GID = { nexus: 2101, keeper: 2102, bootstrap: 2103, superuser: 2104, billing: 2105, intruder: 2106 } as const;
/** Nexus's SVID lifetime: short, so that SPIRE renews it during the test. */
const NEXUS_SVID_TTL_S = 20;

/** The serial number of the certificate the server on `port` presents to a new connection. */
function serverSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on("error", reject);
  });
}

Deno.test("SPIRE: every role gets its identity from a real agent; Nexus follows SVID renewal", async (t) => {
  assert.equal(
    Deno.uid(),
    0,
    "this test starts each role under its own Unix group (how SPIRE's Unix attestor tells them apart), which needs root",
  );
  // Built on the first run on a machine (a few minutes), then cached; or SPIKE_TEST_SPIRE_BIN.
  const binDir = await ensureSpireBinaries();
  let spire: SpireStack | undefined;
  const running: SpikeProcess[] = [];
  try {
    spire = await startSpire(binDir);
    await spire.register([
      { spiffeId: `${TD}/spike/nexus`, gid: GID.nexus, x509TtlSeconds: NEXUS_SVID_TTL_S },
      { spiffeId: `${TD}/spike/keeper`, gid: GID.keeper },
      { spiffeId: `${TD}/spike/bootstrap`, gid: GID.bootstrap },
      { spiffeId: `${TD}/spike/pilot/role/superuser`, gid: GID.superuser },
      { spiffeId: `${TD}/app/billing`, gid: GID.billing },
      { spiffeId: `${TD}/app/intruder`, gid: GID.intruder },
    ]);
    const keeperPorts = [freePort(), freePort()];
    const nexusPort = freePort();
    const shared = {
      SPIFFE_ENDPOINT_SOCKET: spire.endpoint,
      SPIKE_NEXUS_API_URL: `https://127.0.0.1:${nexusPort}`,
      SPIKE_NEXUS_KEEPER_PEERS: keeperPorts.map((port) => `https://127.0.0.1:${port}`).join(","),
      SPIKE_NEXUS_SHAMIR_SHARES: "2",
      SPIKE_NEXUS_SHAMIR_THRESHOLD: "2",
    };
    const start = async (args: string[], gid: number, env: Record<string, string>, ready: RegExp) => {
      const child = new SpikeProcess(args, { env: { ...shared, ...env }, gid });
      running.push(child);
      await child.waitFor(ready);
      return child;
    };
    const as = (who: keyof typeof GID, args: string[], stdin?: string) =>
      runSpike(args, { env: shared, gid: GID[who], ...(stdin === undefined ? {} : { stdin }) });

    await t.step("Nexus and two Keepers start on SVIDs from the Workload API; Bootstrap verifies", async () => {
      await Promise.all([
        start(["nexus"], GID.nexus, {
          SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${nexusPort}`,
          SPIKE_NEXUS_BACKEND_STORE: "memory",
        }, /nexus listening/),
        ...keeperPorts.map((port) =>
          start(["keeper"], GID.keeper, { SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}` }, /keeper listening/)
        ),
      ]);
      assert.match(running[0]!.output, /SVID received.*Workload API.*spiffe:\/\/spike\.ist\/spike\/nexus/);
      const boot = await as("bootstrap", ["bootstrap"]);
      assert.equal(boot.code, 0, boot.stderr);
      assert.match(boot.stdout, /bootstrap: verified/);
      await waitForReady(nexusPort);
    });

    await t.step("the superuser writes; a workload reads under a policy; another workload is refused", async () => {
      const put = await as(
        "superuser",
        ["secret", "put", "billing/db", "user=billing", "--from-stdin", "pass"],
        "pw\n",
      );
      assert.equal(put.code, 0, put.stderr);
      const policy = await as("superuser", [
        "policy",
        "create",
        "--name",
        "billing",
        "--spiffeid-pattern",
        "^spiffe://spike\\.ist/app/billing$",
        "--path-pattern",
        "^billing/",
        "--permissions",
        "read",
      ]);
      assert.equal(policy.code, 0, policy.stderr);
      const [read, refused] = await Promise.all([
        as("billing", ["secret", "get", "billing/db", "pass"]),
        as("intruder", ["secret", "get", "billing/db", "pass"]),
      ]);
      assert.deepEqual([read.code, read.stdout], [0, "pw"], read.stderr);
      assert.notEqual(refused.code, 0);
      assert.equal(refused.stdout, "");
      assert.match(refused.stderr, /not authorized: no policy grants/);
    });

    await t.step("SPIRE renews Nexus's SVID; new connections get the new one, and requests still work", async () => {
      const first = await serverSerial(nexusPort);
      const deadline = Date.now() + NEXUS_SVID_TTL_S * 1000 + 10_000;
      let current = first;
      while (current === first) {
        assert.ok(
          Date.now() < deadline,
          `Nexus still presents serial ${first} after its SVID should have been renewed`,
        );
        await new Promise((resolve) => setTimeout(resolve, 500));
        current = await serverSerial(nexusPort);
      }
      const read = await as("billing", ["secret", "get", "billing/db", "pass"]);
      assert.deepEqual([read.code, read.stdout], [0, "pw"], read.stderr);
    });
  } finally {
    const statuses = await Promise.all(running.map(async (child) => [child, await child.stop()] as const));
    await spire?.stop();
    for (const [child, status] of statuses) assert.equal(status.code, 0, `exit after SIGTERM:\n${child.output}`);
  }
});
