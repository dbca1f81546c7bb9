/**
 * Restore edge cases of the operator routes that must be 400, never 500.
 */
import assert from "node:assert/strict";
import { PATHS } from "../../api/paths.ts";
import { createTestNexus, peer } from "../testing.ts";

const RESTORE = peer("spiffe://spike.ist/spike/pilot/role/restore");
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
