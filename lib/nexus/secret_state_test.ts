import assert from "node:assert/strict";
import fc from "fast-check";
import type { SecretRecord } from "../store/types.ts";
import {
  deleteVersions,
  destroyVersions,
  isDestroyed,
  metadataView,
  nextVersionForPut,
  nextVersionNumber,
  selectVersion,
  undeleteVersions,
} from "./secret_state.ts";

const t = (n: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, n));
const sealFor = (version: number) => new Uint8Array([version & 0xff, 0xee]);

/** Puts `count` versions at times t(1)..t(count). */
function putMany(count: number, maxVersions = 10, start?: SecretRecord): SecretRecord {
  let record = start;
  const base = start ? Math.max(...start.versions.keys(), 0) : 0;
  for (let i = 1; i <= count; i++) record = nextVersionForPut(record, t(base + i), maxVersions, sealFor);
  return record!;
}

function live(record: SecretRecord): number[] {
  return [...record.versions.values()].filter((v) => v.deletedTime === null).map((v) => v.version).sort((a, b) =>
    a - b
  );
}

Deno.test("first put creates version 1 with SPIKE's initial metadata", () => {
  const calls: number[] = [];
  const r = nextVersionForPut(undefined, t(1), 10, (v) => {
    calls.push(v);
    return sealFor(v);
  });
  assert.deepEqual(calls, [1]);
  assert.equal(r.revision, 0);
  assert.equal(r.currentVersion, 1);
  assert.equal(r.oldestVersion, 1);
  assert.equal(r.maxVersions, 10);
  assert.deepEqual(r.createdTime, t(1));
  assert.deepEqual(r.updatedTime, t(1));
  assert.deepEqual([...r.versions.keys()], [1]);
  assert.deepEqual(r.versions.get(1), {
    version: 1,
    createdTime: t(1),
    deletedTime: null,
    sealed: sealFor(1),
    keyVersion: 1,
  });
});

Deno.test("put increments, keeps createdTime, moves updatedTime and keeps the revision it came from", () => {
  const first = { ...nextVersionForPut(undefined, t(1), 10, sealFor), revision: 7 };
  const second = nextVersionForPut(first, t(2), 10, sealFor);
  assert.equal(second.revision, 7);
  assert.equal(second.currentVersion, 2);
  assert.deepEqual(second.createdTime, t(1));
  assert.deepEqual(second.updatedTime, t(2));
  assert.equal(second.versions.get(1), first.versions.get(1), "unchanged versions are shared, not rebuilt");
  assert.equal(first.versions.size, 1, "the input record is not mutated");
});

Deno.test("put prunes the oldest versions beyond maxVersions and updates oldestVersion", () => {
  const r = putMany(5, 3);
  assert.deepEqual([...r.versions.keys()].sort(), [3, 4, 5]);
  assert.equal(r.oldestVersion, 3);
  assert.equal(r.currentVersion, 5);
});

Deno.test("put with a lowered maxVersions prunes down to the new cap", () => {
  const r = nextVersionForPut(putMany(6, 10), t(50), 2, sealFor);
  assert.deepEqual([...r.versions.keys()].sort(), [6, 7]);
  assert.equal(r.maxVersions, 2);
  assert.equal(r.oldestVersion, 6);
});

Deno.test("put after every version was deleted continues from the highest number", () => {
  const all = deleteVersions(putMany(3), [1, 2, 3], t(10));
  assert.equal(all.currentVersion, 0);
  const r = nextVersionForPut(all, t(11), 10, sealFor);
  assert.equal(r.currentVersion, 4);
  assert.equal(r.versions.get(3)!.deletedTime?.getTime(), t(10).getTime());
});

Deno.test("put never reuses a soft-deleted number above the current version", () => {
  const r = deleteVersions(putMany(3), [3], t(10));
  assert.equal(r.currentVersion, 2);
  const next = nextVersionForPut(r, t(11), 10, sealFor);
  assert.equal(next.currentVersion, 4);
  assert.deepEqual(next.versions.get(3)!.deletedTime, t(10), "the deleted version 3 is untouched");
});

