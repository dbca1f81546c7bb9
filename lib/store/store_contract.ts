/**
 * The one behavioural contract every `Store` backend must pass. A backend's
 * test file calls `runStoreContract` with a factory; each case gets a fresh
 * store and cleans it up.
 *
 * @module
 */
import assert from "node:assert/strict";
import { StaleKeyVersionError } from "./errors.ts";
import { IDLE_KEY_STATE_CHANGE } from "./key_state.ts";
import type {
  KeyState,
  KeyStateChange,
  PolicyRecord,
  SealedPolicy,
  SecretRecord,
  SecretVersion,
  Store,
  StoredPolicy,
} from "./types.ts";

/** A fresh store plus whatever removes its traces (temp dirs, databases). */
export interface StoreFixture {
  /** The store under test. */
  readonly store: Store;
  /** Called after the store is closed. */
  cleanup(): Promise<void>;
}

/** How a case wants its store. */
export interface StoreFixtureOptions {
  /**
   * Plain-text policy rows the store holds from the start, as a store
   * written before policies were sealed (the backend writes them its own
   * way: SQL, or the memory store's option).
   */
  readonly plainPolicies?: readonly PolicyRecord[];
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const bytesOf = (text: string) => new TextEncoder().encode(text);

function version(
  n: number,
  deleted: number | null = null,
  sealed = bytesOf(`sealed-${n}`),
  keyVersion = 1,
): SecretVersion {
  return { version: n, createdTime: at(n), deletedTime: deleted === null ? null : at(deleted), sealed, keyVersion };
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

/** A sealed policy row; the bytes say which policy and which edit they stand for. */
function policy(name: string, edit = 1, keyVersion = 1): SealedPolicy {
  return { name, keyVersion, sealed: bytesOf(`sealed-policy-${name}-${edit}`) };
}

/** `policy` as read back. */
function row(p: SealedPolicy): StoredPolicy {
  return { kind: "sealed", ...p };
}

/** A plain-text policy as an older store holds it. */
export function plainPolicy(name: string, seconds = 1): PolicyRecord {
  return {
    name,
    spiffeIdPattern: `^spiffe://spike\\.ist/app/${name}$`,
    pathPattern: `^apps/${name}/.*$`,
    permissions: ["read", "list"],
    createdAt: at(seconds),
    updatedAt: at(seconds),
  };
}

/** The key state of a new store, as a change. */
const INITIAL: KeyStateChange = IDLE_KEY_STATE_CHANGE;

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
    versions.set(n, { version: n, createdTime: at(n), deletedTime: null, sealed, keyVersion: 1 });
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
export function runStoreContract(
  name: string,
  makeStore: (options?: StoreFixtureOptions) => Promise<StoreFixture>,
): void {
  function test(title: string, body: (store: Store) => Promise<void>, options?: StoreFixtureOptions): void {
    Deno.test(`${name}: ${title}`, async () => {
      const { store, cleanup } = await makeStore(options);
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

    const p = policy("a");
    await store.upsertPolicy(p);
    p.sealed.fill(0);
    const read = await store.getPolicy("a");
    assert.equal(read?.kind, "sealed");
    if (read?.kind === "sealed") read.sealed.fill(0);
    assert.deepEqual(await store.getPolicy("a"), row(policy("a")));
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

  test("custom metadata (sealed bytes and key version) is stored with the record, replaced and cleared by later writes", async (store) => {
    const custom = bytesOf("sealed-custom-metadata");
    const record: SecretRecord = { ...recordOf([version(1)]), customMetadata: { sealed: custom, keyVersion: 3 } };
    assert.equal(await store.writeSecret("p", 0, record), true);
    custom.fill(0);
    const read = await store.readSecret("p");
    assert.deepEqual(
      read!.customMetadata,
      { sealed: bytesOf("sealed-custom-metadata"), keyVersion: 3 },
      "stored as a copy",
    );
    assertSameRecord(read, { ...record, customMetadata: { sealed: bytesOf("sealed-custom-metadata"), keyVersion: 3 } });
    const replaced: SecretRecord = {
      ...recordOf([version(1), version(2)]),
      customMetadata: { sealed: bytesOf("other"), keyVersion: 4 },
    };
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
      customMetadata: { sealed: bytesOf("custom"), keyVersion: 1 },
      expiresAt: at(60),
    };
    await store.writeSecret("from", 0, source);
    await store.writeSecret("from", 1, source);
    const moved: SecretRecord = {
      ...recordOf([version(1, 5, bytesOf("resealed-1")), version(2, null, bytesOf("resealed-2"))]),
      customMetadata: { sealed: bytesOf("resealed-custom"), keyVersion: 2 },
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

  test("policies: upsert replaces by name, get, list sorted, delete", async (store) => {
    await store.upsertPolicy(policy("beta", 1));
    await store.upsertPolicy(policy("alpha", 1, 2));
    assert.deepEqual(await store.getPolicy("beta"), row(policy("beta", 1)));
    await store.upsertPolicy(policy("beta", 2, 3));
    assert.deepEqual(await store.getPolicy("beta"), row(policy("beta", 2, 3)));
    assert.deepEqual(await store.listPolicies(), [row(policy("alpha", 1, 2)), row(policy("beta", 2, 3))]);
    assert.equal(await store.getPolicy("gamma"), undefined);
    assert.equal(await store.deletePolicy("beta"), true);
    assert.equal(await store.deletePolicy("beta"), false);
    assert.equal(await store.getPolicy("beta"), undefined);
    assert.deepEqual((await store.listPolicies()).map((p) => p.name), ["alpha"]);
  });

  test("policies: names list in byte order", async (store) => {
    for (const name of ["b", "B", "a b", "a-b", "a_b", "a"]) await store.upsertPolicy(policy(name));
    assert.deepEqual((await store.listPolicies()).map((p) => p.name), ["B", "a", "a b", "a-b", "a_b", "b"]);
  });

  test("policies: a replacement applies only to the row it read, all in one call", async (store) => {
    await store.upsertPolicy(policy("a", 1));
    await store.upsertPolicy(policy("b", 1));
    const [a, b] = await store.listPolicies();
    // Someone upserts "b" after it was read: its replacement must not undo that write.
    await store.upsertPolicy(policy("b", 2));
    const applied = await store.replacePolicies([
      { expected: a!, next: policy("a", 10, 2) },
      { expected: b!, next: policy("b", 10, 2) },
      { expected: row(policy("gone")), next: policy("gone", 10, 2) },
    ]);
    assert.deepEqual(applied, [true, false, false]);
    assert.deepEqual(await store.listPolicies(), [row(policy("a", 10, 2)), row(policy("b", 2))]);
    assert.deepEqual(await store.replacePolicies([{ expected: a!, next: policy("a", 11, 3) }]), [false], "stale");
    assert.deepEqual(
      await store.replacePolicies([{ expected: row(policy("a", 10, 1)), next: policy("a", 11, 3) }]),
      [false],
      "same bytes under another key version is another row",
    );
    assert.deepEqual(await store.replacePolicies([]), []);
    // A null replacement deletes the row, only as read.
    const [a2, b2] = await store.listPolicies();
    await store.upsertPolicy(policy("b", 3));
    assert.deepEqual(
      await store.replacePolicies([{ expected: a2!, next: null }, { expected: b2!, next: null }]),
      [true, false],
    );
    assert.deepEqual(await store.listPolicies(), [row(policy("b", 3))]);
  });

  test("policies: rows of an older store are plain until sealed, once", async (store) => {
    const rows = await store.listPolicies();
    assert.deepEqual(rows, [
      { kind: "plain", name: "alpha", record: plainPolicy("alpha", 1) },
      { kind: "plain", name: "beta", record: plainPolicy("beta", 2) },
    ]);
    assert.deepEqual(await store.getPolicy("beta"), rows[1]);
    const before = await store.policyGeneration();
    // Two Nexus sealing the same rows at once: each row is sealed by exactly one of them.
    const first = await store.replacePolicies([{ expected: rows[0]!, next: policy("alpha", 1) }]);
    const second = await store.replacePolicies(rows.map((r) => ({ expected: r, next: policy(r.name, 2) })));
    assert.deepEqual(first, [true]);
    assert.deepEqual(second, [false, true]);
    assert.notEqual(await store.policyGeneration(), before, "sealing changes the generation");
    assert.deepEqual(await store.listPolicies(), [row(policy("alpha", 1)), row(policy("beta", 2))]);
    // An upsert over a plain row seals it too.
    await store.upsertPolicy(policy("beta", 3));
    assert.deepEqual(await store.getPolicy("beta"), row(policy("beta", 3)));
    assert.equal(await store.deletePolicy("alpha"), true);
  }, { plainPolicies: [plainPolicy("beta", 2), plainPolicy("alpha", 1)] });

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
    await store.upsertPolicy(policy("a", 5));
    await changed("update");
    await store.upsertPolicy(policy("b"));
    await changed("a second policy");
    await store.replacePolicies([{ expected: row(policy("b")), next: policy("b", 2, 2) }]);
    await changed("a replacement");
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
    await assert.rejects(store.upsertPolicy({ ...policy("p"), keyVersion: 0 }), TypeError);
    await assert.rejects(store.upsertPolicy({ ...policy("p"), keyVersion: 1.5 }), TypeError);
    await assert.rejects(store.upsertPolicy({ ...policy("p"), sealed: "x" as unknown as Uint8Array }), TypeError);
    await assert.rejects(
      store.replacePolicies([{ expected: row(policy("p")), next: policy("q") }]),
      TypeError,
      "a replacement names one row",
    );
    // Text no backend can keep as given: NUL (Postgres refuses it) and lone surrogates (become U+FFFD).
    await assert.rejects(store.upsertPolicy({ ...policy("p"), name: "a\0b" }), TypeError);
    await assert.rejects(store.upsertPolicy({ ...policy("p"), name: "\ud800" }), TypeError);
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

  test("secret versions keep the root key version they were sealed under; changing only it rewrites the row", async (store) => {
    await store.writeSecret("p", 0, recordOf([version(1), version(2, null, bytesOf("v2"), 3)]));
    const read = await store.readSecret("p");
    assert.deepEqual([...read!.versions.values()].map((v) => v.keyVersion), [1, 3]);
    const resealed = recordOf([version(1, null, bytesOf("sealed-1"), 4), version(2, null, bytesOf("v2"), 3)]);
    assert.equal(await store.writeSecret("p", 1, resealed, { sealedUnder: 4 }), true);
    assertSameRecord(await store.readSecret("p"), resealed);
    await assert.rejects(store.writeSecret("q", 0, recordOf([version(1, null, bytesOf("x"), 0)])), TypeError);
  });

  test("key state: starts at version 1, idle; changes by compare-and-swap; malformed changes are refused", async (store) => {
    const initial = await store.keyState();
    assert.deepEqual(
      initial,
      {
        revision: 1,
        currentVersion: 1,
        phase: "idle",
        targetVersion: null,
        targetCheck: null,
        minWriteVersion: 1,
        leaseOwner: null,
        leaseUntil: null,
        startedAt: null,
        toReseal: 0,
      } satisfies KeyState,
    );
    const preparing: KeyStateChange = {
      currentVersion: 1,
      phase: "preparing",
      targetVersion: 2,
      targetCheck: bytesOf("check-2"),
      minWriteVersion: 1,
      leaseOwner: "nexus-a",
      leaseUntil: at(30),
      startedAt: at(0),
      toReseal: 0,
    };
    assert.equal(await store.changeKeyState(1, preparing), true);
    assert.equal(await store.changeKeyState(1, { ...preparing, leaseOwner: "nexus-b" }), false, "stale revision");
    assert.deepEqual(await store.keyState(), { ...preparing, revision: 2 });
    const sealing = { ...preparing, phase: "sealing" as const, minWriteVersion: 2, toReseal: 7 };
    assert.equal(await store.changeKeyState(2, sealing), true);
    assert.deepEqual(await store.keyState(), { ...sealing, revision: 3 });
    for (
      const bad of [
        { ...sealing, phase: "spinning" },
        { ...sealing, targetVersion: null },
        { ...sealing, phase: "idle" },
        { ...sealing, minWriteVersion: 0 },
        { ...sealing, leaseUntil: new Date(NaN) },
      ]
    ) {
      await assert.rejects(store.changeKeyState(3, bad as KeyStateChange), TypeError, JSON.stringify(bad));
    }
    assert.equal((await store.keyState()).revision, 3);
  });

  test("key state: the end of a rotation applies only once nothing is sealed below the new version", async (store) => {
    await store.writeSecret("a", 0, recordOf([version(1, null, bytesOf("a1"), 1), version(2, null, bytesOf("a2"), 2)]));
    await store.upsertPolicy(policy("p", 1, 1));
    const done: KeyStateChange = { ...INITIAL, currentVersion: 2, minWriteVersion: 2 };
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 1, customMetadata: 0, policies: 1 });
    assert.equal(await store.changeKeyState(1, done, { requireNoneBelow: 2 }), false);
    await store.writeSecret(
      "a",
      1,
      recordOf([version(1, null, bytesOf("a1'"), 2), version(2, null, bytesOf("a2"), 2)]),
    );
    assert.equal(await store.changeKeyState(1, done, { requireNoneBelow: 2 }), false, "the policy is still below");
    const [row] = await store.listPolicies();
    assert.deepEqual(await store.replacePolicies([{ expected: row!, next: policy("p", 2, 2) }]), [true]);
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 0, customMetadata: 0, policies: 0 });
    assert.equal(await store.changeKeyState(1, done, { requireNoneBelow: 2 }), true);
    assert.equal((await store.keyState()).currentVersion, 2);
  });

  test("writes sealed under a version below the minimum are refused, and change nothing", async (store) => {
    await store.writeSecret("a", 0, recordOf([version(1)]), { sealedUnder: 1 });
    await store.upsertPolicy(policy("p", 1, 1));
    const raised: KeyStateChange = { ...INITIAL, minWriteVersion: 2 };
    assert.equal(await store.changeKeyState(1, raised), true);
    const stale = (e: unknown) =>
      e instanceof StaleKeyVersionError && e.sealedUnder === 1 && e.minWriteVersion === 2 &&
      /version 1.*version 2/.test(e.message);
    const next = recordOf([version(1), version(2)]);
    await assert.rejects(store.writeSecret("a", 1, next, { sealedUnder: 1 }), stale);
    await assert.rejects(store.writeSecret("new", 0, next, { sealedUnder: 1 }), stale);
    await assert.rejects(store.upsertPolicy(policy("p", 2, 1)), stale);
    await assert.rejects(store.upsertPolicy(policy("q", 2, 1)), stale);
    const [row] = await store.listPolicies();
    await assert.rejects(store.replacePolicies([{ expected: row!, next: policy("p", 3, 1) }]), stale);
    await assert.rejects(
      store.writeSecrets([
        { path: "b", expectedRevision: 0, next, sealedUnder: 2 },
        { path: "c", expectedRevision: 0, next, sealedUnder: 1 },
      ]),
      stale,
    );
    assert.equal((await store.readSecret("a"))?.revision, 1);
    assert.deepEqual(await store.listSecretPaths(), ["a"], "nothing of the refused batch was written");
    assert.deepEqual(await store.getPolicy("p"), row);
    assert.equal(await store.getPolicy("q"), undefined);
    // A write that seals nothing new (a delete) and writes at the minimum go through.
    assert.equal(await store.writeSecret("a", 1, recordOf([version(1, 9)])), true);
    assert.equal(await store.writeSecret("a", 2, next, { sealedUnder: 2 }), true);
    await store.upsertPolicy(policy("p", 4, 2));
  });

  test("writeSecrets: one commit, a compare-and-swap per write", async (store) => {
    await store.writeSecret("b", 0, recordOf([version(1)]));
    const next = recordOf([version(1), version(2)]);
    assert.deepEqual(
      await store.writeSecrets([
        { path: "a", expectedRevision: 0, next, sealedUnder: 1 },
        { path: "b", expectedRevision: 7, next, sealedUnder: 1 },
        { path: "b2", expectedRevision: 0, next },
      ]),
      [true, false, true],
    );
    assert.deepEqual(await store.listSecretPaths(), ["a", "b", "b2"]);
    assert.equal((await store.readSecret("b"))?.versions.size, 1);
    assert.deepEqual(await store.writeSecrets([]), []);
    await assert.rejects(store.writeSecrets([{ path: "", expectedRevision: 0, next }]), TypeError);
  });

  test("secretPathsSealedBelow pages through paths with an old version, in order", async (store) => {
    for (const [path, keyVersions] of [["d", [2]], ["b", [1, 2]], ["a", [1]], ["c", [2, 2]], ["e", [3, 1]]] as const) {
      await store.writeSecret(
        path,
        0,
        recordOf(keyVersions.map((k, i) => version(i + 1, null, bytesOf(`${path}${i}`), k))),
      );
    }
    assert.deepEqual(await store.secretPathsSealedBelow(2, "", 10), ["a", "b", "e"]);
    assert.deepEqual(await store.secretPathsSealedBelow(2, "", 2), ["a", "b"]);
    assert.deepEqual(await store.secretPathsSealedBelow(2, "b", 2), ["e"]);
    assert.deepEqual(await store.secretPathsSealedBelow(3, "b", 10), ["c", "d", "e"]);
    assert.deepEqual(await store.secretPathsSealedBelow(1, "", 10), []);
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 3, customMetadata: 0, policies: 0 });
    await assert.rejects(store.secretPathsSealedBelow(0, "", 1), TypeError);
    await assert.rejects(store.secretPathsSealedBelow(2, "", 0), TypeError);
  });

  test("once the minimum is raised, no write sealed under the old version commits", async (store) => {
    // Writes in flight while the minimum goes up: each one either committed
    // before the change (and is counted right after it) or is refused.
    const next = recordOf([version(1)]);
    const writes = Array.from(
      { length: 60 },
      (_, i) => store.writeSecret(`w/${i}`, 0, next, { sealedUnder: 1 }).catch((e) => e),
    );
    await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(await store.changeKeyState(1, { ...INITIAL, minWriteVersion: 2 }), true);
    const atChange = (await store.countSealedBelow(2)).secretVersions;
    const results = await Promise.all(writes);
    assert.equal((await store.countSealedBelow(2)).secretVersions, atChange, "nothing old committed after the change");
    assert.equal(results.filter((r) => r === true).length, atChange);
    assert.ok(results.every((r) => r === true || r instanceof StaleKeyVersionError));
  });

  test("custom metadata counts under its key version: scanned, counted, and it holds up the end of a rotation", async (store) => {
    const meta = (keyVersion: number) => ({ sealed: bytesOf(`meta-${keyVersion}`), keyVersion });
    // "m": its versions are under 2, its custom metadata under 1, so only the metadata makes it old.
    await store.writeSecret("m", 0, { ...recordOf([version(1, null, bytesOf("m1"), 2)]), customMetadata: meta(1) });
    await store.writeSecret("n", 0, { ...recordOf([version(1, null, bytesOf("n1"), 2)]), customMetadata: meta(2) });
    await store.writeSecret("o", 0, recordOf([version(1, null, bytesOf("o1"), 1)]));
    assert.deepEqual(await store.secretPathsSealedBelow(2, "", 10), ["m", "o"]);
    assert.deepEqual(await store.secretPathsSealedBelow(2, "m", 10), ["o"]);
    assert.deepEqual(await store.secretPathsSealedBelow(2, "", 1), ["m"]);
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 1, customMetadata: 1, policies: 0 });
    const done: KeyStateChange = { ...INITIAL, currentVersion: 2, minWriteVersion: 2 };
    await store.writeSecret("o", 1, recordOf([version(1, null, bytesOf("o1'"), 2)]), { sealedUnder: 2 });
    assert.equal(await store.changeKeyState(1, done, { requireNoneBelow: 2 }), false, "m's metadata is still below");
    const m = await store.readSecret("m");
    const resealed = { ...m!, customMetadata: meta(2) };
    assert.equal(await store.writeSecret("m", m!.revision, resealed, { sealedUnder: 2 }), true);
    assert.deepEqual(await store.countSealedBelow(2), { secretVersions: 0, customMetadata: 0, policies: 0 });
    assert.deepEqual(await store.secretPathsSealedBelow(2, "", 10), []);
    assert.equal(await store.changeKeyState(1, done, { requireNoneBelow: 2 }), true);
  });

  test("the write gate covers moves and custom metadata; removals, destroys and expiry changes seal nothing and pass", async (store) => {
    const old = { sealed: bytesOf("meta"), keyVersion: 1 };
    await store.writeSecret("a", 0, { ...recordOf([version(1), version(2)]), customMetadata: old }, { sealedUnder: 1 });
    await store.writeSecret("b", 0, recordOf([version(1)]), { sealedUnder: 1 });
    await store.writeSecret("c", 0, recordOf([version(1)]), { sealedUnder: 1 });
    const sealing: KeyStateChange = {
      ...INITIAL,
      phase: "sealing",
      targetVersion: 2,
      targetCheck: bytesOf("check-2"),
      minWriteVersion: 2,
    };
    assert.equal(await store.changeKeyState(1, sealing), true);
    const stale = (e: unknown) => e instanceof StaleKeyVersionError && e.sealedUnder === 1 && e.minWriteVersion === 2;
    // A move re-seals for the new path: under the old version it is refused whole.
    const movedStale = recordOf([version(1), version(2)]);
    await assert.rejects(store.moveSecret("a", 1, "a2", 0, movedStale, { sealedUnder: 1 }), stale);
    assert.equal((await store.readSecret("a"))?.revision, 1);
    assert.equal(await store.readSecret("a2"), undefined);
    // Custom metadata sealed under the old version is refused too.
    const a = await store.readSecret("a");
    const relabelled = { ...a!, customMetadata: { sealed: bytesOf("new"), keyVersion: 1 } };
    await assert.rejects(store.writeSecret("a", 1, relabelled, { sealedUnder: 1 }), stale);
    // Under the new version both go through.
    const moved: SecretRecord = {
      ...recordOf([version(1, null, bytesOf("r1"), 2), version(2, null, bytesOf("r2"), 2)]),
      customMetadata: { sealed: bytesOf("r-meta"), keyVersion: 2 },
    };
    assert.equal(await store.moveSecret("a", 1, "a2", 0, moved, { sealedUnder: 2 }), true);
    assertSameRecord(await store.readSecret("a2"), moved);
    // What seals nothing passes while the minimum is raised: a destroy (empty bytes, the version
    // kept) with an expiry set, and the removal of a path (metadata delete, expiry sweep).
    const destroyed: SecretRecord = { ...recordOf([version(1, 5, new Uint8Array(0), 1)]), expiresAt: at(90) };
    assert.equal(await store.writeSecret("b", 1, destroyed), true);
    assertSameRecord(await store.readSecret("b"), destroyed);
    assert.equal(await store.deleteSecret("c", 1), true);
    assert.deepEqual(await store.listSecretPaths(), ["a2", "b"]);
    // A destroyed version keeps its key version until a rotation relabels it.
    assert.deepEqual(await store.secretPathsSealedBelow(2, "", 10), ["b"]);
    await assert.rejects(store.moveSecret("a2", 1, "a3", 0, moved, { sealedUnder: 0 }), TypeError);
  });

  test("a closed store rejects; close is idempotent", async (store) => {
    await store.close();
    await store.close();
    await assert.rejects(store.ping());
    await assert.rejects(store.readSecret("p"));
    await assert.rejects(store.writeSecret("p", 0, recordOf([version(1)])));
    await assert.rejects(store.deleteSecret("p", 1));
    await assert.rejects(store.moveSecret("p", 1, "q", 0, recordOf([version(1)])));
    await assert.rejects(store.writeSecrets([]));
    await assert.rejects(store.keyState());
    await assert.rejects(store.hasData());
  });
}
