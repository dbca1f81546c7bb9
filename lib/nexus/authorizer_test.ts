import assert from "node:assert/strict";
import type { PolicyRecord } from "../store/types.ts";
import { isAllowed, SECRET_LIST_PATH } from "./authorizer.ts";
import { CompiledPolicySet } from "./compiled_policy_set.ts";
import { isAnchored } from "./pattern_shape.ts";

Deno.test("isAnchored: every top-level alternative must pin both ends", () => {
  const anchored = ["^a$", "^spiffe://spike\\.ist/app/web$", "^a$|^b$", "^(a|.*)$", "^a[|]b$", "^a\\|b$", "^a\\\\$"];
  const unanchored = [".*", "^a", "a$", "^a$|.*$", "^a$|b$", "^a\\$", "(^a$)", "^a$|", "^a[$]", "^a$|^b"];
  for (const source of anchored) assert.equal(isAnchored(source), true, source);
  for (const source of unanchored) assert.equal(isAnchored(source), false, source);
});

Deno.test("isAllowed: reserved paths ignore policies with unanchored ID patterns", () => {
  const caller = { spiffeId: "spiffe://spike.ist/app/web", superuser: false };
  const policy = (spiffeIdPattern: string, pathPattern: string): PolicyRecord => ({
    name: "p",
    spiffeIdPattern,
    pathPattern,
    permissions: ["list"],
    createdAt: new Date(0),
    updatedAt: new Date(0),
  });
  const allowed = (p: PolicyRecord, path = SECRET_LIST_PATH) =>
    isAllowed(caller, path, ["list"], new CompiledPolicySet([p]));
  assert.equal(allowed(policy(".*", ".*")), false);
  assert.equal(allowed(policy("^spiffe://spike\\.ist/app/web$|.*$", ".*")), false);
  assert.equal(allowed(policy("^spiffe://spike\\.ist/app/web$", "^spike/system")), false);
  assert.equal(allowed(policy("^spiffe://spike\\.ist/app/web$", "^spike/system/secret$")), true);
  // Ordinary paths follow the plain rules.
  assert.equal(allowed(policy(".*", "^app/"), "app/db"), true);
  assert.equal(allowed(policy("^spiffe://spike\\.ist/app/other$", "^app/"), "app/db"), false);
  assert.equal(isAllowed({ ...caller, superuser: true }, SECRET_LIST_PATH, ["list"], new CompiledPolicySet([])), true);
});