Deno.test("put keeps oldestVersion as SPIKE does when nothing is pruned", () => {
  const r = deleteVersions(putMany(2), [1, 2], t(10));
  assert.equal(r.oldestVersion, 0);
  assert.equal(nextVersionForPut(r, t(11), 10, sealFor).oldestVersion, 0);
});

Deno.test("nextVersionNumber predicts the put's number and sealedFor gets it", () => {
  assert.equal(nextVersionNumber(undefined), 1);
  const r = deleteVersions(putMany(3), [3], t(10));
  assert.equal(nextVersionNumber(r), 4);
  let sealedWith = 0;
  nextVersionForPut(r, t(11), 10, (v) => {
    sealedWith = v;
    return sealFor(v);
  });
  assert.equal(sealedWith, 4);
});

Deno.test("put rejects a maxVersions below 1", () => {
  assert.throws(() => nextVersionForPut(undefined, t(1), 0, sealFor), RangeError);
  assert.throws(() => nextVersionForPut(undefined, t(1), 1.5, sealFor), RangeError);
});

Deno.test("delete [] and delete [0] remove the current version and move current down", () => {
  for (const versions of [[], [0]]) {
    const r = deleteVersions(putMany(3), versions, t(10));
    assert.equal(r.currentVersion, 2);
    assert.deepEqual(r.versions.get(3)!.deletedTime, t(10));
    assert.deepEqual(r.updatedTime, t(10));
    assert.equal(r.oldestVersion, 1);
  }
});

Deno.test("delete of an older version leaves current and updatedTime alone; oldest = lowest live", () => {
  const before = putMany(3);
  const r = deleteVersions(before, [1], t(10));
  assert.equal(r.currentVersion, 3);
  assert.deepEqual(r.updatedTime, before.updatedTime);
  assert.equal(r.oldestVersion, 2);
});

Deno.test("delete of every version leaves current 0 and oldest 0; reads then 404, metadata still answers", () => {
  const r = deleteVersions(putMany(2), [1, 2], t(10));
  assert.equal(r.currentVersion, 0);
  assert.equal(r.oldestVersion, 0);
  assert.equal(selectVersion(r, 0), undefined);
  assert.equal(selectVersion(r, 1), undefined);
  const view = metadataView(r)!;
  assert.equal(view.metadata.currentVersion, 0);
  assert.deepEqual(Object.keys(view.versions), ["1", "2"]);
  assert.equal(view.versions["2"]!.deletedTime, t(10).toISOString());
  assert.deepEqual(metadataView(r, 0), view);
  assert.equal(metadataView(r, 2), undefined, "an explicit deleted version still gates the answer");
});

Deno.test("delete ignores missing versions and keeps an existing deletedTime", () => {
  const once = deleteVersions(putMany(3), [2], t(10));
  const twice = deleteVersions(once, [2, 99, -1], t(20));
  assert.equal(twice, once, "nothing changed: the same record comes back");
  assert.deepEqual(twice.versions.get(2)!.deletedTime, t(10));
});

Deno.test("delete with no current version is a no-op", () => {
  const none = deleteVersions(putMany(1), [], t(10));
  assert.equal(deleteVersions(none, [], t(20)), none);
  assert.equal(deleteVersions(none, [0], t(20)), none);
});

Deno.test("undelete [] with no current version restores the highest deleted version", () => {
  const r = deleteVersions(putMany(3), [1, 2, 3], t(10));
  assert.equal(r.currentVersion, 0);
  const u = undeleteVersions(r, [], t(20))!;
  assert.deepEqual(live(u), [3]);
  assert.equal(u.currentVersion, 3);
  assert.deepEqual(u.updatedTime, t(20));
  assert.deepEqual(u.versions.get(1)!.deletedTime, t(10));
});

