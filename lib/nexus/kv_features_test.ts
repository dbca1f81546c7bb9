/**
 * The key-value features beyond SPIKE's wire contract [ours], in process:
 * check-and-set, patch, destroy, custom metadata, expiry, scoped listing,
 * move and batch read. Each feature's happy path, its validation (400), its
 * authorization (401) and its audit record; the real-mTLS and multi-process
 * cases are in `tests/kv_mtls_test.ts`.
 */
import assert from "node:assert/strict";
import { PATHS } from "../api/paths.ts";
import type { PeerResult } from "./peer.ts";
import { createTestNexus, manualClock, peer, type TestNexus } from "./testing.ts";

const TD = "spiffe://spike.ist";
const SUPERUSER = peer(`${TD}/spike/pilot/role/superuser`);
const WEB = peer(`${TD}/app/web`);
const WEB_ID = "^spiffe://spike\\.ist/app/web$";

const CONFLICT = { err: "api_conflict" };
const BAD_REQUEST = { err: "api_bad_request" };
const UNAUTHORIZED = { err: "access_unauthorized" };
const NOT_FOUND = { err: "api_not_found" };

/** Calls and asserts status (and body, when given); resolves the body. */
async function expect(
  nexus: TestNexus,
  who: PeerResult,
  path: string,
  action: string,
  body: unknown,
  status: number,
  expected?: unknown,
): Promise<Record<string, unknown>> {
  const response = await nexus.call(who, path, action, body);
  const label = `${path}?action=${action} ${JSON.stringify(body)?.slice(0, 160)}`;
  assert.equal(response.status, status, `${label} → ${JSON.stringify(response.body)}`);
  if (expected !== undefined) assert.deepEqual(response.body, expected, label);
  return response.body as Record<string, unknown>;
}

/** Gives WEB `permissions` on paths matching `pathPattern`. */
async function grant(nexus: TestNexus, name: string, pathPattern: string, permissions: string[]): Promise<void> {
  await expect(nexus, SUPERUSER, PATHS.policy, "", { name, spiffeidPattern: WEB_ID, pathPattern, permissions }, 200);
}

const put = (
  nexus: TestNexus,
  path: string,
  values: Record<string, string>,
  extra: object = {},
  status = 200,
  expected?: unknown,
) => expect(nexus, SUPERUSER, PATHS.secrets, "", { path, values, ...extra }, status, expected);

const get = (nexus: TestNexus, path: string, version?: number) =>
  expect(nexus, SUPERUSER, PATHS.secrets, "get", version === undefined ? { path } : { path, version }, 200);

const metadata = (nexus: TestNexus, path: string) =>
  expect(nexus, SUPERUSER, PATHS.secretsMetadata, "get", { path }, 200) as Promise<{
    versions: Record<string, Record<string, unknown>>;
    metadata: Record<string, unknown>;
  }>;

// ---------------------------------------------------------------------------
// Check-and-set

Deno.test("cas: 0 creates only a path without a current version; N writes only over version N", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { pass: "one" }, { cas: 0 });
  await put(nexus, "app/db", { pass: "again" }, { cas: 0 }, 409);
  assert.deepEqual(nexus.audit.at(-1)?.err, "api_conflict");
  assert.equal(nexus.audit.at(-1)?.outcome, "invalid");
  await put(nexus, "app/db", { pass: "two" }, { cas: 1 });
  await put(nexus, "app/db", { pass: "stale" }, { cas: 1 }, 409);
  await put(nexus, "app/db", { pass: "future" }, { cas: 7 }, 409);
  assert.deepEqual(await get(nexus, "app/db"), { data: { pass: "two" } });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 2);
  // Without cas a put is unconditional, as in SPIKE.
  await put(nexus, "app/db", { pass: "three" });
  assert.deepEqual(await get(nexus, "app/db"), { data: { pass: "three" } });
});

Deno.test("cas: a path whose versions are all deleted has current version 0", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { pass: "one" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [] }, 200);
  await put(nexus, "app/db", { pass: "x" }, { cas: 1 }, 409);
  await put(nexus, "app/db", { pass: "two" }, { cas: 0 });
  assert.deepEqual(await get(nexus, "app/db"), { data: { pass: "two" } });
});

Deno.test("cas: malformed values are 400; a caller without write gets 401 before any check", async () => {
  const nexus = await createTestNexus();
  for (const cas of [-1, 1.5, "1", true, [], 2 ** 31]) {
    await put(nexus, "app/db", { k: "v" }, { cas }, 400, BAD_REQUEST);
  }
  await put(nexus, "app/db", { k: "v" }, { cas: null });
  await expect(nexus, WEB, PATHS.secrets, "", { path: "app/db", values: { k: "w" }, cas: 1 }, 401, UNAUTHORIZED);
  await grant(nexus, "rw", "^app/.*$", ["write"]);
  await expect(nexus, WEB, PATHS.secrets, "", { path: "app/db", values: { k: "w" }, cas: 5 }, 409, CONFLICT);
  await expect(nexus, WEB, PATHS.secrets, "", { path: "app/db", values: { k: "w" }, cas: 1 }, 200);
});

