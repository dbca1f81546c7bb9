import assert from "node:assert/strict";
import { BadRequestError, InternalServerError, NotFoundError } from "./errors.ts";
import type { PolicyView } from "./nexus_client.ts";
import { deletePolicyByName, getPolicyByName, type PolicyCalls, policyExists } from "./policy_by_name.ts";

const OPS: PolicyView = {
  id: "ops",
  name: "ops",
  spiffiedPattern: "^spiffe://spike\\.ist/app/ops$",
  pathPattern: "^ops/",
  permissions: ["read"],
  createdAt: "2026-01-01T00:00:00Z",
  updatedAt: "2026-01-01T00:00:00Z",
};

/**
 * A Nexus holding `names`, answering a missing name the way `missing` says:
 * 404 as ours does, or 500 as SPIKE v0.8.2's does on SQLite. `broken`
 * makes every get/delete a 500 (a real server failure), `listFails` the list too.
 */
function nexusHolding(
  names: string[],
  missing: 404 | 500,
  options: { broken?: boolean; listFails?: boolean } = {},
): PolicyCalls & { calls: string[] } {
  const calls: string[] = [];
  const answer = (name: string) => {
    if (options.broken) throw new InternalServerError(500, "api_internal_error");
    if (names.includes(name)) return;
    throw missing === 404
      ? new NotFoundError(404, "api_not_found")
      : new InternalServerError(500, "api_internal_error");
  };
  return {
    calls,
    getPolicy: (name) => {
      calls.push(`get ${name}`);
      answer(name);
      return Promise.resolve({ ...OPS, id: name, name });
    },
    deletePolicy: (name) => {
      calls.push(`delete ${name}`);
      answer(name);
      return Promise.resolve();
    },
    listPolicies: () => {
      calls.push("list");
      if (options.listFails) return Promise.reject(new InternalServerError(500, "api_internal_error"));
      return Promise.resolve(names.map((name) => ({ id: crypto.randomUUID(), name })));
    },
  };
}

Deno.test("policy by name: a name that exists costs one call on either Nexus", async () => {
  for (const missing of [404, 500] as const) {
    const nexus = nexusHolding(["ops"], missing);
    assert.equal((await getPolicyByName(nexus, "ops")).name, "ops");
    await deletePolicyByName(nexus, "ops");
    assert.equal(await policyExists(nexus, "ops"), true);
    assert.deepEqual(nexus.calls, ["get ops", "delete ops", "get ops"]);
  }
});

Deno.test("policy by name: a missing name is NotFoundError whether Nexus says 404 or 500", async () => {
  for (const missing of [404, 500] as const) {
    const nexus = nexusHolding(["ops"], missing);
    await assert.rejects(getPolicyByName(nexus, "nope"), NotFoundError, `get, ${missing}`);
    await assert.rejects(deletePolicyByName(nexus, "nope"), NotFoundError, `delete, ${missing}`);
    assert.equal(await policyExists(nexus, "nope"), false, `exists, ${missing}`);
    // Only a 500 makes it list.
    assert.equal(nexus.calls.filter((call) => call === "list").length, missing === 500 ? 3 : 0);
  }
});

Deno.test("policy by name: a 500 for a name that is listed, or when the list fails too, stays a 500", async () => {
  const broken = nexusHolding(["ops"], 404, { broken: true });
  await assert.rejects(getPolicyByName(broken, "ops"), InternalServerError);
  await assert.rejects(deletePolicyByName(broken, "ops"), InternalServerError);
  await assert.rejects(policyExists(broken, "ops"), InternalServerError);
  const blind = nexusHolding([], 500, { listFails: true });
  await assert.rejects(getPolicyByName(blind, "nope"), InternalServerError);
  await assert.rejects(policyExists(blind, "nope"), InternalServerError);
});

Deno.test("policy by name: other errors pass through without listing", async () => {
  const nexus: PolicyCalls & { listed: number } = {
    listed: 0,
    getPolicy: () => Promise.reject(new BadRequestError(400, "api_bad_request")),
    deletePolicy: () => Promise.reject(new BadRequestError(400, "api_bad_request")),
    listPolicies() {
      this.listed++;
      return Promise.resolve([]);
    },
  };
  await assert.rejects(getPolicyByName(nexus, "bad name"), BadRequestError);
  await assert.rejects(deletePolicyByName(nexus, "bad name"), BadRequestError);
  assert.equal(nexus.listed, 0);
});
