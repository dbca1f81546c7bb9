import assert from "node:assert/strict";
import type { PolicyRecord } from "../store/types.ts";
import { describesSpiffeIds, StoredPolicyFilter } from "./stored_policy_filter.ts";

function policy(name: string, spiffeIdPattern: string): PolicyRecord {
  const at = new Date(0);
  return { name, spiffeIdPattern, pathPattern: ".*", permissions: ["read"], createdAt: at, updatedAt: at };
}

Deno.test("describesSpiffeIds: patterns that pin the scheme pass, those that admit any text do not", async () => {
  for (const ok of ["^spiffe://acme\\.org/web$", "^spiffe://.*", "^(spiffe://a/x|spiffe://b/y)$", "^spiffe://Upper$"]) {
    assert.equal(await describesSpiffeIds(ok), true, ok);
  }
  for (const bad of [".*", "", "web$", "^x$|^spiffe://a$", "acme\\.org", "^.*$"]) {
    assert.equal(await describesSpiffeIds(bad), false, bad);
  }
});

Deno.test("stored policy filter: keeps what describes SPIFFE IDs, names the rest, remembers verdicts per source", async () => {
  const filter = new StoredPolicyFilter();
  const first = await filter.obeyed([policy("a", "^spiffe://x/a$"), policy("b", ".*"), policy("c", ".*")]);
  assert.deepEqual(first.kept.map((p) => p.name), ["a"]);
  assert.deepEqual(first.refused, ["b", "c"]);
  const second = await filter.obeyed([policy("c", ".*"), policy("d", "^spiffe://x/d$")]);
  assert.deepEqual(second.kept.map((p) => p.name), ["d"]);
  assert.deepEqual(second.refused, ["c"]);
});
