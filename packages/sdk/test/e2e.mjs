/**
 * Drives the built package the way a service would, against a real Nexus:
 * every call of the SDK, its typed errors, and a watch seeing new versions.
 * `tests/sdk_package_test.ts` runs it with Node (identity from SVID files,
 * then from a Workload API socket) and with Deno; it prints `sdk e2e: ok`
 * and exits 0 only when every check passed.
 *
 * Environment:
 * - `SPIKE_NEXUS_API_URL` and `SPIKE_SVID_DIR` or `SPIFFE_ENDPOINT_SOCKET`:
 *   the workload `spiffe://spike.ist/app/web`, allowed `read` and `write`
 *   on `^app/` by the test's policy.
 * - `TEST_ADMIN_SVID_DIR`: SVID files of the Pilot superuser.
 * - `TEST_RUN`: a word unique to this run, so runs share one Nexus.
 * - `TEST_DB_USER`, `TEST_DB_PASS`: what the test stored at `app/db`.
 */
import assert from "node:assert/strict";
import process from "node:process";
import {
  ApiCallError,
  BadRequestError,
  ConflictError,
  connect,
  IdentitySourceError,
  MtlsError,
  NotFoundError,
  UnauthorizedError,
} from "@spike/sdk";

const env = process.env;
const run = env.TEST_RUN;
assert.ok(run, "TEST_RUN is set");

/** Asserts that `promise` rejects with an instance of `Class` (and of ApiCallError) with `status`. */
async function rejectsWith(promise, Class, status) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof Class, `expected ${Class.name}, got ${error?.name}: ${error?.message}`);
    if (status !== undefined) {
      assert.ok(error instanceof ApiCallError);
      assert.equal(error.status, status);
    }
    return true;
  });
}

