/**
 * Behaviour of the Nexus app beyond the route × identity matrix: routing
 * errors, readiness, validation, size limits, roles, break-glass recovery
 * and restore, bootstrap verification, reserved paths, policy regexes
 * (including ReDoS), the cipher API, and a property test that no request
 * makes the app answer 500.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { PATHS } from "../api/paths.ts";
import { encryptGcm } from "../crypto/aead.ts";
import { combineShares, splitSecret } from "../crypto/shamir.ts";
import { createMemoryStore } from "../store/memory_store.ts";
import type { Store } from "../store/types.ts";
import { SPIKE_VERSION } from "../version.ts";
import type { PeerResult } from "./peer.ts";
import { createTestNexus, NO_CERT, peer, type TestNexus, testRootKey } from "./testing.ts";

const TD = "spiffe://spike.ist";
const SUPERUSER = peer(`${TD}/spike/pilot/role/superuser`);
const RECOVER = peer(`${TD}/spike/pilot/role/recover`);
const RESTORE = peer(`${TD}/spike/pilot/role/restore`);
const BOOTSTRAP = peer(`${TD}/spike/bootstrap`);
const LITE = peer(`${TD}/spike/workload/role/lite`);
const WEB = peer(`${TD}/app/web`);
const WEB_ID = "^spiffe://spike\\.ist/app/web$";

const BAD_REQUEST = { err: "api_bad_request" };
const UNAUTHORIZED = { err: "access_unauthorized" };
const NOT_FOUND = { err: "api_not_found" };
const NOT_READY = { err: "state_not_ready" };
const TOO_LARGE = { err: "api_payload_too_large" };
const READY = {
  ready: true,
  rootKey: "loaded",
  store: "ok",
  keyVersion: 1,
  rotation: "idle",
  tampered: false,
  version: SPIKE_VERSION,
};

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Calls and asserts status and body in one line. */
async function expect(
  nexus: TestNexus,
  who: PeerResult,
  path: string,
  action: string,
  body: unknown,
  status: number,
  expected?: unknown,
  init?: { method?: string; contentType?: string },
): Promise<unknown> {
  const response = await nexus.call(who, path, action, body, init);
  const label = `${init?.method ?? "POST"} ${path}?action=${action} ${JSON.stringify(body)?.slice(0, 120)}`;
  assert.equal(response.status, status, `${label} → ${JSON.stringify(response.body)}`);
  if (expected !== undefined) assert.deepEqual(response.body, expected, label);
  return response.body;
}

async function putPolicy(
  nexus: TestNexus,
  name: string,
  spiffeidPattern: string,
  pathPattern: string,
  permissions: string[],
  status = 200,
): Promise<void> {
  await expect(nexus, SUPERUSER, PATHS.policy, "", { name, spiffeidPattern, pathPattern, permissions }, status);
}

// ---------------------------------------------------------------------------
// Routing

Deno.test("other methods and unknown paths or actions answer 400 api_bad_request", async () => {
  const nexus = await createTestNexus();
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "a" }, 400, BAD_REQUEST, { method });
  }
  const unknown: Array<[string, string]> = [
    ["/v1/nope", ""],
    ["/v1/store/secrets", "bogus"],
    ["/v1/store/secrets/", ""],
    ["/v1/acl/policy", "undelete"],
    ["/v1/store/secrets/metadata", "list"],
    ["/v1/cipher/encrypt", "get"],
    ["/v1/store/contribute", ""],
    ["/health", ""],
    ["/", ""],
  ];
  for (const [path, action] of unknown) {
    await expect(nexus, SUPERUSER, path, action, {}, 400, BAD_REQUEST);
    // Routing comes before authentication: the answer is the same without a certificate.
    await expect(nexus, NO_CERT, path, action, {}, 400, BAD_REQUEST);
  }
});

// ---------------------------------------------------------------------------
// Readiness

/** A store already holding data sealed under `testRootKey()` (and its check value). */
async function storeWithData(): Promise<Store> {
  const store = createMemoryStore();
  const first = await createTestNexus({ store });
  await expect(first, SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { pass: "p1" } }, 200);
  return store;
}

