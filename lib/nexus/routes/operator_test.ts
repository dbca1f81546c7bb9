/**
 * Restore edge cases of the operator routes that must be 400, never 500;
 * and the key version parts [ours]: who may rotate and read the status,
 * the version recover names, restores of a retired version refused.
 */
import assert from "node:assert/strict";
import { PATHS } from "../../api/paths.ts";
import { systemRandom } from "../../crypto/random.ts";
import { generateRootKey } from "../../crypto/root_key.ts";
import { splitSecret } from "../../crypto/shamir.ts";
import { createMemoryStore } from "../../store/memory_store.ts";
import { keyCheckMetaKey, sealKeyCheck, writeRootKeyCheck } from "../key_check.ts";
import { recordRetired } from "../key_versions.ts";
import { createTestNexus, peer, testRootKey } from "../testing.ts";

const RESTORE = peer("spiffe://spike.ist/spike/pilot/role/restore");
const RECOVER = peer("spiffe://spike.ist/spike/pilot/role/recover");
const SUPERUSER = peer("spiffe://spike.ist/spike/pilot/role/superuser");
const WORKLOAD = peer("spiffe://spike.ist/app/web");
const scalar = (n: number) => [...new Array(31).fill(0), n];

Deno.test("restore: valid shards that interpolate to zero are a 400 and start the session over", async () => {
  const nexus = await createTestNexus({ withKey: false });
  // For indices 1 and 2, f(0) = 2·y1 − y2: y1 = 1, y2 = 2 gives zero, never a key.
  const first = await nexus.call(RESTORE, PATHS.restore, "", { id: 1, shard: scalar(1) });
  assert.deepEqual([first.status, first.body], [200, { collected: 1, remaining: 1, restored: false }]);
  const second = await nexus.call(RESTORE, PATHS.restore, "", { id: 2, shard: scalar(2) });
  assert.deepEqual([second.status, second.body], [400, {
    err: "api_bad_request",
    reason: "the shards do not combine into a root key; start again",
  }]);
  assert.equal(nexus.deps.keys.ready, false);
  const again = await nexus.call(RESTORE, PATHS.restore, "", { id: 2, shard: scalar(2) });
  assert.deepEqual(again.body, { collected: 1, remaining: 1, restored: false });
});

Deno.test("restore: a shard above the group order is refused alone; shards already sent are kept", async () => {
  const nexus = await createTestNexus({ withKey: false });
  await nexus.call(RESTORE, PATHS.restore, "", { id: 1, shard: scalar(5) });
  const bad = await nexus.call(RESTORE, PATHS.restore, "", { id: 2, shard: new Array(32).fill(0xff) });
  assert.deepEqual([bad.status, bad.body], [400, { err: "api_bad_request" }]);
  const next = await nexus.call(RESTORE, PATHS.restore, "", { id: 3, shard: scalar(9) });
  assert.deepEqual([next.status, next.body], [200, { collected: 2, remaining: 0, restored: true }]);
  assert.equal(nexus.deps.keys.ready, true);
});

Deno.test("rotate and status [ours]: superuser only; rotate needs Keepers and says so", async () => {
  const nexus = await createTestNexus();
  for (const caller of [RESTORE, RECOVER, WORKLOAD]) {
    assert.equal((await nexus.call(caller, PATHS.rotate, "", {})).status, 401);
    assert.equal((await nexus.call(caller, PATHS.keyStatus, "", {})).status, 401);
  }
  const rotate = await nexus.call(SUPERUSER, PATHS.rotate, "", {});
  assert.deepEqual([rotate.status, rotate.body], [400, {
    err: "api_bad_request",
    reason: "rotation needs Keepers (SPIKE_NEXUS_KEEPER_PEERS): the new key must be held outside Nexus",
  }]);
  const status = await nexus.call(SUPERUSER, PATHS.keyStatus, "", {});
  assert.equal(status.status, 200);
  const body = status.body as { ready: boolean; rotation: Record<string, unknown>; keepers: unknown[] };
  assert.equal(body.ready, true);
  assert.equal(body.rotation.keyVersion, 1);
  assert.equal(body.rotation.writeKeyVersion, 1);
  assert.equal(body.rotation.phase, "idle");
  assert.deepEqual(body.keepers, []);
});

Deno.test("recover [ours]: names the key version and threshold; refused while a rotation runs", async () => {
  const nexus = await createTestNexus();
  const recovered = await nexus.call(RECOVER, PATHS.recover, "", {});
  assert.equal(recovered.status, 200);
  const body = recovered.body as { keyVersion: number; threshold: number; shards: Record<string, number[]> };
  assert.equal(body.keyVersion, 1);
  assert.equal(body.threshold, 2);
  assert.deepEqual(Object.keys(body.shards), ["1", "2", "3"]);
  const store = nexus.deps.store!;
  const state = await store.keyState();
  const { revision: _, ...rest } = state;
  await store.changeKeyState(state.revision, {
    ...rest,
    phase: "preparing",
    targetVersion: 2,
    targetCheck: await sealKeyCheck(generateRootKey(systemRandom), 2, systemRandom),
  });
  const refused = await nexus.call(RECOVER, PATHS.recover, "", {});
  assert.equal(refused.status, 400);
  assert.match((refused.body as { reason: string }).reason, /rotation to version 2 is in progress/);
});

Deno.test("restore [ours]: shards of a retired key version are refused, naming the version and when", async () => {
  // A store a rotation moved from version 1 (the test key) to version 2.
  const store = createMemoryStore();
  const newKey = generateRootKey(systemRandom);
  await writeRootKeyCheck(store, testRootKey(), systemRandom, 1);
  await store.putMeta(keyCheckMetaKey(2), await sealKeyCheck(newKey, 2, systemRandom));
  const state = await store.keyState();
  const { revision: _, ...rest } = state;
  await store.changeKeyState(state.revision, { ...rest, currentVersion: 2, minWriteVersion: 2 });
  await recordRetired(store, 1, new Date("2026-11-30T12:00:00.000Z"));
  const nexus = await createTestNexus({ store, withKey: false });
  const old = splitSecret(testRootKey(), 3, 2);
  const send = (i: number, keyVersion?: number) =>
    nexus.call(RESTORE, PATHS.restore, "", { id: old[i]!.index, shard: [...old[i]!.value], keyVersion });
  const reason = "these shards rebuild root key version 1, retired on 2026-11-30T12:00:00.000Z: " +
    "use recovery files made after that rotation";
  // The file says version 1: refused at once.
  assert.deepEqual((await send(0, 1)).body, { err: "api_bad_request", reason });
  // Without the version: collected, then refused once they combine.
  assert.deepEqual((await send(0)).body, { collected: 1, remaining: 1, restored: false });
  assert.deepEqual((await send(1)).body, { err: "api_bad_request", reason });
  assert.equal(nexus.deps.keys.ready, false);
  // The new key's shards restore.
  const fresh = splitSecret(newKey, 3, 2);
  for (const share of fresh.slice(0, 2)) {
    await nexus.call(RESTORE, PATHS.restore, "", { id: share.index, shard: [...share.value], keyVersion: 2 });
  }
  assert.equal(nexus.deps.keys.ready, true);
  assert.equal(nexus.deps.keys.writeVersion, 2);
});