// ---------------------------------------------------------------------------
// Patch

const patch = (nexus: TestNexus, path: string, values: unknown, extra: object = {}, status = 200, expected?: unknown) =>
  expect(nexus, SUPERUSER, PATHS.secrets, "patch", { path, values, ...extra }, status, expected);

Deno.test("patch: merges keys into a new version; null removes a key; older versions stay", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { user: "admin", pass: "one", host: "h" });
  await patch(nexus, "app/db", { pass: "two", port: "5432", host: null });
  assert.deepEqual(await get(nexus, "app/db"), { data: { user: "admin", pass: "two", port: "5432" } });
  assert.deepEqual(await get(nexus, "app/db", 1), { data: { user: "admin", pass: "one", host: "h" } });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 2);
  // Removing a key that is not there changes nothing but still makes a version.
  await patch(nexus, "app/db", { nothing: null });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 3);
  assert.deepEqual(await get(nexus, "app/db"), { data: { user: "admin", pass: "two", port: "5432" } });
});

Deno.test("patch: merges into the current version, skipping deleted newer ones; cas applies", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { a: "1" });
  await put(nexus, "app/db", { a: "2" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [2] }, 200);
  await patch(nexus, "app/db", { b: "x" }, { cas: 2 }, 409, CONFLICT);
  await patch(nexus, "app/db", { b: "x" }, { cas: 1 });
  assert.deepEqual(await get(nexus, "app/db"), { data: { a: "1", b: "x" } });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 3, "never reuses deleted version 2");
});

Deno.test("patch: 404 without a current version; 400 for bad changes or an empty result", async () => {
  const nexus = await createTestNexus();
  await patch(nexus, "app/missing", { a: "1" }, {}, 404, NOT_FOUND);
  await put(nexus, "app/db", { a: "1" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [] }, 200);
  await patch(nexus, "app/db", { a: "2" }, {}, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secrets, "undelete", { path: "app/db", versions: [1] }, 200);
  for (const values of [{}, { a: 1 }, { "bad key!": "x" }, [], "a=b", null, { a: ["x"] }]) {
    await patch(nexus, "app/db", values, {}, 400, BAD_REQUEST);
  }
  await patch(nexus, "app/db", { a: null }, {}, 400, BAD_REQUEST);
  const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, "v"]));
  await patch(nexus, "app/db", many, {}, 400, BAD_REQUEST);
  assert.deepEqual(await get(nexus, "app/db"), { data: { a: "1" } }, "a refused patch writes nothing");
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 1);
});

Deno.test("patch: needs write on the path (read alone is refused, and nothing is read for it)", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { a: "1" });
  await grant(nexus, "read", "^app/.*$", ["read"]);
  await expect(nexus, WEB, PATHS.secrets, "patch", { path: "app/db", values: { a: "2" } }, 401, UNAUTHORIZED);
  const denied = nexus.audit.at(-1)!;
  assert.equal(denied.resource, "app/db");
  assert.deepEqual(denied.permissions, ["write"]);
  assert.equal(denied.action, "patch");
  await grant(nexus, "write", "^app/.*$", ["write"]);
  await expect(nexus, WEB, PATHS.secrets, "patch", { path: "app/db", values: { a: "2" } }, 200);
  assert.deepEqual(await get(nexus, "app/db"), { data: { a: "2" } });
});

Deno.test("patch: 30 concurrent patches of distinct keys all land (memory store)", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "hot", { base: "0" });
  await Promise.all(Array.from({ length: 30 }, (_, i) => patch(nexus, "hot", { [`k${i}`]: String(i) })));
  const { data } = await get(nexus, "hot") as { data: Record<string, string> };
  assert.equal(Object.keys(data).length, 31);
  for (let i = 0; i < 30; i++) assert.equal(data[`k${i}`], String(i));
});

// ---------------------------------------------------------------------------
// Destroy and metadata delete

const destroy = (nexus: TestNexus, path: string, versions: unknown, status = 200, expected?: unknown) =>
  expect(nexus, SUPERUSER, PATHS.secrets, "destroy", { path, versions }, status, expected);