Deno.test("before the root key every data route answers 503 state_not_ready", async () => {
  const nexus = await createTestNexus({ withKey: false });
  const cases: Array<[PeerResult, string, string, unknown]> = [
    [SUPERUSER, PATHS.secrets, "", { path: "a", values: { k: "v" } }],
    [SUPERUSER, PATHS.secrets, "get", { path: "a" }],
    [SUPERUSER, PATHS.secrets, "delete", { path: "a", versions: [] }],
    [SUPERUSER, PATHS.secrets, "undelete", { path: "a", versions: [] }],
    [SUPERUSER, PATHS.secrets, "list", {}],
    [SUPERUSER, PATHS.secretsMetadata, "get", { path: "a" }],
    [SUPERUSER, PATHS.policy, "", { name: "p", spiffeidPattern: "^x$", pathPattern: "^y$", permissions: ["read"] }],
    [SUPERUSER, PATHS.policy, "get", { id: "p" }],
    [SUPERUSER, PATHS.policy, "delete", { id: "p" }],
    [SUPERUSER, PATHS.policy, "list", {}],
    [SUPERUSER, PATHS.encrypt, "", { plaintext: btoa("hi") }],
    [SUPERUSER, PATHS.decrypt, "", { version: 1, nonce: b64(new Uint8Array(12)), ciphertext: b64(new Uint8Array(20)) }],
    [LITE, PATHS.encrypt, "", { plaintext: btoa("hi") }],
    [LITE, PATHS.encrypt, "", new Uint8Array([1, 2, 3])],
  ];
  for (const [who, path, action, body] of cases) {
    const contentType = body instanceof Uint8Array ? "application/octet-stream" : undefined;
    await expect(nexus, who, path, action, body, 503, NOT_READY, { contentType });
  }
  // Bootstrap's 503 says whether this Nexus already holds data.
  await expect(nexus, BOOTSTRAP, PATHS.bootstrapVerify, "", {}, 503, { err: "state_not_ready", initialized: false });
  const withData = await createTestNexus({ store: await storeWithData(), withKey: false });
  await expect(withData, BOOTSTRAP, PATHS.bootstrapVerify, "", {}, 503, { err: "state_not_ready", initialized: true });
  // Restore is exempt: it is how the key arrives.
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 1, shard: Array(32).fill(7) }, 200, {
    collected: 1,
    remaining: 1,
    restored: false,
  });
  // Recover is not gated by readiness, but without a key there are no shards to hand out.
  await expect(nexus, RECOVER, PATHS.recover, "", {}, 503, NOT_READY);
  // The role gate still comes first: a caller without the role learns nothing about readiness.
  await expect(nexus, SUPERUSER, PATHS.recover, "", {}, 401, UNAUTHORIZED);
  await expect(nexus, WEB, PATHS.bootstrapVerify, "", {}, 401, UNAUTHORIZED);
});

Deno.test("/health answers 200 without a certificate; /ready turns 200 once the key is in and the store answers", async () => {
  const store = createMemoryStore();
  const nexus = await createTestNexus({ store, withKey: false });
  const version = SPIKE_VERSION;
  await expect(nexus, NO_CERT, "/health", "", undefined, 200, { status: "ok" }, { method: "GET" });
  await expect(nexus, NO_CERT, "/ready", "", undefined, 503, {
    ready: false,
    reason: "root key not loaded",
    rootKey: "missing",
    store: "ok",
    version,
  }, { method: "GET" });
  const shares = splitSecret(testRootKey(), 3, 2);
  for (const share of shares.slice(0, 2)) {
    await expect(nexus, RESTORE, PATHS.restore, "", { id: share.index, shard: [...share.value] }, 200);
  }
  await expect(nexus, NO_CERT, "/ready", "", undefined, 200, READY, { method: "GET" });
  await store.close();
  await expect(nexus, NO_CERT, "/ready", "", undefined, 503, {
    ready: false,
    reason: "backend store not answering",
    rootKey: "loaded",
    store: "unreachable",
    version,
  }, { method: "GET" });
});

Deno.test("/ready: a store that does not answer at all is reported unreachable, not waited for", async () => {
  const store = createMemoryStore();
  const nexus = await createTestNexus({ store: { ...store, ping: () => new Promise<void>(() => {}) } });
  // Without the bound this request would never end.
  const body = await expect(nexus, NO_CERT, "/ready", "", undefined, 503, undefined, { method: "GET" });
  assert.equal((body as { store: string }).store, "unreachable");
});

// ---------------------------------------------------------------------------
// Validation and limits

