/**
 * Route × identity matrix: every Nexus route called by every kind of
 * caller, asserting the exact status and body of each cell.
 */
import assert from "node:assert/strict";
import { encryptGcm } from "../crypto/aead.ts";
import { deriveKey } from "../crypto/kdf.ts";
import { PATHS } from "../api/paths.ts";
import { createTestNexus, deterministicRandom, FIXED_TIME, NO_CERT, peer, type TestNexus } from "./testing.ts";
import type { PeerResult } from "./peer.ts";
import { testRootKey } from "./testing.ts";

const TD = "spiffe://spike.ist";
const SUPERUSER = peer(`${TD}/spike/pilot/role/superuser`);
const WEB = peer(`${TD}/app/web`);
const OTHER = peer(`${TD}/app/other`);
const KEEPER = peer(`${TD}/spike/keeper`);
const T = FIXED_TIME.toISOString();

/** Seeds one secret and the policies that let `app/web` do everything. */
async function seeded(): Promise<TestNexus> {
  const nexus = await createTestNexus();
  const put = await nexus.call(SUPERUSER, PATHS.secrets, "", { path: "app/db", values: { user: "u", pass: "p" } });
  assert.equal(put.status, 200);
  const web = "^spiffe://spike\\.ist/app/web$";
  for (
    const [name, pathPattern, permissions] of [
      ["web", "^app/", ["read", "write"]],
      ["web-list", "^spike/system/secret$", ["list"]],
      ["web-acl", "^spike/system/acl$", ["read", "write", "list"]],
      ["web-cipher", "^spike/system/cipher/exec$", ["execute"]],
    ] as const
  ) {
    const r = await nexus.call(SUPERUSER, PATHS.policy, "", {
      name,
      spiffeidPattern: web,
      pathPattern,
      permissions,
    });
    assert.equal(r.status, 200, name);
  }
  return nexus;
}

/** The expected JSON-mode encryption of "hi" in a fresh seeded fixture. */
async function expectedEnvelope(): Promise<Record<string, unknown>> {
  const random = deterministicRandom();
  random(12 * 6); // key check, the seeded secret and the four sealed policies each drew a 12-byte nonce
  const nonce = random(12);
  const key = deriveKey(testRootKey(), "cipher");
  const ct = await encryptGcm(key, nonce, new TextEncoder().encode("hi"), new TextEncoder().encode("spike/v1/cipher"));
  return { version: 1, nonce: btoa(String.fromCharCode(...nonce)), ciphertext: btoa(String.fromCharCode(...ct)) };
}

interface Cell {
  path: string;
  action: string;
  body: unknown;
  ok: () => Promise<unknown>;
}

const POLICY_WEB_VIEW = {
  id: "web",
  name: "web",
  spiffiedPattern: "^spiffe://spike\\.ist/app/web$",
  pathPattern: "^app/",
  permissions: ["read", "write"],
  createdAt: T,
  updatedAt: T,
};