Deno.test("destroy: the versions' sealed values are gone from the store; metadata marks them; undelete cannot restore", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { v: "1" });
  await put(nexus, "app/db", { v: "2" });
  await put(nexus, "app/db", { v: "3" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [1] }, 200);
  const deletedAt = (await metadata(nexus, "app/db")).versions["1"]!.deletedTime;
  await destroy(nexus, "app/db", [1, 3, 99]);
  const stored = await nexus.deps.store!.readSecret("app/db");
  assert.equal(stored!.versions.get(1)!.sealed.length, 0);
  assert.equal(stored!.versions.get(3)!.sealed.length, 0);
  assert.ok(stored!.versions.get(2)!.sealed.length > 0);
  const meta = await metadata(nexus, "app/db");
  assert.equal(meta.metadata.currentVersion, 2, "current moves down as after a delete");
  assert.equal(meta.versions["1"]!.destroyed, true);
  assert.equal(meta.versions["1"]!.deletedTime, deletedAt, "an earlier deletedTime is kept");
  assert.equal(meta.versions["3"]!.destroyed, true);
  assert.equal(typeof meta.versions["3"]!.deletedTime, "string");
  assert.equal("destroyed" in meta.versions["2"]!, false, "live versions look as in SPIKE");
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db", version: 3 }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secrets, "undelete", { path: "app/db", versions: [1, 3] }, 404, NOT_FOUND);
  assert.deepEqual(await get(nexus, "app/db"), { data: { v: "2" } });
  // The number of a destroyed version is never reused.
  await put(nexus, "app/db", { v: "4" });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 4);
  // Destroying it again, or a version that is not there, changes nothing and is no error.
  await destroy(nexus, "app/db", [3]);
});

Deno.test("destroy: names versions explicitly; 404 for an unknown path; needs write", async () => {
  const nexus = await createTestNexus();
  for (const versions of [[], [0], undefined, null, "1", [1.5], [-1]]) {
    await destroy(nexus, "app/db", versions, 400, BAD_REQUEST);
  }
  await destroy(nexus, "app/db", [1], 404, NOT_FOUND);
  await put(nexus, "app/db", { v: "1" });
  await grant(nexus, "read", "^app/.*$", ["read"]);
  await expect(nexus, WEB, PATHS.secrets, "destroy", { path: "app/db", versions: [1] }, 401, UNAUTHORIZED);
  assert.deepEqual(nexus.audit.at(-1)!.permissions, ["write"]);
  await grant(nexus, "write", "^app/.*$", ["write"]);
  await expect(nexus, WEB, PATHS.secrets, "destroy", { path: "app/db", versions: [1] }, 200);
  assert.equal((await metadata(nexus, "app/db")).versions["1"]!.destroyed, true);
});

Deno.test("metadata delete: the path goes with every version; a new put starts at version 1", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { v: "1" });
  await put(nexus, "app/db", { v: "2" });
  await put(nexus, "app/other", { v: "x" });
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "delete", { path: "app/db" }, 200, {});
  assert.equal(await nexus.deps.store!.readSecret("app/db"), undefined);
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "get", { path: "app/db" }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secrets, "list", {}, 200, { keys: ["app/other"] });
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "delete", { path: "app/db" }, 404, NOT_FOUND);
  await put(nexus, "app/db", { v: "new" });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 1);
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "delete", { path: 7 }, 400, BAD_REQUEST);
  await grant(nexus, "read", "^app/.*$", ["read", "list"]);
  await expect(nexus, WEB, PATHS.secretsMetadata, "delete", { path: "app/db" }, 401, UNAUTHORIZED);
  assert.equal(nexus.audit.at(-1)!.resource, "app/db");
  assert.ok(await nexus.deps.store!.readSecret("app/db"));
});

// ---------------------------------------------------------------------------
// Custom metadata

const putMetadata = (nexus: TestNexus, body: Record<string, unknown>, status = 200, expected?: unknown) =>
  expect(nexus, SUPERUSER, PATHS.secretsMetadata, "", body, status, expected);