Deno.test("malformed bodies, wrong types, over-long paths and names, bad versions → 400", async () => {
  const nexus = await createTestNexus();
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "app/x", values: { k: "v" } }, 200);
  const raw = (text: string) => new TextEncoder().encode(text);
  const malformed: unknown[] = [
    raw("{"),
    raw('{"path": "a",}'),
    raw("not json"),
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), // not UTF-8
    [],
    "a string",
    42,
    null,
  ];
  for (const body of malformed) {
    await expect(nexus, SUPERUSER, PATHS.secrets, "get", body, 400, BAD_REQUEST);
    await expect(nexus, SUPERUSER, PATHS.policy, "", body, 400, BAD_REQUEST);
    await expect(nexus, SUPERUSER, PATHS.encrypt, "", body, 400, BAD_REQUEST);
  }
  const badSecretBodies: unknown[] = [
    { values: { k: "v" } },
    { path: 1, values: { k: "v" } },
    { path: "", values: { k: "v" } },
    { path: "a".repeat(501), values: { k: "v" } },
    { path: "has space", values: { k: "v" } },
    { path: "bang!", values: { k: "v" } },
    { path: "a" },
    { path: "a", values: "k=v" },
    { path: "a", values: ["v"] },
    { path: "a", values: {} },
    { path: "a", values: { k: 1 } },
    { path: "a", values: { k: null } },
    { path: "a", values: { ["k".repeat(251)]: "v" } },
    { path: "a", values: { "bad/key": "v" } },
    { path: "a", values: { "": "v" } },
  ];
  for (const body of badSecretBodies) await expect(nexus, SUPERUSER, PATHS.secrets, "", body, 400, BAD_REQUEST);
  // The limits themselves are accepted.
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "a".repeat(500), values: { ["k".repeat(250)]: "v" } }, 200);

  for (const version of [-1, 1.5, "1", true, {}, 2 ** 31]) {
    await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/x", version }, 400, BAD_REQUEST);
    await expect(nexus, SUPERUSER, PATHS.secretsMetadata, "get", { path: "app/x", version }, 400, BAD_REQUEST);
    await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/x", versions: [version] }, 400, BAD_REQUEST);
    await expect(nexus, SUPERUSER, PATHS.secrets, "undelete", { path: "app/x", versions: [version] }, 400);
  }
  await expect(nexus, SUPERUSER, PATHS.secrets, "delete", { path: "app/x", versions: "1" }, 400, BAD_REQUEST);
  await expect(nexus, SUPERUSER, PATHS.secrets, "list", [], 400, BAD_REQUEST);

  const policy = { name: "p", spiffeidPattern: "^spiffe://spike\\.ist/x$", pathPattern: "^y$", permissions: ["read"] };
  const badPolicies: unknown[] = [
    { ...policy, name: "n".repeat(251) },
    { ...policy, name: "" },
    { ...policy, name: "a/b" },
    { ...policy, name: 5 },
    { ...policy, spiffeidPattern: 5 },
    { ...policy, spiffeidPattern: "" },
    { ...policy, pathPattern: null },
    { ...policy, permissions: [] },
    { ...policy, permissions: "read" },
    { ...policy, permissions: ["read", "admin"] },
  ];
  for (const body of badPolicies) await expect(nexus, SUPERUSER, PATHS.policy, "", body, 400, BAD_REQUEST);
  await expect(nexus, SUPERUSER, PATHS.policy, "", { ...policy, name: "n".repeat(250) }, 200);
  for (const id of ["n".repeat(251), "", 3, null]) {
    await expect(nexus, SUPERUSER, PATHS.policy, "get", { id }, 400, BAD_REQUEST);
    await expect(nexus, SUPERUSER, PATHS.policy, "delete", { id }, 400, BAD_REQUEST);
  }
});

Deno.test("a body over maxBodyBytes → 413 api_payload_too_large", async () => {
  const nexus = await createTestNexus({ settings: { maxBodyBytes: 2048 } });
  const big = { path: "app/big", values: { k: "x".repeat(4096) } };
  await expect(nexus, SUPERUSER, PATHS.secrets, "", big, 413, TOO_LARGE);
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/big" }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "app/big", values: { k: "x".repeat(1900) } }, 200);
  await expect(nexus, LITE, PATHS.encrypt, "", new Uint8Array(4096), 413, TOO_LARGE, {
    contentType: "application/octet-stream",
  });
});

// ---------------------------------------------------------------------------
// Roles

Deno.test("the lite workload may encrypt and decrypt but gets 401 on secrets and policies", async () => {
  const nexus = await createTestNexus();
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { k: "v" } }, 200);
  // Even a policy naming the lite workload does not open secrets to it.
  await putPolicy(nexus, "lite-all", "^spiffe://spike\\.ist/spike/workload/role/lite$", ".*", ["super"]);
  const envelope = await expect(nexus, LITE, PATHS.encrypt, "", { plaintext: btoa("lite data") }, 200);
  await expect(nexus, LITE, PATHS.decrypt, "", envelope, 200, { plaintext: btoa("lite data") });
  const sealed = await expect(nexus, LITE, PATHS.encrypt, "", new Uint8Array([9, 8, 7]), 200, undefined, {
    contentType: "application/octet-stream",
  });
  await expect(nexus, LITE, PATHS.decrypt, "", sealed, 200, new Uint8Array([9, 8, 7]), {
    contentType: "application/octet-stream",
  });
  const denied: Array<[string, string, unknown]> = [
    [PATHS.secrets, "", { path: "app/db", values: { k: "v" } }],
    [PATHS.secrets, "get", { path: "app/db" }],
    [PATHS.secrets, "delete", { path: "app/db", versions: [] }],
    [PATHS.secrets, "undelete", { path: "app/db", versions: [] }],
    [PATHS.secrets, "list", {}],
    [PATHS.secretsMetadata, "get", { path: "app/db" }],
    [PATHS.policy, "", { name: "x", spiffeidPattern: "^x$", pathPattern: "^y$", permissions: ["read"] }],
    [PATHS.policy, "get", { id: "lite-all" }],
    [PATHS.policy, "delete", { id: "lite-all" }],
    [PATHS.policy, "list", {}],
    [PATHS.recover, "", {}],
    [PATHS.restore, "", { id: 1, shard: Array(32).fill(1) }],
    [PATHS.bootstrapVerify, "", {}],
  ];
  for (const [path, action, body] of denied) await expect(nexus, LITE, path, action, body, 401, UNAUTHORIZED);
});

