/**
 * The one behavioural contract every `Store` backend must pass. A backend's
 * test file calls `runStoreContract` with a factory; each case gets a fresh
 * store and cleans it up.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Permission, PolicyRecord, SecretRecord, SecretVersion, Store } from "./types.ts";

/** A fresh store plus whatever removes its traces (temp dirs, databases). */
export interface StoreFixture {
  /** The store under test. */
  readonly store: Store;
  /** Called after the store is closed. */
  cleanup(): Promise<void>;
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const bytesOf = (text: string) => new TextEncoder().encode(text);

function version(n: number, deleted: number | null = null, sealed = bytesOf(`sealed-${n}`)): SecretVersion {
  return { version: n, createdTime: at(n), deletedTime: deleted === null ? null : at(deleted), sealed };
}

/** A record holding `versions`, current = the highest undeleted one. */
export function recordOf(versions: readonly SecretVersion[], revision = 0): SecretRecord {
  const live = versions.filter((v) => v.deletedTime === null).map((v) => v.version);
  return {
    revision,
    currentVersion: Math.max(0, ...live),
    oldestVersion: versions.length === 0 ? 0 : Math.min(...versions.map((v) => v.version)),
    createdTime: at(0),
    updatedTime: at(versions.length),
    maxVersions: 10,
    versions: new Map(versions.map((v) => [v.version, v])),
  };
}

function policy(name: string, seconds = 1): PolicyRecord {
  return {
    name,
    spiffeIdPattern: `^spiffe://spike\\.ist/app/${name}$`,
    pathPattern: `^apps/${name}/.*$`,
    permissions: ["read", "list"],
    createdAt: at(seconds),
    updatedAt: at(seconds),
  };
}

/** Compares records ignoring `revision`. */
function assertSameRecord(actual: SecretRecord | undefined, expected: SecretRecord): void {
  assert.ok(actual);
  const { revision: _a, versions: av, ...aRest } = actual;
  const { revision: _e, versions: ev, ...eRest } = expected;
  assert.deepEqual(aRest, eRest);
  assert.deepEqual(
    [...av.entries()].sort(([x], [y]) => x - y),
    [...ev.entries()].sort(([x], [y]) => x - y),
  );
}

/**
 * Read-modify-write that appends one version, retrying on conflict; resolves
 * how many conflicts it met. Mirrors what Nexus does, without its crypto.
 */
export async function appendVersion(
  store: Store,
  path: string,
  sealed: Uint8Array,
  maxAttempts = 500,
): Promise<number> {
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const current = await store.readSecret(path);
    // Yield once more so other writers interleave between read and write.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const n = current ? Math.max(0, ...current.versions.keys()) + 1 : 1;
    const versions = new Map(current?.versions);
    versions.set(n, { version: n, createdTime: at(n), deletedTime: null, sealed });
    const next: SecretRecord = {
      ...(current ?? recordOf([])),
      currentVersion: n,
      oldestVersion: 1,
      maxVersions: 1000,
      versions,
    };
    if (await store.writeSecret(path, current?.revision ?? 0, next)) return attempt;
  }
  throw new Error("appendVersion: too many conflicts");
}

