/**
 * Policy checks with 10,000 policies, over real mutual TLS and the SQLite
 * store on disk: a workload granted by exactly one policy deep in the set is
 * let in and nowhere else, every other workload is refused, and policy
 * changes made through the API are enforced by the very next request.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiCallError } from "../lib/client/errors.ts";
import { NexusClient } from "../lib/client/nexus_client.ts";
import { resolveNexusConfig } from "../lib/config/spike_config.ts";
import { generateRootKey } from "../lib/crypto/root_key.ts";
import { systemRandom } from "../lib/crypto/random.ts";
import { silentLogger } from "../lib/log/logger.ts";
import { installRootKey } from "../lib/nexus/key_installer.ts";
import { policySealer } from "../lib/nexus/policy_seal.ts";
import { startNexus } from "../lib/nexus/server.ts";
import { createDevCa } from "../lib/spiffe/dev_ca.ts";
import { createMtlsClient, type MtlsClient } from "../lib/spiffe/mtls_client.ts";
import { isNexus, spikeIdFor } from "../lib/spiffe/roles.ts";
import { createStaticSource } from "../lib/spiffe/static_source.ts";
import { createSqliteWorkerStore } from "../lib/store/sqlite_worker_store.ts";
import type { PolicyRecord } from "../lib/store/types.ts";

const POLICIES = 10_000;
/** The one policy for the `deep` workload sits here in the name order (the store lists by name). */
const DEEP_AT = 7_321;
const DEEP_ID = "spiffe://spike.ist/app/deep";
const SHALLOW_ID = "spiffe://spike.ist/app/shallow";

function team(i: number): string {
  return String(i).padStart(5, "0");
}

/**
 * The stored policies: per team, an anchored literal policy, with every
 * tenth one written so the index cannot use it (an unanchored ID pattern,
 * a class or alternation in the path), and the `deep` workload's policy.
 */
function policies(): PolicyRecord[] {
  const at = new Date();
  const out: PolicyRecord[] = [];
  for (let i = 0; i < POLICIES; i++) {
    const base = { name: `p-${team(i)}`, createdAt: at, updatedAt: at };
    if (i === DEEP_AT) {
      out.push({
        ...base,
        spiffeIdPattern: "^spiffe://spike\\.ist/app/deep$",
        pathPattern: "^deep/",
        permissions: ["read"],
      });
    } else if (i % 10 === 3) {
      out.push({
        ...base,
        spiffeIdPattern: `spiffe://spike\\.ist/x/team-${team(i)}/(web|db)$`,
        pathPattern: `(^|/)team-${team(i)}/[a-z]+$`,
        permissions: ["read"],
      });
    } else {
      out.push({
        ...base,
        spiffeIdPattern: `^spiffe://spike\\.ist/team-${team(i)}/.*$`,
        pathPattern: `^team-${team(i)}/`,
        permissions: ["read", "write"],
      });
    }
  }
  return out;
}

/** Asserts that `call` fails with 401, the answer when no policy grants the request. */
async function refused(call: () => Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof ApiCallError, `${what}: ${error}`);
    assert.equal(error.status, 401, what);
    return true;
  });
}