Deno.test("recover hands the recover role every shard, and any two rebuild the root key", async () => {
  const nexus = await createTestNexus();
  const body = await expect(nexus, RECOVER, PATHS.recover, "", {}, 200) as { shards: Record<string, number[]> };
  assert.deepEqual(Object.keys(body.shards).sort(), ["1", "2", "3"]);
  const shares = Object.entries(body.shards).map(([i, values]) => {
    assert.equal(values.length, 32);
    assert.ok(values.every((b) => Number.isInteger(b) && b >= 0 && b <= 255));
    return { index: Number(i), value: Uint8Array.from(values) };
  });
  for (const pair of [[0, 1], [0, 2], [1, 2]]) {
    assert.deepEqual(combineShares(pair.map((i) => shares[i]!)), testRootKey());
  }
  // Handing them out again gives the same shards (the polynomial is derived from the key).
  assert.deepEqual(await expect(nexus, RECOVER, PATHS.recover, "", {}, 200), body);
  // Other Pilot roles may not.
  await expect(nexus, SUPERUSER, PATHS.recover, "", {}, 401, UNAUTHORIZED);
  await expect(nexus, RESTORE, PATHS.recover, "", {}, 401, UNAUTHORIZED);
});

Deno.test("restore: the first shard is collected, the second restores the key and Nexus serves", async () => {
  const nexus = await createTestNexus({ store: await storeWithData(), withKey: false });
  const shares = splitSecret(testRootKey(), 3, 2);
  const send = (index: number, value: Uint8Array | number[]) => ({ id: index, shard: [...value] });
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 503, NOT_READY);
  await expect(nexus, RESTORE, PATHS.restore, "", send(3, shares[2]!.value), 200, {
    collected: 1,
    remaining: 1,
    restored: false,
  });
  // The same index again replaces the earlier shard; it does not count twice.
  await expect(nexus, RESTORE, PATHS.restore, "", send(3, shares[2]!.value), 200, {
    collected: 1,
    remaining: 1,
    restored: false,
  });
  await expect(nexus, RESTORE, PATHS.restore, "", send(1, shares[0]!.value), 200, {
    collected: 2,
    remaining: 0,
    restored: true,
  });
  // The data sealed before is readable: it is the same key.
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 200, { data: { pass: "p1" } });
  await expect(nexus, NO_CERT, "/ready", "", undefined, 200, READY, { method: "GET" });
  // Once restored, a shard is checked against the key held: one of it is
  // confirmed (nothing collected), any other is refused. Nothing changes.
  await expect(nexus, RESTORE, PATHS.restore, "", send(2, shares[1]!.value), 200, {
    collected: 0,
    remaining: 0,
    restored: true,
  });
  const notOfIt = { err: "api_bad_request", reason: "Nexus holds its root key and this shard is not one of it" };
  await expect(nexus, RESTORE, PATHS.restore, "", send(2, shares[0]!.value), 400, notOfIt);
  await expect(nexus, RESTORE, PATHS.restore, "", send(7, Array(32).fill(1)), 400, notOfIt);
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 200, { data: { pass: "p1" } });
  // Only the restore role may send shards.
  await expect(nexus, SUPERUSER, PATHS.restore, "", send(2, shares[1]!.value), 401, UNAUTHORIZED);
  await expect(nexus, RECOVER, PATHS.restore, "", send(2, shares[1]!.value), 401, UNAUTHORIZED);
});

/** The 400 for shards of another key, with its reason [ours]. */
const NOT_THIS_KEY = {
  err: "api_bad_request",
  reason: "the shards do not rebuild the root key of this Nexus's data; start again",
};

