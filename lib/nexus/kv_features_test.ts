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
import { createTestNexus, peer, type TestNexus } from "./testing.ts";

const TD = "spiffe://spike.ist";
const SUPERUSER = peer(`${TD}/spike/pilot/role/superuser`);
const WEB = peer(`${TD}/app/web`);
const WEB_ID = "^spiffe://spike\\.ist/app/web$";

const CONFLICT = { err: "api_conflict" };
const BAD_REQUEST = { err: "api_bad_request" };
const UNAUTHORIZED = { err: "access_unauthorized" };

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