Deno.test("custom metadata: set without a new version, shown by metadata get, sealed at rest, replaced and cleared", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { pass: "x" });
  const plain = (await metadata(nexus, "app/db")).metadata;
  assert.equal("customMetadata" in plain, false, "absent until set: SPIKE's shape");
  // Parsed, so `__proto__` is an own key, as it would be on the wire.
  const custom = JSON.parse('{"owner":"team-a","ticket id":"OPS-1","__proto__":"p"}');
  await putMetadata(nexus, { path: "app/db", customMetadata: custom });
  const meta = await metadata(nexus, "app/db");
  assert.deepEqual(meta.metadata.customMetadata, custom);
  assert.equal(Object.keys(meta.metadata.customMetadata as object).length, 3);
  assert.equal(meta.metadata.currentVersion, 1, "no new version");
  assert.deepEqual(Object.keys(meta.versions), ["1"]);
  const stored = await nexus.deps.store!.readSecret("app/db");
  const text = new TextDecoder("latin1").decode(stored!.customMetadata!.sealed);
  assert.ok(stored!.customMetadata!.sealed.length > 0 && !text.includes("team-a"), "sealed, not plain");
  assert.equal(stored!.customMetadata!.keyVersion, 1, "sealed under the write key version");
  // Later puts, patches and deletes keep it.
  await put(nexus, "app/db", { pass: "y" });
  await patch(nexus, "app/db", { user: "u" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [1] }, 200);
  assert.deepEqual(
    ((await metadata(nexus, "app/db")).metadata.customMetadata as Record<string, string>).owner,
    "team-a",
  );
  await putMetadata(nexus, { path: "app/db", customMetadata: { owner: "team-b" } });
  assert.deepEqual((await metadata(nexus, "app/db")).metadata.customMetadata, { owner: "team-b" });
  await putMetadata(nexus, { path: "app/db", customMetadata: {} });
  assert.equal("customMetadata" in (await metadata(nexus, "app/db")).metadata, false);
  assert.equal((await nexus.deps.store!.readSecret("app/db"))!.customMetadata, undefined);
});

Deno.test("custom metadata: sealed for its path — copied to another path it does not open", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/a", { v: "1" });
  await put(nexus, "app/b", { v: "1" });
  await putMetadata(nexus, { path: "app/a", customMetadata: { owner: "a" } });
  const store = nexus.deps.store!;
  const a = (await store.readSecret("app/a"))!;
  const b = (await store.readSecret("app/b"))!;
  assert.ok(await store.writeSecret("app/b", b.revision, { ...b, customMetadata: a.customMetadata }));
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "get", { path: "app/b" }, 500, { err: "api_internal_error" });
});

Deno.test("custom metadata: Vault's limits (64 keys, 128-byte keys, 512-byte values) and other bad input are 400", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { v: "1" });
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
  await putMetadata(nexus, { path: "app/db", customMetadata: keys(64) });
  await putMetadata(nexus, { path: "app/db", customMetadata: { ["k".repeat(128)]: "v".repeat(512) } });
  await putMetadata(nexus, { path: "app/db", customMetadata: { ["é".repeat(64)]: "€".repeat(170) } });
  for (
    const customMetadata of [
      keys(65),
      { ["k".repeat(129)]: "v" },
      { ["é".repeat(65)]: "v" },
      { k: "v".repeat(513) },
      { k: "€".repeat(171) },
      { "": "v" },
      { k: 1 },
      { k: null },
      { "a\0b": "v" },
      { k: "\ud800" },
      [],
      "k=v",
      null,
    ]
  ) {
    await putMetadata(nexus, { path: "app/db", customMetadata }, 400, BAD_REQUEST);
  }
  await putMetadata(nexus, { path: "app/db" }, 400, BAD_REQUEST);
  await putMetadata(nexus, { path: "app/none", customMetadata: { k: "v" } }, 404, NOT_FOUND);
});

Deno.test("custom metadata: put needs write; get needs read", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/db", { v: "1" });
  await grant(nexus, "read", "^app/.*$", ["read"]);
  await expect(
    nexus,
    WEB,
    PATHS.secretsMetadata,
    "",
    { path: "app/db", customMetadata: { k: "v" } },
    401,
    UNAUTHORIZED,
  );
  assert.deepEqual(nexus.audit.at(-1)!.permissions, ["write"]);
  await putMetadata(nexus, { path: "app/db", customMetadata: { k: "v" } });
  const seen = await expect(nexus, WEB, PATHS.secretsMetadata, "get", { path: "app/db" }, 200);
  assert.deepEqual((seen.metadata as Record<string, unknown>).customMetadata, { k: "v" });
});

// ---------------------------------------------------------------------------
// Expiry (a clock moved by hand; the sweep itself is in expiry_sweeper_test.ts)

const HOUR = 3_600_000;

Deno.test("expiry: a secret with a ttl reads until then, then 404 everywhere; metadata shows the time", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  await put(nexus, "app/db", { pass: "x" }, { ttl: "24h" });
  await put(nexus, "app/other", { pass: "y" });
  const meta = await metadata(nexus, "app/db");
  assert.equal(meta.metadata.expiresAt, new Date(clock.now().getTime() + 24 * HOUR).toISOString());
  assert.equal("expiresAt" in (await metadata(nexus, "app/other")).metadata, false);
  clock.advance(24 * HOUR - 1);
  assert.deepEqual(await get(nexus, "app/db"), { data: { pass: "x" } });
  clock.advance(1);
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db", version: 1 }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "get", { path: "app/db" }, 404, NOT_FOUND);
  await patch(nexus, "app/db", { a: "b" }, {}, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [] }, 404, NOT_FOUND);
  await putMetadata(nexus, { path: "app/db", customMetadata: { k: "v" } }, 404, NOT_FOUND);
  assert.deepEqual(await get(nexus, "app/other"), { data: { pass: "y" } });
  // Written again, it is a new secret: version 1, no expiry, no trace of the old one.
  await put(nexus, "app/db", { pass: "new" }, { cas: 0 });
  const fresh = await metadata(nexus, "app/db");
  assert.equal(fresh.metadata.currentVersion, 1);
  assert.equal("expiresAt" in fresh.metadata, false);
  assert.deepEqual(Object.keys(fresh.versions), ["1"]);
});