Deno.test("restore: a wrong shard set is refused with 400 and Nexus stays not ready", async () => {
  const nexus = await createTestNexus({ store: await storeWithData(), withKey: false });
  const otherKey = testRootKey().map((b, i) => i === 31 ? b ^ 1 : b);
  const wrong = splitSecret(otherKey, 3, 2);
  const right = splitSecret(testRootKey(), 3, 2);
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 1, shard: [...wrong[0]!.value] }, 200);
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 2, shard: [...wrong[1]!.value] }, 400, NOT_THIS_KEY);
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 503, NOT_READY);
  await expect(nexus, NO_CERT, "/ready", "", undefined, 503, undefined, { method: "GET" });
  // Mixing one right shard with one wrong one is just as wrong.
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 1, shard: [...right[0]!.value] }, 200);
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 2, shard: [...wrong[1]!.value] }, 400, NOT_THIS_KEY);
  // A shard that is not a scalar below the group order can never combine: 400 at once, never 500.
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 1, shard: Array(32).fill(255) }, 400, BAD_REQUEST);
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 2, shard: [...right[1]!.value] }, 200, {
    collected: 1,
    remaining: 1,
    restored: false,
  });
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 503, NOT_READY);
  // Malformed shard messages.
  for (
    const body of [
      { id: 0, shard: Array(32).fill(1) },
      { id: 1001, shard: Array(32).fill(1) }, // indices run 1..1000 (MAX_SHARES)
      { id: 1.5, shard: Array(32).fill(1) },
      { id: "1", shard: Array(32).fill(1) },
      { id: 1, shard: Array(31).fill(1) },
      { id: 1, shard: Array(32).fill(256) },
      { id: 1, shard: Array(32).fill(0) },
      { id: 1, shard: "AAAA" },
      { id: 1 },
    ]
  ) {
    await expect(nexus, RESTORE, PATHS.restore, "", body, 400, BAD_REQUEST);
  }
  // After all that, the right shards still work.
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 3, shard: [...right[2]!.value] }, 200, {
    collected: 2,
    remaining: 0,
    restored: true,
  });
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 200, { data: { pass: "p1" } });
});

Deno.test("bootstrap verify answers the SHA-256 of a text sealed under the root key", async () => {
  const nexus = await createTestNexus();
  const plaintext = new TextEncoder().encode("bootstrap proof 0123456789");
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
  const ciphertext = await encryptGcm(testRootKey(), nonce, plaintext, new Uint8Array(0));
  await expect(nexus, BOOTSTRAP, PATHS.bootstrapVerify, "", { nonce: b64(nonce), ciphertext: b64(ciphertext) }, 200, {
    hash: bytesToHex(sha256(plaintext)),
  });
  const otherKey = testRootKey().map((b) => b ^ 0x11);
  const foreign = await encryptGcm(otherKey, nonce, plaintext, new Uint8Array(0));
  for (
    const body of [
      { nonce: b64(nonce), ciphertext: b64(foreign) },
      { nonce: b64(nonce.subarray(0, 11)), ciphertext: b64(ciphertext) },
      { nonce: b64(nonce), ciphertext: b64(ciphertext.subarray(0, 10)) },
      { nonce: "***", ciphertext: b64(ciphertext) },
      { nonce: b64(nonce) },
    ]
  ) {
    await expect(nexus, BOOTSTRAP, PATHS.bootstrapVerify, "", body, 400, BAD_REQUEST);
  }
});

// ---------------------------------------------------------------------------
// Policies

Deno.test("reserved system paths need an anchored SPIFFE ID pattern and a full path match", async () => {
  const nexus = await createTestNexus();
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { k: "v" } }, 200);
  const list = () => nexus.call(WEB, PATHS.secrets, "list", {});

  await putPolicy(nexus, "wide", "spiffe://spike\\.ist/", ".*", ["list", "read"]);
  assert.equal((await list()).status, 401, "an unanchored ID pattern must not open the secret list");
  // ...though it does grant ordinary paths.
  await expect(nexus, WEB, PATHS.secrets, "get", { path: "app/db" }, 200);
  // Anchors that an alternation undoes are not anchors.
  await putPolicy(nexus, "alternation", `${WEB_ID}|spiffe://.*$`, ".*", ["list"]);
  assert.equal((await list()).status, 401, "'^a$|spiffe://.*$' is not anchored");
  await putPolicy(nexus, "super-wide", "spiffe://spike\\.ist/app/web", ".*", ["super"]);
  assert.equal((await list()).status, 401, "super does not lift the anchoring rule");
  // An anchored ID pattern, but a path pattern that only matches a prefix.
  await putPolicy(nexus, "prefix", WEB_ID, "^spike/system", ["list"]);
  assert.equal((await list()).status, 401, "the path pattern must match the reserved path in full");

  await putPolicy(nexus, "exact", WEB_ID, "^spike/system/secret$", ["list"]);
  assert.deepEqual((await list()).body, { keys: ["app/db"] });
  // The grant is for listing only; the ACL path is another reserved path.
  await expect(nexus, WEB, PATHS.policy, "list", {}, 401, UNAUTHORIZED);
  await expect(nexus, SUPERUSER, PATHS.policy, "delete", { id: "exact" }, 200, {});
  assert.equal((await list()).status, 401);
});

