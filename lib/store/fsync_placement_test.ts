import assert from "node:assert/strict";
import { FsyncPlacement } from "./fsync_placement.ts";

Deno.test("fsync placement: only a lone write, with fast fsyncs, is fsynced on the calling thread", () => {
  const placement = new FsyncPlacement(1);
  assert.equal(placement.inline(1, 0), true, "nothing measured yet: assume fast");
  assert.equal(placement.inline(2, 0), false, "a group goes off the thread");
  assert.equal(placement.inline(1, 3), false, "writes waiting behind it: off the thread");
  placement.record(0.2);
  assert.equal(placement.inline(1, 0), true);
  // A slow disk: the average climbs past the limit and lone writes go off the thread too.
  for (let i = 0; i < 10; i++) placement.record(5);
  assert.ok(placement.averageMs! > 1);
  assert.equal(placement.inline(1, 0), false);
  // It comes back once fsyncs are fast again.
  for (let i = 0; i < 30; i++) placement.record(0.2);
  assert.ok(placement.averageMs! < 1);
  assert.equal(placement.inline(1, 0), true);
});

Deno.test("fsync placement: limit 0 keeps every fsync off the calling thread", () => {
  const placement = new FsyncPlacement(0);
  assert.equal(placement.inline(1, 0), false);
  placement.record(0.01);
  assert.equal(placement.inline(1, 0), false);
});