Deno.test("expiry: absolute expiresAt; later puts keep the secret's expiry; metadata put changes and clears it", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const at = new Date(clock.now().getTime() + 2 * HOUR).toISOString();
  await put(nexus, "app/db", { v: "1" }, { expiresAt: at });
  await put(nexus, "app/db", { v: "2" });
  assert.equal((await metadata(nexus, "app/db")).metadata.expiresAt, at);
  await putMetadata(nexus, { path: "app/db", ttl: "3h" });
  assert.equal(
    (await metadata(nexus, "app/db")).metadata.expiresAt,
    new Date(clock.now().getTime() + 3 * HOUR).toISOString(),
  );
  await putMetadata(nexus, { path: "app/db", expiresAt: null });
  assert.equal("expiresAt" in (await metadata(nexus, "app/db")).metadata, false);
  clock.advance(10 * HOUR);
  assert.deepEqual(await get(nexus, "app/db"), { data: { v: "2" } });
  await putMetadata(nexus, { path: "app/db", ttl: 60 });
  clock.advance(60_000);
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 404, NOT_FOUND);
});

Deno.test("expiry: a version ttl hides that version only; current falls back as after a delete; cas sees it", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  await put(nexus, "app/db", { v: "1" });
  await put(nexus, "app/db", { v: "2" }, { versionTtl: "1h" });
  await patch(nexus, "app/db", { w: "3" }, { versionTtl: "2h" });
  let meta = await metadata(nexus, "app/db");
  assert.equal(meta.metadata.currentVersion, 3);
  assert.equal(meta.versions["2"]!.expiresAt, new Date(clock.now().getTime() + HOUR).toISOString());
  assert.equal("expiresAt" in meta.versions["1"]!, false);
  clock.advance(HOUR);
  assert.deepEqual(await get(nexus, "app/db"), { data: { v: "2", w: "3" } });
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db", version: 2 }, 404, NOT_FOUND);
  clock.advance(HOUR);
  assert.deepEqual(await get(nexus, "app/db"), { data: { v: "1" } }, "the highest version still readable");
  meta = await metadata(nexus, "app/db");
  assert.equal(meta.metadata.currentVersion, 1);
  await put(nexus, "app/db", { v: "x" }, { cas: 3 }, 409, CONFLICT);
  await expect(nexus, SUPERUSER, PATHS.secrets, "undelete", { path: "app/db", versions: [2, 3] }, 404, NOT_FOUND);
  // A patch builds on what can be read: version 1.
  await patch(nexus, "app/db", { p: "4" }, { cas: 1 });
  assert.deepEqual(await get(nexus, "app/db"), { data: { v: "1", p: "4" } });
  assert.equal((await metadata(nexus, "app/db")).metadata.currentVersion, 4, "expired numbers are not reused");
});

Deno.test("expiry: bad ttl or expiresAt values are 400, as is a time not in the future", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  const past = new Date(clock.now().getTime() - 1000).toISOString();
  const now = clock.now().toISOString();
  for (
    const extra of [
      { ttl: "24" },
      { ttl: "0s" },
      { ttl: "999ms" },
      { ttl: "876001h" },
      { ttl: 0 },
      { ttl: -5 },
      { ttl: 1.5 },
      { ttl: true },
      { ttl: "1h", expiresAt: "2099-01-01T00:00:00Z" },
      { expiresAt: "2099-01-01" },
      { expiresAt: "tomorrow" },
      { expiresAt: 4102444800 },
      { expiresAt: past },
      { expiresAt: now },
      { versionTtl: "soon" },
      { versionExpiresAt: past },
    ]
  ) {
    await put(nexus, "app/db", { v: "1" }, extra, 400, BAD_REQUEST);
  }
  await put(nexus, "app/db", { v: "1" }, { ttl: "1s", versionTtl: 3600, expiresAt: null });
  await putMetadata(nexus, { path: "app/db", ttl: "1h", expiresAt: "2099-01-01T00:00:00Z" }, 400, BAD_REQUEST);
  await putMetadata(nexus, { path: "app/db", expiresAt: past }, 400, BAD_REQUEST);
  await putMetadata(nexus, { path: "app/db", ttl: null }, 400, BAD_REQUEST);
});