Deno.test("undelete [] names the current version when there is one, so nothing is restored", () => {
  const r = deleteVersions(putMany(3), [3, 1], t(10));
  assert.equal(r.currentVersion, 2);
  assert.equal(
    undeleteVersions(r, [], t(20)),
    undefined,
    "2 is not deleted; 3 is not restored behind the caller's back",
  );
});

Deno.test("undelete [0] names the current version: nothing to restore, alone or with no current", () => {
  const someDeleted = deleteVersions(putMany(3), [3], t(10));
  assert.equal(undeleteVersions(someDeleted, [0], t(20)), undefined);
  const allDeleted = deleteVersions(putMany(2), [1, 2], t(10));
  assert.equal(undeleteVersions(allDeleted, [0], t(20)), undefined);
  const withOthers = undeleteVersions(someDeleted, [0, 3], t(20))!;
  assert.deepEqual(live(withOthers), [1, 2, 3], "0 is skipped, 3 is restored");
});

Deno.test("undelete of missing or live versions only restores nothing (undefined)", () => {
  const r = putMany(3);
  assert.equal(undeleteVersions(r, [], t(20)), undefined);
  assert.equal(undeleteVersions(r, [42, 2], t(20)), undefined);
  const partly = undeleteVersions(deleteVersions(r, [2], t(10)), [42, 2], t(20))!;
  assert.deepEqual(live(partly), [1, 2, 3], "one restorable version is enough; the missing one is skipped");
});

Deno.test("undelete of listed versions restores them; current = highest undeleted", () => {
  const r = deleteVersions(putMany(4), [1, 2, 3, 4], t(10));
  const u = undeleteVersions(r, [2, 1], t(20))!;
  assert.deepEqual(live(u), [1, 2]);
  assert.equal(u.currentVersion, 2);
  assert.equal(u.oldestVersion, 1);
  const lower = undeleteVersions(deleteVersions(putMany(3), [1], t(10)), [1], t(30))!;
  assert.equal(lower.currentVersion, 3);
  assert.notDeepEqual(lower.updatedTime, t(30), "current did not change, so updatedTime did not");
});

Deno.test("selectVersion: 0/undefined = current, explicit numbers, missing and deleted are undefined", () => {
  const r = deleteVersions(putMany(3), [2], t(10));
  assert.equal(selectVersion(r)?.version, 3);
  assert.equal(selectVersion(r, 0)?.version, 3);
  assert.equal(selectVersion(r, 1)?.version, 1);
  assert.equal(selectVersion(r, 2), undefined);
  assert.equal(selectVersion(r, 4), undefined);
});

Deno.test("metadataView has the wire shape with RFC 3339 strings and null deletedTime", () => {
  const r = deleteVersions(putMany(2), [1], t(10));
  assert.deepEqual(metadataView(r, 0), {
    versions: {
      "1": { createdTime: t(1).toISOString(), version: 1, deletedTime: t(10).toISOString() },
      "2": { createdTime: t(2).toISOString(), version: 2, deletedTime: null },
    },
    metadata: {
      currentVersion: 2,
      oldestVersion: 2,
      createdTime: t(1).toISOString(),
      updatedTime: t(2).toISOString(),
      maxVersions: 10,
    },
  });
  assert.equal(JSON.stringify(metadataView(r)).includes('"deletedTime":null'), true);
});

Deno.test("metadataView: version gates the answer but every version is listed", () => {
  const r = deleteVersions(putMany(3), [2], t(10));
  assert.deepEqual(Object.keys(metadataView(r, 1)!.versions), ["1", "2", "3"]);
  assert.equal(metadataView(r, 2), undefined, "deleted version");
  assert.equal(metadataView(r, 9), undefined, "missing version");
});

// --- properties ------------------------------------------------------------