/** Resolves once `check()` holds; polls every 50 ms, fails after 15 s. */
async function until(check, what) {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const web = await connect({ env });
const admin = await connect({ env, svidDir: env.TEST_ADMIN_SVID_DIR });
try {
  console.log(`connected as ${web.spiffeId()}`);
  assert.equal(web.spiffeId(), "spiffe://spike.ist/app/web");

  // Reading what the policy grants, and the typed errors of what it does not.
  assert.deepEqual(await web.getSecret("app/db"), { user: env.TEST_DB_USER, pass: env.TEST_DB_PASS });
  assert.equal(await web.getSecretValue("app/db", "user"), env.TEST_DB_USER);
  await rejectsWith(web.getSecretValue("app/db", "nope"), NotFoundError, 404);
  await rejectsWith(web.getSecret(`app/${run}/missing`), NotFoundError, 404);
  await rejectsWith(web.getSecret("other/db"), UnauthorizedError, 401);
  await rejectsWith(web.listSecrets(), UnauthorizedError, 401);
  await rejectsWith(web.encrypt(new Uint8Array([1])), UnauthorizedError, 401);
  await rejectsWith(
    web.putPolicy({ name: `p-${run}`, spiffeIdPattern: "^x$", pathPattern: "^x$", permissions: ["read"] }),
    UnauthorizedError,
    401,
  );
  await assert.rejects(web.getSecret("other/db"), (e) => e.code === "access_unauthorized");
  console.log("reads and denials: ok");

  // Versions: put, metadata, delete, undelete.
  const cache = `app/${run}/cache`;
  await web.putSecret(cache, { a: "1" });
  await web.putSecret(cache, { a: "2" });
  let meta = await web.getMetadata(cache);
  assert.equal(meta.metadata.currentVersion, 2);
  assert.deepEqual(Object.keys(meta.versions).sort(), ["1", "2"]);
  assert.deepEqual(await web.getSecret(cache, { version: 1 }), { a: "1" });
  await web.deleteSecret(cache);
  assert.equal((await web.getMetadata(cache)).metadata.currentVersion, 1);
  await rejectsWith(web.getSecret(cache, { version: 2 }), NotFoundError, 404);
  await web.undeleteSecret(cache, [2]);
  meta = await web.getMetadata(cache);
  assert.equal(meta.metadata.currentVersion, 2);
  await web.deleteSecret(cache, [1]);
  await rejectsWith(web.getSecret(cache, { version: 1 }), NotFoundError, 404);
  await web.undeleteSecret(cache, [1]);
  assert.deepEqual(await web.getSecret(cache, { version: 1 }), { a: "1" });
  await rejectsWith(admin.putSecret("has space", { a: "b" }), BadRequestError, 400);
  const paths = await admin.listSecrets();
  assert.ok(paths.includes("app/db") && paths.includes(cache), `list: ${paths.join(",")}`);
  console.log("versions: ok");

  // Key-value features [ours]: check-and-set.
  const kv = `app/${run}/kv`;
  await web.putSecret(kv, { a: "1" }, { cas: 0 });
  await rejectsWith(web.putSecret(kv, { a: "x" }, { cas: 0 }), ConflictError, 409);
  await web.putSecret(kv, { a: "2" }, { cas: 1 });
  await Promise.all([web.patchSecret(kv, { b: "3" }), web.patchSecret(kv, { c: "4", a: null })]);
  assert.deepEqual(await web.getSecret(kv), { b: "3", c: "4" });
  await rejectsWith(web.patchSecret(`app/${run}/none`, { a: "b" }), NotFoundError, 404);
  await web.destroySecret(kv, [1]);
  assert.equal((await web.getMetadata(kv)).versions["1"].destroyed, true);
  await rejectsWith(web.getSecret(kv, { version: 1 }), NotFoundError, 404);
  await web.putMetadata(kv, { customMetadata: { owner: run }, ttl: "1h" });
  assert.ok(Date.parse((await web.getMetadata(kv)).metadata.expiresAt) > Date.now());
  const brief = `app/${run}/brief`;
  await web.putSecret(brief, { a: "1" }, { ttl: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await rejectsWith(web.getSecret(brief), NotFoundError, 404);
  assert.deepEqual((await web.getMetadata(kv)).metadata.customMetadata, { owner: run });
  const moved = `app/${run}/moved`;
  await web.moveSecret(kv, moved);
  await rejectsWith(web.getSecret(kv), NotFoundError, 404);
  assert.deepEqual((await web.getMetadata(moved)).metadata.customMetadata, { owner: run });
  await web.putSecret(kv, { a: "again" });
  await rejectsWith(web.moveSecret(moved, kv), ConflictError, 409);
  await web.moveSecret(moved, `app/${run}/kv2`);
  const doomed = `app/${run}/doomed`;
  await web.putSecret(doomed, { a: "1" });
  await web.deleteMetadata(doomed);
  await rejectsWith(web.getMetadata(doomed), NotFoundError, 404);
  const mine = [];
  for await (const path of web.iterateSecrets(`app/${run}/`, { pageSize: 2 })) mine.push(path);
  assert.ok(mine.includes(kv) && mine.every((p) => p.startsWith(`app/${run}/`)), `iterateSecrets: ${mine.join(",")}`);
  const page = await web.listSecretsPage({ prefix: "app/", limit: 1 });
  assert.equal(page.keys.length, 1);
  assert.equal(typeof page.cursor, "string");
  const batch = await web.getSecrets(["app/db", `app/${run}/nothing`, "other/db"]);
  assert.deepEqual(batch["app/db"], { data: { user: env.TEST_DB_USER, pass: env.TEST_DB_PASS } });
  assert.deepEqual(batch[`app/${run}/nothing`], { err: "api_not_found" });
  assert.deepEqual(batch["other/db"], { err: "access_unauthorized" });
  console.log("key-value features: ok");

  // Policies.
  const name = `tmp-${run}`;
  const spec = {
    name,
    spiffeIdPattern: "^spiffe://spike\\.ist/app/other$",
    pathPattern: `^tmp/${run}/`,
    permissions: ["read", "list"],
  };
  assert.equal(typeof await admin.putPolicy(spec), "string");
  const policy = await admin.getPolicy(name);
  assert.equal(policy.name, name);
  assert.equal(policy.spiffeIdPattern, spec.spiffeIdPattern);
  assert.equal(policy.pathPattern, spec.pathPattern);
  assert.deepEqual([...policy.permissions].sort(), ["list", "read"]);
  assert.ok(!Number.isNaN(Date.parse(policy.createdAt)));
  await admin.putPolicy({ ...spec, permissions: ["read"] });
  assert.deepEqual((await admin.getPolicy(name)).permissions, ["read"], "putPolicy replaces by name");
  const listed = await admin.listPolicies({ pathPattern: spec.pathPattern });
  assert.deepEqual(listed.map((p) => p.name), [name]);
  assert.ok((await admin.listPolicies()).some((p) => p.name === name));
  await admin.deletePolicy(name);
  await rejectsWith(admin.getPolicy(name), NotFoundError, 404);
  await rejectsWith(admin.deletePolicy(name), NotFoundError, 404);
  console.log("policies: ok");

  // Cipher API.
  const plaintext = new TextEncoder().encode(`hello ${run}`);
  const sealed = await admin.encrypt(plaintext);
  assert.ok(sealed instanceof Uint8Array && sealed.length > plaintext.length);
  assert.deepEqual(await admin.decrypt(sealed), plaintext);
  console.log("cipher: ok");

  // A watch: the current version first, then each new one; errors reported, not thrown.
  const watched = `app/${run}/rotating`;
  const seen = [];
  const errors = [];
  const watch = web.watchSecret(watched, (values, info) => {
    seen.push({ version: info.version, values });
  }, { intervalMs: 100, maxBackoffMs: 200, onError: (error) => errors.push(error) });
  await until(() => errors.length > 0, "the watch to report the missing secret");
  assert.ok(errors[0] instanceof NotFoundError, `watch error: ${errors[0]}`);
  await admin.putSecret(watched, { token: "one" });
  await until(() => seen.length === 1, "the first version");
  await admin.putSecret(watched, { token: "two" });
  await until(() => seen.length === 2, "the second version");
  assert.deepEqual(seen, [{ version: 1, values: { token: "one" } }, { version: 2, values: { token: "two" } }]);
  await watch.stop();
  console.log("watch: ok");

  // Failures before any answer: a missing SVID directory, a closed port.
  await rejectsWith(connect({ svidDir: `/nonexistent/${run}` }), IdentitySourceError);
  const nowhere = await connect({ env, nexusUrl: "https://127.0.0.1:1", attempts: 1 });
  try {
    await rejectsWith(nowhere.getSecret("app/db"), MtlsError);
  } finally {
    await nowhere.close();
  }
  console.log("connection errors: ok");
} finally {
  await web.close();
  await admin.close();
}
console.log("sdk e2e: ok");