// ---------------------------------------------------------------------------
// Scoped, paged listing

type ListPage = { keys: string[]; cursor?: string };

const list = (nexus: TestNexus, who: PeerResult, body: Record<string, unknown>, status = 200, expected?: unknown) =>
  expect(nexus, who, PATHS.secrets, "list", body, status, expected) as Promise<ListPage>;

/** Every page from the start. */
async function listAll(nexus: TestNexus, who: PeerResult, prefix: string, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await list(nexus, who, { prefix, limit, ...(cursor ? { cursor } : {}) });
    pages.push(page.keys);
    cursor = page.cursor;
  } while (cursor && pages.length < 1000);
  return pages;
}

async function seedPaths(nexus: TestNexus): Promise<void> {
  for (const path of ["apps/billing/db", "apps/billing/api", "apps/web/db", "apps/web/tls", "ops/key", "zeta"]) {
    await put(nexus, path, { v: path });
  }
}

Deno.test("list: SPIKE's {} still lists every path and needs list on spike/system/secret", async () => {
  const nexus = await createTestNexus();
  await seedPaths(nexus);
  await list(nexus, SUPERUSER, {}, 200, {
    keys: ["apps/billing/api", "apps/billing/db", "apps/web/db", "apps/web/tls", "ops/key", "zeta"],
  });
  await grant(nexus, "read-apps", "^apps/.*$", ["read", "list"]);
  await list(nexus, WEB, {}, 401, UNAUTHORIZED);
  assert.equal(nexus.audit.at(-1)!.resource, "spike/system/secret");
});

Deno.test("list: with a prefix, the superuser gets every path under it, in pages with an opaque cursor", async () => {
  const nexus = await createTestNexus();
  await seedPaths(nexus);
  assert.deepEqual(await list(nexus, SUPERUSER, { prefix: "apps/" }), {
    keys: ["apps/billing/api", "apps/billing/db", "apps/web/db", "apps/web/tls"],
  });
  assert.deepEqual(await listAll(nexus, SUPERUSER, "apps/", 3), [
    ["apps/billing/api", "apps/billing/db", "apps/web/db"],
    ["apps/web/tls"],
  ]);
  assert.deepEqual(await listAll(nexus, SUPERUSER, "", 2), [
    ["apps/billing/api", "apps/billing/db"],
    ["apps/web/db", "apps/web/tls"],
    ["ops/key", "zeta"],
    [],
  ]);
  const first = await list(nexus, SUPERUSER, { limit: 1 });
  assert.match(first.cursor!, /^[A-Za-z0-9_-]+$/, "base64url");
  assert.equal(first.cursor!.includes("apps"), false, "opaque, not the path itself");
  await list(nexus, SUPERUSER, { prefix: "none/" }, 200, { keys: [] });
  const audited = nexus.audit.at(-1)!;
  assert.equal(audited.resource, "none/");
  assert.deepEqual(audited.permissions, ["list"]);
});

Deno.test("list: a workload sees only the paths it may read or list; write alone shows nothing; never a 401", async () => {
  const nexus = await createTestNexus();
  await seedPaths(nexus);
  await list(nexus, WEB, { prefix: "" }, 200, { keys: [] });
  await grant(nexus, "billing-read", "^apps/billing/", ["read"]);
  await grant(nexus, "web-list", "^apps/web/db$", ["list"]);
  await grant(nexus, "ops-write", "^ops/", ["write"]);
  await grant(nexus, "zeta-unanchored", "eta", ["read"]);
  assert.deepEqual((await list(nexus, WEB, { prefix: "" })).keys, [
    "apps/billing/api",
    "apps/billing/db",
    "apps/web/db",
    "zeta",
  ]);
  assert.deepEqual((await list(nexus, WEB, { prefix: "apps/web/" })).keys, ["apps/web/db"]);
  assert.deepEqual((await list(nexus, WEB, { prefix: "ops/" })).keys, []);
  assert.deepEqual((await listAll(nexus, WEB, "", 1)).flat(), [
    "apps/billing/api",
    "apps/billing/db",
    "apps/web/db",
    "zeta",
  ]);
  // Holding list on spike/system/secret (the old grant) shows everything, as the old list would.
  await expect(nexus, SUPERUSER, PATHS.policy, "", {
    name: "lister",
    spiffeidPattern: WEB_ID,
    pathPattern: "^spike/system/secret$",
    permissions: ["list"],
  }, 200);
  assert.equal((await list(nexus, WEB, { prefix: "" })).keys.length, 6);
  assert.equal((await list(nexus, WEB, {})).keys.length, 6);
});