const ROUTES: Record<string, Cell> = {
  "secret put": {
    path: PATHS.secrets,
    action: "",
    body: { path: "app/db", values: { user: "v" } },
    ok: () => Promise.resolve({}),
  },
  "secret get": {
    path: PATHS.secrets,
    action: "get",
    body: { path: "app/db" },
    ok: () => Promise.resolve({ data: { user: "u", pass: "p" } }),
  },
  "secret delete": {
    path: PATHS.secrets,
    action: "delete",
    body: { path: "app/db", versions: [] },
    ok: () => Promise.resolve({}),
  },
  "secret undelete": {
    path: PATHS.secrets,
    action: "undelete",
    body: { path: "app/db", versions: [1] },
    ok: () => Promise.resolve({}),
  },
  "secret list": { path: PATHS.secrets, action: "list", body: {}, ok: () => Promise.resolve({ keys: ["app/db"] }) },
  "secret metadata": {
    path: PATHS.secretsMetadata,
    action: "get",
    body: { path: "app/db" },
    ok: () =>
      Promise.resolve({
        versions: { "1": { createdTime: T, version: 1, deletedTime: null } },
        metadata: { currentVersion: 1, oldestVersion: 1, createdTime: T, updatedTime: T, maxVersions: 10 },
      }),
  },
  "policy put": {
    path: PATHS.policy,
    action: "",
    body: { name: "new", spiffeidPattern: "^spiffe://spike\\.ist/x$", pathPattern: "^y$", permissions: ["read"] },
    ok: () => Promise.resolve({ id: "new" }),
  },
  "policy get": { path: PATHS.policy, action: "get", body: { id: "web" }, ok: () => Promise.resolve(POLICY_WEB_VIEW) },
  "policy delete": { path: PATHS.policy, action: "delete", body: { id: "web" }, ok: () => Promise.resolve({}) },
  "policy list": {
    path: PATHS.policy,
    action: "list",
    body: {},
    ok: () =>
      Promise.resolve({
        policies: ["web", "web-acl", "web-cipher", "web-list"].map((n) => ({ id: n, name: n })),
      }),
  },
  "cipher encrypt": { path: PATHS.encrypt, action: "", body: { plaintext: btoa("hi") }, ok: expectedEnvelope },
  "cipher decrypt": {
    path: PATHS.decrypt,
    action: "",
    body: null, // filled per cell with a real envelope
    ok: () => Promise.resolve({ plaintext: btoa("hi") }),
  },
  "operator recover": { path: PATHS.recover, action: "", body: {}, ok: () => Promise.resolve(undefined) },
  "operator restore": {
    path: PATHS.restore,
    action: "",
    body: { id: 1, shard: Array(32).fill(1) },
    ok: () => Promise.resolve(undefined),
  },
  "bootstrap verify": {
    path: PATHS.bootstrapVerify,
    action: "",
    body: { nonce: btoa("abcdefghijkl"), ciphertext: btoa("x".repeat(20)) },
    ok: () => Promise.resolve(undefined),
  },
};

const UNAUTHORIZED = { err: "access_unauthorized" };
const POLICY_ROUTES = Object.keys(ROUTES).filter((r) => !r.startsWith("operator") && !r.startsWith("bootstrap"));

const CALLERS: Record<string, { peer: PeerResult; allowed: readonly string[] }> = {
  superuser: { peer: SUPERUSER, allowed: POLICY_ROUTES },
  "workload with policy": { peer: WEB, allowed: POLICY_ROUTES },
  "workload without policy": { peer: OTHER, allowed: [] },
  keeper: { peer: KEEPER, allowed: [] },
  "no certificate": { peer: NO_CERT, allowed: [] },
};

for (const [callerName, caller] of Object.entries(CALLERS)) {
  for (const [routeName, route] of Object.entries(ROUTES)) {
    const allowed = caller.allowed.includes(routeName);
    Deno.test(`${routeName} as ${callerName} → ${allowed ? 200 : 401}`, async () => {
      const nexus = await seeded();
      let body = route.body;
      if (routeName === "cipher decrypt") {
        const enc = await nexus.call(SUPERUSER, PATHS.encrypt, "", { plaintext: btoa("hi") });
        body = enc.body;
      }
      if (routeName === "secret undelete") {
        // Something to restore: undelete of a live version is a 404.
        const deleted = await nexus.call(SUPERUSER, PATHS.secrets, "delete", { path: "app/db", versions: [1] });
        assert.equal(deleted.status, 200);
      }
      const response = await nexus.call(caller.peer, route.path, route.action, body);
      if (!allowed) {
        assert.equal(response.status, 401);
        assert.deepEqual(response.body, UNAUTHORIZED);
        return;
      }
      assert.equal(response.status, 200, JSON.stringify(response.body));
      assert.deepEqual(response.body, await route.ok());
      assert.equal(response.headers.get("cache-control"), "no-store, no-cache, must-revalidate, private");
      assert.equal(response.headers.get("pragma"), "no-cache");
      assert.equal(response.headers.get("expires"), "0");
    });
  }
}