Deno.test("policies with bad regexes, text no store keeps as given, or ones the linear engine cannot run: 400", async () => {
  const nexus = await createTestNexus();
  const patterns = ["[", "(", "a**", "(?<n>a)\\k<n>", "(a)\\1", "(?=a)b", "(?!a)b", "a{2,1000}", "a\0b", "\ud800"];
  for (const pattern of patterns) {
    await putPolicy(nexus, "bad", pattern, "^app/", ["read"], 400);
    await putPolicy(nexus, "bad", WEB_ID, pattern, ["read"], 400);
  }
  await expect(nexus, SUPERUSER, PATHS.policy, "get", { id: "bad" }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.policy, "list", {}, 200, { policies: [] });
});

Deno.test("policy get and delete of a missing name → 404 api_not_found", async () => {
  const nexus = await createTestNexus();
  await expect(nexus, SUPERUSER, PATHS.policy, "get", { id: "missing" }, 404, NOT_FOUND);
  await expect(nexus, SUPERUSER, PATHS.policy, "delete", { id: "missing" }, 404, NOT_FOUND);
  await putPolicy(nexus, "once", WEB_ID, "^app/", ["read"]);
  await expect(nexus, SUPERUSER, PATHS.policy, "delete", { id: "once" }, 200, {});
  await expect(nexus, SUPERUSER, PATHS.policy, "delete", { id: "once" }, 404, NOT_FOUND);
});

Deno.test("ReDoS: catastrophic path and SPIFFE ID patterns are evaluated in linear time", async () => {
  // With a backtracking engine, `^(a+)+$` against 34 'a's and a mismatch
  // takes about 2^34 steps (minutes each): this test would hang.
  const nexus = await createTestNexus();
  const evil = "a".repeat(34) + "b";
  const fine = "a".repeat(34);
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: evil, values: { k: "v" } }, 200);
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: fine, values: { k: "w" } }, 200);
  await putPolicy(nexus, "redos", WEB_ID, "^(a+)+$", ["read"]);
  await expect(nexus, WEB, PATHS.secrets, "get", { path: evil }, 401, UNAUTHORIZED);
  await expect(nexus, WEB, PATHS.secrets, "get", { path: fine }, 200, { data: { k: "w" } });
  // The same against the caller's SPIFFE ID.
  await putPolicy(nexus, "redos-id", "^spiffe://spike\\.ist/(a+)+$", "^app/", ["read"]);
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { k: "v" } }, 200);
  await expect(nexus, peer(`${TD}/${evil}`), PATHS.secrets, "get", { path: "app/db" }, 401, UNAUTHORIZED);
  await expect(nexus, peer(`${TD}/${fine}`), PATHS.secrets, "get", { path: "app/db" }, 200, { data: { k: "v" } });
});

Deno.test("policy changes take effect on the very next call", async () => {
  const nexus = await createTestNexus();
  await expect(nexus, SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { k: "v" } }, 200);
  const get = () => nexus.call(WEB, PATHS.secrets, "get", { path: "app/db" });
  const put = () => nexus.call(WEB, PATHS.secrets, "", { path: "app/db", values: { k: "w" } });
  assert.equal((await get()).status, 401);
  await putPolicy(nexus, "web", WEB_ID, "^app/", ["read"]);
  assert.equal((await get()).status, 200);
  assert.equal((await put()).status, 401, "read does not imply write");
  await putPolicy(nexus, "web", WEB_ID, "^app/", ["read", "write"]);
  assert.equal((await put()).status, 200);
  await putPolicy(nexus, "web", WEB_ID, "^other/", ["read", "write"]);
  assert.equal((await get()).status, 401, "an updated path pattern applies at once");
  await putPolicy(nexus, "web", WEB_ID, "^app/", ["read"]);
  assert.equal((await get()).status, 200);
  await expect(nexus, SUPERUSER, PATHS.policy, "delete", { id: "web" }, 200);
  assert.equal((await get()).status, 401);
});

// ---------------------------------------------------------------------------
// Cipher API

const OCTETS = { contentType: "application/octet-stream" };