Deno.test("10,000 policies over mTLS: one deep policy grants, the rest refuse, API changes apply at once", async () => {
  const ca = await createDevCa();
  const dir = await Deno.makeTempDir({ prefix: "spike_policy_scale_" });
  const dataDir = join(dir, "data");
  const clients: MtlsClient[] = [];
  let nexus: Awaited<ReturnType<typeof startNexus>> | undefined;
  try {
    // Sealed as Nexus seals them and written straight into the database, through the worker
    // store whose group commit makes 10,000 writes quick; 10,000 API calls would only test the write path.
    const key = generateRootKey(systemRandom);
    const seeder = createSqliteWorkerStore({ dataDir });
    try {
      const seal = await policySealer(key, 1, systemRandom);
      const all = policies();
      for (let from = 0; from < all.length; from += 500) {
        const sealed = await Promise.all(all.slice(from, from + 500).map(seal));
        await Promise.all(sealed.map((policy) => seeder.upsertPolicy(policy)));
      }
    } finally {
      await seeder.close();
    }
    const config = resolveNexusConfig({
      HOME: dir,
      SPIKE_NEXUS_TLS_PORT: "127.0.0.1:0",
      SPIKE_NEXUS_BACKEND_STORE: "sqlite",
      SPIKE_NEXUS_DATA_DIR: dataDir,
      SPIKE_NEXUS_KEEPER_PEERS: "",
      SPIKE_NEXUS_AUDIT_LOG: join(dir, "audit.log"),
    });
    nexus = await startNexus({
      config,
      identity: createStaticSource(await ca.issue(spikeIdFor("nexus"))),
      log: silentLogger,
    });
    try {
      assert.equal(await installRootKey(nexus.deps, key), "installed");
    } finally {
      key.fill(0);
    }
    const url = `https://127.0.0.1:${nexus.port}`;
    const client = async (spiffeId: string) => {
      const transport = createMtlsClient({
        identity: createStaticSource(await ca.issue(spiffeId)),
        serverId: (id) => isNexus(id),
        timeoutMs: 20_000,
      });
      clients.push(transport);
      return new NexusClient(url, transport);
    };
    const admin = await client(spikeIdFor("pilot_superuser"));
    const deep = await client(DEEP_ID);
    const shallow = await client(SHALLOW_ID);
    const teamMember = await client(`spiffe://spike.ist/team-${team(42)}/api`);
    const unanchoredMember = await client(`spiffe://spike.ist/x/team-${team(9_993)}/web`);

    assert.equal((await admin.listPolicies()).length, POLICIES);
    for (
      const path of ["deep/db", "deep/cache", `team-${team(42)}/db`, `team-${team(43)}/db`, `team-${team(9_993)}/db`]
    ) {
      await admin.putSecret(path, { value: path });
    }

    // Exactly the deep policy lets the deep workload in, for reading only, on its paths only.
    assert.deepEqual(await deep.getSecret("deep/db"), { value: "deep/db" });
    assert.deepEqual(await deep.getSecret("deep/cache"), { value: "deep/cache" });
    await refused(() => deep.putSecret("deep/db", { value: "x" }), "deep write");
    await refused(() => deep.getSecret(`team-${team(42)}/db`), "deep on a team path");
    await refused(() => deep.listSecrets(), "deep on the reserved list path");
    // Every other workload is refused on it.
    await refused(() => shallow.getSecret("deep/db"), "shallow on deep/");
    await refused(() => teamMember.getSecret("deep/db"), "team member on deep/");
    // The policies that are not indexable still grant what they say, and nothing more.
    assert.deepEqual(await teamMember.getSecret(`team-${team(42)}/db`), { value: `team-${team(42)}/db` });
    await refused(() => teamMember.getSecret(`team-${team(43)}/db`), "team 42 on team 43");
    assert.deepEqual(await unanchoredMember.getSecret(`team-${team(9_993)}/db`), { value: `team-${team(9_993)}/db` });
    await refused(() => unanchoredMember.putSecret(`team-${team(9_993)}/db`, { value: "x" }), "read-only team");

    // A new policy through the API: the next request of the shallow workload is allowed.
    await admin.putPolicy({
      name: "shallow-reads-deep",
      spiffeidPattern: "^spiffe://spike\\.ist/app/shallow$",
      pathPattern: "^deep/db$",
      permissions: ["read"],
    });
    assert.deepEqual(await shallow.getSecret("deep/db"), { value: "deep/db" });
    await refused(() => shallow.getSecret("deep/cache"), "shallow beyond its new policy");

    // The deep policy moved elsewhere through the API: refused at once, many requests at a time.
    await admin.putPolicy({
      name: `p-${team(DEEP_AT)}`,
      spiffeidPattern: "^spiffe://spike\\.ist/app/deep$",
      pathPattern: "^elsewhere/",
      permissions: ["read"],
    });
    const answers = await Promise.allSettled(Array.from({ length: 8 }, () => deep.getSecret("deep/db")));
    for (const answer of answers) {
      assert.equal(answer.status, "rejected");
      assert.ok(answer.reason instanceof ApiCallError && answer.reason.status === 401, String(answer.reason));
    }

    // A reserved path needs an anchored SPIFFE ID pattern and a whole-path match.
    await admin.putPolicy({
      name: "deep-lists",
      spiffeidPattern: "^spiffe://spike\\.ist/app/deep$",
      pathPattern: "^spike/system/secret$",
      permissions: ["list"],
    });
    assert.ok((await deep.listSecrets()).includes("deep/db"));

    // Deleted through the API: refused on the next request.
    await admin.deletePolicy("shallow-reads-deep");
    await refused(() => shallow.getSecret("deep/db"), "shallow after its policy was deleted");
    assert.equal((await admin.listPolicies()).length, POLICIES + 1);
  } finally {
    for (const transport of clients) transport.close();
    await nexus?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