type Op =
  | { kind: "put" }
  | { kind: "delete"; versions: number[] }
  | { kind: "undelete"; versions: number[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Op>({ kind: "put" }) },
  {
    weight: 2,
    arbitrary: fc.array(fc.integer({ min: 0, max: 25 }), { maxLength: 3 }).map((versions): Op => ({
      kind: "delete",
      versions,
    })),
  },
  {
    weight: 2,
    arbitrary: fc.array(fc.integer({ min: 0, max: 25 }), { maxLength: 3 }).map((versions): Op => ({
      kind: "undelete",
      versions,
    })),
  },
);

Deno.test("property: numbers strictly increase and are never reused; caps, current and data hold", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(opArb, { minLength: 1, maxLength: 40 }), (max, ops) => {
      let record: SecretRecord | undefined;
      let highestAssigned = 0;
      const pruned = new Set<number>();
      const sealedOf = new Map<number, Uint8Array>();
      let clock = 0;
      for (const op of ops) {
        const now = t(++clock);
        const before = record;
        if (op.kind === "put") {
          const predicted = nextVersionNumber(record);
          record = nextVersionForPut(record, now, max, (v) => {
            const sealed = new Uint8Array([v, clock]);
            sealedOf.set(v, sealed);
            return sealed;
          });
          assert.equal(record.currentVersion, predicted);
          assert.ok(record.currentVersion > highestAssigned, "a put's number is above every earlier one");
          assert.ok(!pruned.has(record.currentVersion));
          highestAssigned = record.currentVersion;
        } else if (record) {
          record = op.kind === "delete"
            ? deleteVersions(record, op.versions, now)
            : undeleteVersions(record, op.versions, now) ?? record;
          assert.deepEqual([...record.versions.keys()].sort(), [...before!.versions.keys()].sort());
        } else {
          continue;
        }
        for (const n of before?.versions.keys() ?? []) if (!record.versions.has(n)) pruned.add(n);
        for (const n of pruned) assert.ok(!record.versions.has(n), "a pruned version never comes back");
        assert.ok(record.versions.size <= max);
        assert.ok(record.versions.has(highestAssigned), "the newest version is always kept");
        assert.equal(record.currentVersion, Math.max(0, ...live(record)));
        for (const [n, v] of record.versions) {
          assert.equal(v.version, n);
          assert.equal(v.sealed, sealedOf.get(n), "a version's sealed bytes never change");
        }
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("destroy empties sealed bytes, marks deleted (keeping an earlier time), moves current; undelete skips it", () => {
  const start = deleteVersions(putMany(4), [2], t(10));
  const r = destroyVersions(start, [2, 4, 9], t(20));
  assert.ok(isDestroyed(r.versions.get(2)!) && isDestroyed(r.versions.get(4)!));
  assert.ok(!isDestroyed(r.versions.get(3)!));
  assert.deepEqual(r.versions.get(2)!.deletedTime, t(10));
  assert.deepEqual(r.versions.get(4)!.deletedTime, t(20));
  assert.equal(r.currentVersion, 3);
  assert.equal(r.oldestVersion, 1);
  assert.deepEqual(r.updatedTime, t(20));
  assert.equal(start.versions.get(4)!.sealed.length, 2, "the input record is not mutated");
  assert.equal(destroyVersions(r, [2, 4], t(30)), r, "destroying again changes nothing");
  assert.equal(undeleteVersions(r, [2, 4], t(30)), undefined, "nothing to restore");
  assert.equal(undeleteVersions(destroyVersions(putMany(2), [1, 2], t(5)), [], t(6)), undefined);
  assert.equal(nextVersionNumber(r), 5, "a destroyed number is never reused");
  const view = metadataView(r)!;
  assert.equal(view.versions["4"]!.destroyed, true);
  assert.equal("destroyed" in view.versions["3"]!, false);
  assert.equal(selectVersion(r, 4), undefined);
});