Deno.test("list: bad prefix, limit or cursor is 400; a cursor made up of a valid path just starts there", async () => {
  const nexus = await createTestNexus();
  await seedPaths(nexus);
  for (const body of [{ prefix: 5 }, { prefix: "has space" }, { prefix: "x".repeat(501) }]) {
    await list(nexus, SUPERUSER, body, 400, BAD_REQUEST);
  }
  for (const limit of [0, 1001, 1.5, "10", -1]) await list(nexus, SUPERUSER, { limit }, 400, BAD_REQUEST);
  for (const cursor of ["", "not base64!", "////", btoa("has space"), 7, "_w", "A".repeat(701)]) {
    await list(nexus, SUPERUSER, { cursor }, 400, BAD_REQUEST);
  }
  const made = btoa("apps/web/db").replaceAll("=", "");
  assert.deepEqual((await list(nexus, SUPERUSER, { cursor: made })).keys, ["apps/web/tls", "ops/key", "zeta"]);
  assert.deepEqual((await list(nexus, SUPERUSER, { limit: 1000 })).keys.length, 6);
  assert.deepEqual((await list(nexus, SUPERUSER, { prefix: null })).keys.length, 6);
});

// ---------------------------------------------------------------------------
// Move

const move = (nexus: TestNexus, who: PeerResult, from: unknown, to: unknown, status = 200, expected?: unknown) =>
  expect(nexus, who, PATHS.secrets, "move", { from, to }, status, expected);

Deno.test("move: every version, its times and metadata go to the new path, re-sealed for it; the old path is gone", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  await put(nexus, "old/db", { v: "1" });
  clock.advance(1000);
  await put(nexus, "old/db", { v: "2" }, { versionTtl: "1h" });
  await put(nexus, "old/db", { v: "3" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "old/db", versions: [3] }, 200);
  await destroy(nexus, "old/db", [1]);
  await putMetadata(nexus, { path: "old/db", customMetadata: { owner: "a" }, ttl: "24h" });
  const before = await metadata(nexus, "old/db");
  const sealedBefore = (await nexus.deps.store!.readSecret("old/db"))!.versions.get(2)!.sealed;
  await move(nexus, SUPERUSER, "old/db", "new/db", 200, {});
  await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "get", { path: "old/db" }, 404, NOT_FOUND);
  assert.deepEqual(await metadata(nexus, "new/db"), before, "versions, times, custom metadata, expiry: all moved");
  assert.deepEqual(await get(nexus, "new/db"), { data: { v: "2" } });
  await expect(nexus, SUPERUSER, PATHS.secrets, "undelete", { path: "new/db", versions: [3] }, 200);
  assert.deepEqual(await get(nexus, "new/db"), { data: { v: "3" } });
  const moved = (await nexus.deps.store!.readSecret("new/db"))!;
  assert.notDeepEqual(moved.versions.get(2)!.sealed, sealedBefore, "re-sealed, not copied");
  assert.equal(moved.versions.get(1)!.sealed.length, 0, "a destroyed version stays destroyed");
  // The old ciphertext does not open at the new path: the path really is bound in.
  await nexus.deps.store!.writeSecret("new/db", moved.revision, {
    ...moved,
    versions: new Map([...moved.versions, [2, { ...moved.versions.get(2)!, sealed: sealedBefore }]]),
  });
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "new/db", version: 2 }, 500);
});

Deno.test("move: 409 onto an existing path, 404 from a missing one, 400 for bad or equal paths; an expired destination is replaced", async () => {
  const clock = manualClock();
  const nexus = await createTestNexus({ clock: clock.now });
  await put(nexus, "a", { v: "a" });
  await put(nexus, "b", { v: "b" });
  await move(nexus, SUPERUSER, "a", "b", 409, CONFLICT);
  await move(nexus, SUPERUSER, "none", "c", 404, NOT_FOUND);
  for (const [from, to] of [["a", "a"], ["a", 7], [undefined, "c"], ["a", "has space"], ["a", ""]]) {
    await move(nexus, SUPERUSER, from, to, 400, BAD_REQUEST);
  }
  assert.deepEqual(await get(nexus, "a"), { data: { v: "a" } });
  assert.deepEqual(await get(nexus, "b"), { data: { v: "b" } });
  await put(nexus, "gone", { v: "expiring" }, { ttl: "1s" });
  clock.advance(1000);
  await move(nexus, SUPERUSER, "a", "gone", 200, {});
  assert.deepEqual(await get(nexus, "gone"), { data: { v: "a" } });
  await move(nexus, SUPERUSER, "gone", "a", 200, {});
  await put(nexus, "gone", { v: "expiring" }, { ttl: "1s" });
  clock.advance(1000);
  await move(nexus, SUPERUSER, "gone", "c", 404, NOT_FOUND);
});