Deno.test("cipher: octet-stream and JSON round trips; JSON mode returns the nonce; the formats agree", async () => {
  const nexus = await createTestNexus();
  for (const size of [0, 1, 100, 4096]) {
    const plaintext = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 5) & 0xff);
    const sealed = await expect(nexus, SUPERUSER, PATHS.encrypt, "", plaintext, 200, undefined, OCTETS) as Uint8Array;
    assert.equal(sealed[0], 1, "format version byte");
    assert.equal(sealed.length, 1 + 12 + size + 16);
    await expect(nexus, SUPERUSER, PATHS.decrypt, "", sealed, 200, plaintext, OCTETS);

    const envelope = await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: b64(plaintext) }, 200) as {
      version: number;
      nonce: string;
      ciphertext: string;
    };
    assert.equal(envelope.version, 1);
    assert.equal(unb64(envelope.nonce).length, 12);
    assert.equal(unb64(envelope.ciphertext).length, size + 16);
    await expect(nexus, SUPERUSER, PATHS.decrypt, "", envelope, 200, { plaintext: b64(plaintext) });
    // SPIKE clients send no version field; `algorithm` may be named.
    await expect(nexus, SUPERUSER, PATHS.decrypt, "", { nonce: envelope.nonce, ciphertext: envelope.ciphertext }, 200);
    // A JSON envelope is the octet format taken apart.
    const joined = new Uint8Array([1, ...unb64(envelope.nonce), ...unb64(envelope.ciphertext)]);
    await expect(nexus, SUPERUSER, PATHS.decrypt, "", joined, 200, plaintext, OCTETS);
  }
  // Every spelling of AES-GCM SPIKE's pilot can send; another algorithm is refused, not ignored.
  for (const algorithm of ["AES-GCM", "AES-256-GCM", "aes-256-gcm", "Aes-Gcm", "AES_256_GCM", "", null]) {
    const sealed = await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: btoa("x"), algorithm }, 200);
    await expect(nexus, SUPERUSER, PATHS.decrypt, "", { ...sealed as object, algorithm }, 200, {
      plaintext: btoa("x"),
    });
  }
  for (const algorithm of ["DES", "AES-128-GCM", "ChaCha20-Poly1305", "AES-256-CBC", 5]) {
    await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: btoa("x"), algorithm }, 400, BAD_REQUEST);
  }
  await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: "not base64!" }, 400, BAD_REQUEST);
});

Deno.test("cipher: tampered ciphertext → 400; over maxCiphertextSize → 413", async () => {
  const nexus = await createTestNexus({ settings: { maxCiphertextSize: 1024 } });
  const plaintext = new TextEncoder().encode("attack at dawn");
  const sealed = await expect(nexus, SUPERUSER, PATHS.encrypt, "", plaintext, 200, undefined, OCTETS) as Uint8Array;
  for (let at = 0; at < sealed.length; at += 5) {
    const tampered = sealed.slice();
    tampered[at]! ^= 0x01;
    await expect(nexus, SUPERUSER, PATHS.decrypt, "", tampered, 400, BAD_REQUEST, OCTETS);
  }
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", sealed.subarray(0, 20), 400, BAD_REQUEST, OCTETS);
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", new Uint8Array(0), 400, BAD_REQUEST, OCTETS);

  const envelope = await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: b64(plaintext) }, 200) as {
    nonce: string;
    ciphertext: string;
  };
  const ct = unb64(envelope.ciphertext);
  ct[0]! ^= 0x80;
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", { ...envelope, ciphertext: b64(ct) }, 400, BAD_REQUEST);
  const nonce = unb64(envelope.nonce);
  nonce[11]! ^= 0x01;
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", { ...envelope, nonce: b64(nonce) }, 400, BAD_REQUEST);
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", { ...envelope, version: 2 }, 400, BAD_REQUEST);
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", { ...envelope, ciphertext: b64(new Uint8Array(5)) }, 400);

  await expect(nexus, SUPERUSER, PATHS.encrypt, "", new Uint8Array(1024), 200, undefined, OCTETS);
  await expect(nexus, SUPERUSER, PATHS.encrypt, "", new Uint8Array(1025), 413, TOO_LARGE, OCTETS);
  await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: b64(new Uint8Array(1024)) }, 200);
  await expect(nexus, SUPERUSER, PATHS.encrypt, "", { plaintext: b64(new Uint8Array(1025)) }, 413, TOO_LARGE);
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", new Uint8Array(2000), 413, TOO_LARGE, OCTETS);
  const bigCt = { nonce: b64(new Uint8Array(12)), ciphertext: b64(new Uint8Array(2000)) };
  await expect(nexus, SUPERUSER, PATHS.decrypt, "", bigCt, 413, TOO_LARGE);
});

// ---------------------------------------------------------------------------
// No input makes the app fail

const FIELD_NAMES = [
  "path",
  "values",
  "version",
  "versions",
  "name",
  "id",
  "spiffeidPattern",
  "pathPattern",
  "permissions",
  "plaintext",
  "nonce",
  "ciphertext",
  "algorithm",
  "shard",
  // Key-value extensions [ours].
  "cas",
  "ttl",
  "expiresAt",
  "versionTtl",
  "versionExpiresAt",
  "customMetadata",
  "prefix",
  "limit",
  "cursor",
  "from",
  "to",
  "paths",
] as const;