/** Registers the contract's `Deno.test` cases for one backend. */
export function runStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  function test(title: string, body: (store: Store) => Promise<void>): void {
    Deno.test(`${name}: ${title}`, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await body(store);
      } finally {
        await store.close();
        await cleanup();
      }
    });
  }

  test("a new store is empty", async (store) => {
    assert.equal(await store.readSecret("a/b"), undefined);
    assert.deepEqual(await store.listSecretPaths(), []);
    assert.deepEqual(await store.listPolicies(), []);
    assert.equal(await store.getPolicy("p"), undefined);
    assert.equal(await store.getMeta("k"), undefined);
    assert.equal(await store.hasData(), false);
    await store.ping();
  });

  test("writeSecret creates at revision 1 and reads back every field", async (store) => {
    const record = recordOf([version(1, 7), version(2)]);
    assert.equal(await store.writeSecret("a/b", 0, { ...record, revision: 42 }), true);
    const read = await store.readSecret("a/b");
    assert.equal(read?.revision, 1, "the store sets the revision, ignoring next.revision");
    assertSameRecord(read, record);
    assert.equal(read!.createdTime.getTime(), T0, "millisecond precision survives");
  });

  test("compare-and-swap: success bumps the revision, stale or future revisions are refused", async (store) => {
    const v1 = recordOf([version(1)]);
    const v2 = recordOf([version(1), version(2)]);
    const v3 = recordOf([version(1), version(2), version(3)]);
    assert.equal(await store.writeSecret("p", 0, v1), true);
    assert.equal(await store.writeSecret("p", 0, v2), false, "create over an existing path");
    assert.equal(await store.writeSecret("p", 1, v2), true);
    assert.equal(await store.writeSecret("p", 1, v3), false, "stale revision");
    assert.equal(await store.writeSecret("p", 5, v3), false, "revision from the future");
    assert.equal(await store.writeSecret("q", 1, v1), false, "update of a path that does not exist");
    const read = await store.readSecret("p");
    assert.equal(read?.revision, 2);
    assertSameRecord(read, v2);
    assert.equal(await store.readSecret("q"), undefined);
    assert.equal(await store.writeSecret("p", 2, v3), true);
    assert.equal((await store.readSecret("p"))?.revision, 3);
  });

  test("versions absent from the next record are gone; changed ones are rewritten", async (store) => {
    await store.writeSecret("p", 0, recordOf([version(1), version(2), version(3)]));
    const next = recordOf([version(2, 9), version(3, null, bytesOf("resealed-3")), version(4)]);
    assert.equal(await store.writeSecret("p", 1, next), true);
    const read = await store.readSecret("p");
    assertSameRecord(read, next);
    assert.equal(read!.versions.has(1), false);
    const none = recordOf([]);
    assert.equal(await store.writeSecret("p", 2, none), true);
    const empty = await store.readSecret("p");
    assert.equal(empty?.versions.size, 0);
    assert.equal(await store.writeSecret("q", 0, recordOf([])), true, "a new path may start with no versions");
    assert.equal((await store.readSecret("q"))?.versions.size, 0);
    assert.deepEqual(await store.listSecretPaths(), ["p", "q"]);
  });

  test("records and bytes are copies in both directions", async (store) => {
    const sealed = bytesOf("original");
    await store.writeSecret("p", 0, recordOf([version(1, null, sealed)]));
    sealed.fill(0);
    const first = await store.readSecret("p");
    assert.deepEqual(first!.versions.get(1)!.sealed, bytesOf("original"));
    first!.versions.get(1)!.sealed.fill(0);
    first!.createdTime.setTime(0);
    (first!.versions as Map<number, SecretVersion>).delete(1);
    const second = await store.readSecret("p");
    assert.deepEqual(second!.versions.get(1)!.sealed, bytesOf("original"));
    assert.equal(second!.createdTime.getTime(), T0);

    const value = bytesOf("meta");
    await store.putMeta("k", value);
    value.fill(0);
    const got = await store.getMeta("k");
    got!.fill(0);
    assert.deepEqual(await store.getMeta("k"), bytesOf("meta"));

    const p = { ...policy("a"), permissions: ["read"] as Permission[] };
    const saved = await store.upsertPolicy(p);
    p.permissions.push("write");
    (saved.permissions as string[]).push("super");
    (await store.getPolicy("a"))!.createdAt.setTime(0);
    const again = await store.getPolicy("a");
    assert.deepEqual(again!.permissions, ["read"]);
    assert.equal(again!.createdAt.getTime(), at(1).getTime());
  });

  test("listSecretPaths is sorted by byte order and includes fully deleted paths", async (store) => {
    const paths = ["b", "a/z", "a", "B", "a/b", "a.b", "_", "a-b", "z/\u00e9", "z/\u{1F600}", "z/\uFF5E"];
    for (const path of paths) await store.writeSecret(path, 0, recordOf([version(1)]));
    await store.writeSecret("gone", 0, recordOf([version(1, 5), version(2, 6)]));
    assert.deepEqual(await store.listSecretPaths(), [
      "B",
      "_",
      "a",
      "a-b",
      "a.b",
      "a/b",
      "a/z",
      "b",
      "gone",
      "z/\u00e9",
      "z/\uFF5E",
      "z/\u{1F600}",
    ]);
  });

  test("a destroyed version (empty sealed bytes) round-trips", async (store) => {
    const record = recordOf([version(1, 3, new Uint8Array(0)), version(2)]);
    assert.equal(await store.writeSecret("p", 0, record), true);
    const read = await store.readSecret("p");
    assertSameRecord(read, record);
    assert.equal(read!.versions.get(1)!.sealed.length, 0);
    const resealed = recordOf([version(1, 3, new Uint8Array(0)), version(2, 4, new Uint8Array(0))]);
    assert.equal(await store.writeSecret("p", 1, resealed), true);
    assertSameRecord(await store.readSecret("p"), resealed);
  });

  test("custom metadata (sealed bytes) is stored with the record, replaced and cleared by later writes", async (store) => {
    const custom = bytesOf("sealed-custom-metadata");
    const record: SecretRecord = { ...recordOf([version(1)]), customMetadata: custom };
    assert.equal(await store.writeSecret("p", 0, record), true);
    custom.fill(0);
    const read = await store.readSecret("p");
    assert.deepEqual(read!.customMetadata, bytesOf("sealed-custom-metadata"), "stored as a copy");
    assertSameRecord(read, { ...record, customMetadata: bytesOf("sealed-custom-metadata") });
    const replaced: SecretRecord = { ...recordOf([version(1), version(2)]), customMetadata: bytesOf("other") };
    assert.equal(await store.writeSecret("p", 1, replaced), true);
    assertSameRecord(await store.readSecret("p"), replaced);
    const cleared = recordOf([version(1), version(2)]);
    assert.equal(await store.writeSecret("p", 2, cleared), true);
    const after = await store.readSecret("p");
    assert.equal(after!.customMetadata, undefined, "absent, not empty, once cleared");
    assertSameRecord(after, cleared);
    await store.writeSecret("q", 0, recordOf([version(1)]));
    assert.equal("customMetadata" in (await store.readSecret("q"))!, false, "a record without it has no such field");
  });

  test("expiry times of a secret and of its versions round-trip, change and clear", async (store) => {
    const expiring: SecretRecord = {
      ...recordOf([{ ...version(1), expiresAt: at(100) }, version(2)]),
      expiresAt: at(200),
    };
    assert.equal(await store.writeSecret("p", 0, expiring), true);
    const read = await store.readSecret("p");
    assertSameRecord(read, expiring);
    assert.equal(read!.expiresAt!.getTime(), at(200).getTime(), "millisecond precision survives");
    assert.equal("expiresAt" in read!.versions.get(2)!, false, "a version without expiry has no such field");
    const changed: SecretRecord = recordOf([version(1), { ...version(2), expiresAt: at(300) }]);
    assert.equal(await store.writeSecret("p", 1, changed), true);
    const after = await store.readSecret("p");
    assertSameRecord(after, changed);
    assert.equal(after!.expiresAt, undefined);
  });

  test("listExpired finds paths whose secret or some version expired, each once, bounded by limit", async (store) => {
    const now = at(1000);
    await store.writeSecret("live", 0, { ...recordOf([{ ...version(1), expiresAt: at(2000) }]), expiresAt: at(3000) });
    await store.writeSecret("whole", 0, { ...recordOf([version(1)]), expiresAt: at(999) });
    await store.writeSecret("exact", 0, { ...recordOf([version(1)]), expiresAt: now });
    await store.writeSecret("one-version", 0, recordOf([{ ...version(1), expiresAt: at(10) }, version(2)]));
    await store.writeSecret("both", 0, {
      ...recordOf([{ ...version(1), expiresAt: at(10) }, { ...version(2), expiresAt: at(20) }]),
      expiresAt: at(30),
    });
    await store.writeSecret("never", 0, recordOf([version(1)]));
    assert.deepEqual((await store.listExpired(now, 100)).sort(), ["both", "exact", "one-version", "whole"]);
    assert.deepEqual(await store.listExpired(at(5), 100), []);
    const some = await store.listExpired(now, 2);
    assert.equal(some.length, 2);
    assert.equal(new Set(some).size, 2);
    for (const path of some) assert.ok(["both", "exact", "one-version", "whole"].includes(path));
    assert.deepEqual(await store.listExpired(now, 0), []);
  });

  test("tryExclusive runs work, refuses a second holder while the first runs, and is free again after", async (store) => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    let started!: () => void;
    const running = new Promise<void>((resolve) => started = resolve);
    const first = store.tryExclusive(async () => {
      started();
      await held;
      return "first";
    });
    await running;
    assert.deepEqual(await store.tryExclusive(() => Promise.resolve("second")), { ran: false });
    release();
    assert.deepEqual(await first, { ran: true, value: "first" });
    assert.deepEqual(await store.tryExclusive(() => Promise.resolve("third")), { ran: true, value: "third" });
    await assert.rejects(store.tryExclusive(() => Promise.reject(new Error("boom"))), /boom/);
    assert.deepEqual(
      await store.tryExclusive(() => Promise.resolve(4)),
      { ran: true, value: 4 },
      "a failure releases it",
    );
  });

  test("moveSecret: both halves or neither, by compare-and-swap on both paths", async (store) => {
    const source: SecretRecord = {
      ...recordOf([version(1, 5), version(2), { ...version(3), expiresAt: at(50) }]),
      customMetadata: bytesOf("custom"),
      expiresAt: at(60),
    };
    await store.writeSecret("from", 0, source);
    await store.writeSecret("from", 1, source);
    const moved: SecretRecord = {
      ...recordOf([version(1, 5, bytesOf("resealed-1")), version(2, null, bytesOf("resealed-2"))]),
      customMetadata: bytesOf("resealed-custom"),
    };
    assert.equal(await store.moveSecret("from", 1, "to", 0, moved), false, "stale source revision");
    assert.equal(await store.moveSecret("missing", 1, "to", 0, moved), false, "no source");
    await store.writeSecret("taken", 0, recordOf([version(1)]));
    assert.equal(await store.moveSecret("from", 2, "taken", 0, moved), false, "the destination exists");
    assert.equal(await store.moveSecret("from", 2, "to", 3, moved), false, "destination revision that is not there");
    assertSameRecord(await store.readSecret("from"), source);
    assert.equal((await store.readSecret("from"))?.revision, 2, "refused moves change nothing");
    assert.equal(await store.readSecret("to"), undefined);
    assert.equal(await store.moveSecret("from", 2, "to", 0, moved), true);
    assert.equal(await store.readSecret("from"), undefined);
    const read = await store.readSecret("to");
    assert.equal(read?.revision, 1);
    assertSameRecord(read, moved);
    assert.deepEqual(await store.listSecretPaths(), ["taken", "to"]);
    // Over an existing destination at its revision (Nexus does this only for an expired one).
    assert.equal(await store.moveSecret("to", 1, "taken", 1, moved), true);
    assert.equal((await store.readSecret("taken"))?.revision, 2);
    assertSameRecord(await store.readSecret("taken"), moved);
    assert.equal((await store.readSecret("taken"))?.versions.has(3), false);
    assert.deepEqual(await store.listSecretPaths(), ["taken"]);
    await assert.rejects(store.moveSecret("taken", 2, "taken", 2, moved), TypeError, "onto itself");
    await assert.rejects(store.moveSecret("taken", 0, "x", 0, moved), TypeError, "revision 0 names no source");
  });

  test("20 concurrent moves of one source: exactly one lands", async (store) => {
    await store.writeSecret("src", 0, recordOf([version(1)]));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.moveSecret("src", 1, `dst-${i}`, 0, recordOf([version(1)]))),
    );
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal((await store.listSecretPaths()).length, 1);
  });

  test("deleteSecret removes a path with every version, by compare-and-swap", async (store) => {
    await store.writeSecret("p", 0, recordOf([version(1), version(2)]));
    await store.writeSecret("p", 1, recordOf([version(1), version(2), version(3)]));
    await store.writeSecret("q", 0, recordOf([version(1)]));
    assert.equal(await store.deleteSecret("p", 1), false, "stale revision");
    assert.equal(await store.deleteSecret("p", 3), false, "revision from the future");
    assert.equal(await store.deleteSecret("missing", 1), false, "no such path");
    assert.equal((await store.readSecret("p"))?.versions.size, 3, "a refused delete changes nothing");
    assert.equal(await store.deleteSecret("p", 2), true);
    assert.equal(await store.readSecret("p"), undefined);
    assert.deepEqual(await store.listSecretPaths(), ["q"]);
    assert.equal(await store.deleteSecret("p", 2), false, "already gone");
    // The path starts over: a new record is created at revision 1.
    assert.equal(await store.writeSecret("p", 0, recordOf([version(1)])), true);
    assert.equal((await store.readSecret("p"))?.revision, 1);
    assert.equal((await store.readSecret("p"))?.versions.size, 1, "no version of the deleted record survives");
    await assert.rejects(store.deleteSecret("p", 0), TypeError, "revision 0 names no stored record");
    await assert.rejects(store.deleteSecret("", 1), TypeError);
  });

  test("listSecretPathsPage: byte order, prefix as a range, strictly after the cursor, at most limit", async (store) => {
    const paths = [
      "a",
      "a%b",
      "a-b",
      "a/",
      "a/b",
      "a/b/c",
      "a/c",
      "a_b",
      "ab",
      "b",
      "z/\u00e9",
      "z/\u00e9x",
      "z/\uFF5E",
      "z/\u{1F600}",
    ];
    for (const path of [...paths].reverse()) await store.writeSecret(path, 0, recordOf([version(1)]));
    const all = await store.listSecretPaths();
    assert.deepEqual(await store.listSecretPathsPage({ limit: 100 }), all);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "", after: "", limit: 100 }), all);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a/", limit: 100 }), ["a/", "a/b", "a/b/c", "a/c"]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a/b", limit: 100 }), ["a/b", "a/b/c"]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a_", limit: 100 }), ["a_b"], "no LIKE wildcards");
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a%", limit: 100 }), ["a%b"]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "z/\u00e9", limit: 100 }), ["z/\u00e9", "z/\u00e9x"]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "z/", after: "z/\uFF5E", limit: 100 }), [
      "z/\u{1F600}",
    ]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "nope", limit: 100 }), []);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a/", limit: 2 }), ["a/", "a/b"]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a/", after: "a/b", limit: 2 }), ["a/b/c", "a/c"]);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a/", after: "a/c", limit: 2 }), []);
    assert.deepEqual(await store.listSecretPathsPage({ prefix: "a/", after: "0", limit: 1 }), ["a/"]);
    assert.deepEqual(await store.listSecretPathsPage({ after: "a/c", limit: 3 }), ["a_b", "ab", "b"]);
    assert.deepEqual(await store.listSecretPathsPage({ after: "zz", limit: 3 }), []);
    assert.deepEqual(await store.listSecretPathsPage({ limit: 0 }), []);
    // Walking page by page gives the whole list, once.
    const walked: string[] = [];
    for (let page = await store.listSecretPathsPage({ limit: 3 }); page.length > 0;) {
      walked.push(...page);
      page = await store.listSecretPathsPage({ after: page.at(-1)!, limit: 3 });
    }
    assert.deepEqual(walked, all);
    await assert.rejects(store.listSecretPathsPage({ limit: -1 }), TypeError);
    await assert.rejects(store.listSecretPathsPage({ prefix: "a\0", limit: 1 }), TypeError);
  });

  test("policies: upsert keeps createdAt, get, list sorted, delete", async (store) => {
    const created = await store.upsertPolicy(policy("beta", 1));
    assert.deepEqual(created, policy("beta", 1));
    await store.upsertPolicy(policy("alpha", 2));
    const changed: PolicyRecord = {
      ...policy("beta", 9),
      spiffeIdPattern: "^spiffe://spike\\.ist/other$",
      pathPattern: "^x$",
      permissions: ["super"],
    };
    const updated = await store.upsertPolicy(changed);
    assert.deepEqual(updated, { ...changed, createdAt: at(1) });
    assert.deepEqual(await store.getPolicy("beta"), updated);
    assert.deepEqual((await store.listPolicies()).map((p) => p.name), ["alpha", "beta"]);
    assert.deepEqual((await store.listPolicies())[1], updated);
    assert.equal(await store.getPolicy("gamma"), undefined);
    assert.equal(await store.deletePolicy("beta"), true);
    assert.equal(await store.deletePolicy("beta"), false);
    assert.equal(await store.getPolicy("beta"), undefined);
    assert.deepEqual((await store.listPolicies()).map((p) => p.name), ["alpha"]);
  });

  test("policyGeneration changes with every policy write, not with reads or other writes", async (store) => {
    const start = await store.policyGeneration();
    await store.writeSecret("a", 0, recordOf([version(1)]));
    await store.putMeta("k", bytesOf("v"));
    await store.listPolicies();
    await store.getPolicy("nope");
    assert.equal(await store.policyGeneration(), start, "no policy changed");
    const seen = [start];
    const changed = async (what: string) => {
      const now = await store.policyGeneration();
      assert.ok(!seen.includes(now), `${what} gives a generation not seen before`);
      seen.push(now);
    };
    await store.upsertPolicy(policy("a"));
    await changed("create");
    await store.upsertPolicy({ ...policy("a", 5), pathPattern: "^other$" });
    await changed("update");
    await store.upsertPolicy(policy("b"));
    await changed("a second policy");
    assert.equal(await store.deletePolicy("a"), true);
    await changed("delete");
  });

  test("meta: missing, put, overwrite", async (store) => {
    assert.equal(await store.getMeta("root_key_check"), undefined);
    await store.putMeta("root_key_check", new Uint8Array([1, 2, 3]));
    await store.putMeta("other", new Uint8Array(0));
    assert.deepEqual(await store.getMeta("root_key_check"), new Uint8Array([1, 2, 3]));
    await store.putMeta("root_key_check", new Uint8Array([9]));
    assert.deepEqual(await store.getMeta("root_key_check"), new Uint8Array([9]));
    assert.deepEqual(await store.getMeta("other"), new Uint8Array(0));
  });

  test("hasData sees secrets, policies and meta", async (store) => {
    assert.equal(await store.hasData(), false);
    await store.upsertPolicy(policy("p"));
    assert.equal(await store.hasData(), true);
    await store.deletePolicy("p");
    assert.equal(await store.hasData(), false);
    await store.putMeta("k", new Uint8Array([1]));
    assert.equal(await store.hasData(), true);
  });

  test("counts: secret paths (soft-deleted ones too) and policies", async (store) => {
    assert.deepEqual(await store.counts(), { secrets: 0, policies: 0 });
    await store.writeSecret("a", 0, recordOf([version(1), version(2)]));
    await store.writeSecret("b/c", 0, recordOf([version(1, 5)]));
    await store.upsertPolicy(policy("p"));
    await store.upsertPolicy(policy("q"));
    await store.upsertPolicy(policy("q"));
    assert.deepEqual(await store.counts(), { secrets: 2, policies: 2 });
    assert.equal((await store.counts()).secrets, (await store.listSecretPaths()).length);
    await store.deletePolicy("p");
    assert.deepEqual(await store.counts(), { secrets: 2, policies: 1 });
  });

  test("hasData sees a secret", async (store) => {
    await store.writeSecret("p", 0, recordOf([version(1)]));
    assert.equal(await store.hasData(), true);
  });

  test("malformed writes are refused and change nothing", async (store) => {
    const good = recordOf([version(1)]);
    const mismatched: SecretRecord = { ...good, versions: new Map([[2, version(1)]]) };
    await assert.rejects(store.writeSecret("p", 0, mismatched), TypeError);
    await assert.rejects(store.writeSecret("p", -1, good), TypeError);
    await assert.rejects(store.writeSecret("", 0, good), TypeError);
    await assert.rejects(store.writeSecret("p", 0, { ...good, updatedTime: new Date(NaN) }), TypeError);
    await assert.rejects(store.upsertPolicy({ ...policy("p"), name: "" }), TypeError);
    // Text no backend can keep as given: NUL (Postgres refuses it) and lone surrogates (become U+FFFD).
    await assert.rejects(store.upsertPolicy({ ...policy("p"), pathPattern: "^a\0b$" }), TypeError);
    await assert.rejects(store.upsertPolicy({ ...policy("p"), spiffeIdPattern: "^\ud800$" }), TypeError);
    await assert.rejects(store.writeSecret("a\0b", 0, recordOf([version(1)])), TypeError);
    await assert.rejects(store.putMeta("", new Uint8Array(1)), TypeError);
    assert.equal(await store.hasData(), false);
  });

  test("20 concurrent read-modify-write writers each land exactly one distinct version", async (store) => {
    const writers = 20;
    const conflicts = await Promise.all(
      Array.from({ length: writers }, (_, i) => appendVersion(store, "hot/path", bytesOf(`writer-${i}`))),
    );
    assert.ok(conflicts.reduce((a, b) => a + b, 0) > 0, "the writers did contend");
    const read = await store.readSecret("hot/path");
    assert.equal(read?.revision, writers);
    assert.deepEqual(
      [...read!.versions.keys()].sort((a, b) => a - b),
      Array.from({ length: writers }, (_, i) => i + 1),
    );
    const owners = new Set([...read!.versions.values()].map((v) => new TextDecoder().decode(v.sealed)));
    assert.equal(owners.size, writers, "no writer's version was overwritten by another");
  });

  test("a closed store rejects; close is idempotent", async (store) => {
    await store.close();
    await store.close();
    await assert.rejects(store.ping());
    await assert.rejects(store.readSecret("p"));
    await assert.rejects(store.writeSecret("p", 0, recordOf([version(1)])));
    await assert.rejects(store.deleteSecret("p", 1));
    await assert.rejects(store.moveSecret("p", 1, "q", 0, recordOf([version(1)])));
    await assert.rejects(store.hasData());
  });
}