Deno.test("move: needs read and write on the source and write on the destination; both paths are audited", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "src/db", { v: "1" });
  await grant(nexus, "src-write", "^src/", ["write"]);
  await grant(nexus, "dst-write", "^dst/", ["write"]);
  await move(nexus, WEB, "src/db", "dst/db", 401, UNAUTHORIZED);
  let record = nexus.audit.at(-1)!;
  assert.deepEqual(record.resources, [
    { path: "src/db", permissions: ["read", "write"], outcome: "denied" },
    { path: "dst/db", permissions: ["write"], outcome: "ok" },
  ]);
  await grant(nexus, "src-read", "^src/", ["read"]);
  await move(nexus, WEB, "src/db", "elsewhere/db", 401, UNAUTHORIZED);
  assert.equal(nexus.audit.at(-1)!.resources![1]!.outcome, "denied");
  await move(nexus, WEB, "src/db", "dst/db", 200, {});
  record = nexus.audit.at(-1)!;
  assert.equal(record.resource, "src/db");
  assert.deepEqual(record.resources!.map((r) => r.outcome), ["ok", "ok"]);
  assert.deepEqual(await get(nexus, "dst/db"), { data: { v: "1" } });
  // A denied move changed nothing.
  assert.equal(await nexus.deps.store!.readSecret("elsewhere/db"), undefined);
  assert.equal("resources" in nexus.audit[0]!, false, "other requests' records have no resources field");
});

// ---------------------------------------------------------------------------
// Batch read

const getMany = (nexus: TestNexus, who: PeerResult, paths: unknown, status = 200, expected?: unknown) =>
  expect(nexus, who, PATHS.secrets, "getMany", { paths }, status, expected);

Deno.test("getMany: per path data, not found or denied — each authorized on its own, each audited", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/a", { v: "a" });
  await put(nexus, "app/b", { v: "b" });
  await put(nexus, "app/gone", { v: "x" });
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/gone", versions: [] }, 200);
  await put(nexus, "other/c", { v: "c" });
  await grant(nexus, "app-read", "^app/", ["read"]);
  await grant(nexus, "other-write", "^other/", ["write"]);
  await getMany(nexus, WEB, ["app/a", "app/b", "app/missing", "app/gone", "other/c", "app/a"], 200, {
    results: {
      "app/a": { data: { v: "a" } },
      "app/b": { data: { v: "b" } },
      "app/missing": { err: "api_not_found" },
      "app/gone": { err: "api_not_found" },
      "other/c": { err: "access_unauthorized" },
    },
  });
  const record = nexus.audit.at(-1)!;
  assert.equal(record.action, "getMany");
  assert.equal(record.outcome, "ok");
  assert.deepEqual(record.permissions, ["read"]);
  assert.deepEqual(record.resources, [
    { path: "app/a", permissions: ["read"], outcome: "ok" },
    { path: "app/b", permissions: ["read"], outcome: "ok" },
    { path: "app/missing", permissions: ["read"], outcome: "not_found" },
    { path: "app/gone", permissions: ["read"], outcome: "not_found" },
    { path: "other/c", permissions: ["read"], outcome: "denied" },
  ]);
  assert.ok(!JSON.stringify(record).includes('"v"'), "no value in the audit record");
  await getMany(nexus, SUPERUSER, ["other/c", "__proto__"], 200, {
    results: JSON.parse('{"other/c":{"data":{"v":"c"}},"__proto__":{"err":"api_not_found"}}'),
  });
});

Deno.test("getMany: 1 to 100 valid paths, else 400 for the whole request", async () => {
  const nexus = await createTestNexus();
  await put(nexus, "app/a", { v: "a" });
  const hundred = Array.from({ length: 100 }, (_, i) => `app/${i}`);
  const answer = await getMany(nexus, SUPERUSER, hundred) as { results: Record<string, unknown> };
  assert.equal(Object.keys(answer.results).length, 100);
  for (const paths of [[], [...hundred, "app/a"], "app/a", [1], ["app/a", "bad path"], null, undefined]) {
    await getMany(nexus, SUPERUSER, paths, 400, BAD_REQUEST);
  }
  // A tampered record fails its own path only.
  const store = nexus.deps.store!;
  const a = (await store.readSecret("app/a"))!;
  await put(nexus, "app/b", { v: "b" });
  const b = (await store.readSecret("app/b"))!;
  await store.writeSecret("app/b", b.revision, {
    ...b,
    versions: new Map([[1, { ...b.versions.get(1)!, sealed: a.versions.get(1)!.sealed }]]),
  });
  await getMany(nexus, SUPERUSER, ["app/a", "app/b"], 200, {
    results: { "app/a": { data: { v: "a" } }, "app/b": { err: "api_internal_error" } },
  });
  assert.equal(nexus.audit.at(-1)!.resources![1]!.outcome, "error");
});