const ROUTES: ReadonlyArray<readonly [string, string]> = [
  [PATHS.secrets, ""],
  [PATHS.secrets, "get"],
  [PATHS.secrets, "delete"],
  [PATHS.secrets, "undelete"],
  [PATHS.secrets, "list"],
  [PATHS.secretsMetadata, "get"],
  [PATHS.secrets, "patch"],
  [PATHS.secrets, "destroy"],
  [PATHS.secrets, "move"],
  [PATHS.secrets, "getMany"],
  [PATHS.secretsMetadata, ""],
  [PATHS.secretsMetadata, "delete"],
  [PATHS.policy, ""],
  [PATHS.policy, "get"],
  [PATHS.policy, "delete"],
  [PATHS.policy, "list"],
  [PATHS.encrypt, ""],
  [PATHS.decrypt, ""],
  [PATHS.recover, ""],
  [PATHS.restore, ""],
  [PATHS.bootstrapVerify, ""],
  ["/v1/store/secrets", "bogus"],
  ["/v1/unknown", ""],
];

const CALLERS: readonly PeerResult[] = [SUPERUSER, WEB, LITE, RECOVER, RESTORE, BOOTSTRAP, NO_CERT];

const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom("app/db", "^app/", ".*", "(a)\\1", "[", "read", "AAAAAAAAAAAAAAAA", "", "spike/system/secret"),
  fc.constantFrom("24h", "1s", "2099-01-01T00:00:00Z", "2001-01-01T00:00:00Z", "YXBwL2Ri", ["app/db", "app/x"]),
  fc.integer({ min: -5, max: 2 ** 32 }),
  fc.array(fc.integer({ min: -2, max: 300 }), { minLength: 30, maxLength: 33 }),
  fc.array(fc.constantFrom("read", "write", "list", "execute", "super", "nope"), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxKeys: 3 }),
);

const structuredBody = fc.dictionary(fc.constantFrom(...FIELD_NAMES), fieldValue, { maxKeys: 5 });

const anyBody = fc.oneof(
  { weight: 5, arbitrary: structuredBody.map((b) => new TextEncoder().encode(JSON.stringify(b))) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v) ?? "")) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => new TextEncoder().encode(s)) },
);

Deno.test("property: random bodies to random routes never produce a 500", async () => {
  const ready = await createTestNexus();
  const notReady = await createTestNexus({ withKey: false });
  await putPolicy(ready, "web", WEB_ID, ".*", ["read", "write", "list", "execute"]);
  const allowed = new Set([200, 400, 401, 404, 409, 413, 503]);
  await fc.assert(
    fc.asyncProperty(
      fc.boolean(),
      fc.constantFrom(...ROUTES),
      fc.constantFrom(...CALLERS),
      fc.constantFrom("application/json", "application/octet-stream", "text/plain"),
      fc.constantFrom("POST", "POST", "POST", "GET", "PUT"),
      anyBody,
      async (withKey, [path, action], who, contentType, method, body) => {
        const nexus = withKey ? ready : notReady;
        const response = await nexus.call(who, path, action, body, { method, contentType });
        assert.ok(allowed.has(response.status), `status ${response.status} for ${method} ${path}?action=${action}`);
        if (response.status !== 200) {
          const err = (response.body as { err?: unknown }).err;
          assert.equal(typeof err, "string", `error answers carry an err code: ${JSON.stringify(response.body)}`);
        }
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("key names that collide with Object.prototype members are stored like any other", async () => {
  const nexus = await createTestNexus();
  const raw = '{"path":"app/proto","values":{"__proto__":"a","constructor":"b","toString":"c","k":"d"}}';
  await expect(nexus, SUPERUSER, PATHS.secrets, "", new TextEncoder().encode(raw), 200);
  const got = await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/proto" }, 200) as {
    data: Record<string, string>;
  };
  assert.deepEqual(Object.entries(got.data).sort(), [["__proto__", "a"], ["constructor", "b"], ["k", "d"], [
    "toString",
    "c",
  ]]);
});

Deno.test("restore: a shard index beyond the configured count (an earlier, larger split) is accepted", async () => {
  const nexus = await createTestNexus({ store: await storeWithData(), withKey: false });
  // The same key split 5 ways: share 5 is a point of the same polynomial.
  const five = splitSecret(testRootKey(), 5, 2);
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 5, shard: [...five[4]!.value] }, 200, {
    collected: 1,
    remaining: 1,
    restored: false,
  });
  await expect(nexus, RESTORE, PATHS.restore, "", { id: 1, shard: [...five[0]!.value] }, 200, {
    collected: 2,
    remaining: 0,
    restored: true,
  });
  await expect(nexus, SUPERUSER, PATHS.secrets, "get", { path: "app/db" }, 200, { data: { pass: "p1" } });
});
