import assert from "node:assert/strict";
import {
  DEFAULT_TRUST_ROOTS,
  hasRole,
  isBootstrap,
  isKeeper,
  isLiteWorkload,
  isNexus,
  isPilotRecover,
  isPilotRestore,
  isPilotSuperuser,
  ROLE_PATHS,
  rolePredicate,
  rolesOf,
  spikeIdFor,
  type SpikeRole,
  trustRoots,
} from "./roles.ts";

const CHECKS: Record<SpikeRole, (id: string, roots?: typeof DEFAULT_TRUST_ROOTS) => boolean> = {
  nexus: isNexus,
  keeper: isKeeper,
  bootstrap: isBootstrap,
  pilot_superuser: isPilotSuperuser,
  pilot_recover: isPilotRecover,
  pilot_restore: isPilotRestore,
  lite_workload: isLiteWorkload,
};
const ROLES = Object.keys(CHECKS) as SpikeRole[];

Deno.test("spikeIdFor builds the canonical IDs of API.md", () => {
  assert.equal(spikeIdFor("nexus"), "spiffe://spike.ist/spike/nexus");
  assert.equal(spikeIdFor("keeper", "corp.example"), "spiffe://corp.example/spike/keeper");
  assert.equal(spikeIdFor("bootstrap"), "spiffe://spike.ist/spike/bootstrap");
  assert.equal(spikeIdFor("pilot_superuser"), "spiffe://spike.ist/spike/pilot/role/superuser");
  assert.equal(spikeIdFor("pilot_recover"), "spiffe://spike.ist/spike/pilot/role/recover");
  assert.equal(spikeIdFor("pilot_restore"), "spiffe://spike.ist/spike/pilot/role/restore");
  assert.equal(spikeIdFor("lite_workload"), "spiffe://spike.ist/spike/workload/role/lite");
  assert.throws(() => spikeIdFor("nexus", "Bad TD"));
});

Deno.test("each role accepts its own ID and sub-paths, and no other role's ID", () => {
  for (const role of ROLES) {
    for (const other of ROLES) {
      const id = spikeIdFor(other);
      assert.equal(CHECKS[role](id), role === other, `${role} on ${id}`);
      assert.equal(CHECKS[role](`${id}/replica-1`), role === other, `${role} on ${id}/replica-1`);
    }
  }
});

Deno.test("a role path is matched by segment, not by string prefix", () => {
  assert.equal(isNexus("spiffe://spike.ist/spike/nexus-evil"), false);
  assert.equal(isNexus("spiffe://spike.ist/spike/nexusx/a"), false);
  assert.equal(isNexus("spiffe://spike.ist/spike"), false);
  assert.equal(isNexus("spiffe://spike.ist/x/spike/nexus"), false);
  assert.equal(isPilotSuperuser("spiffe://spike.ist/spike/pilot/role/superuser2"), false);
  assert.equal(isKeeper("spiffe://spike.ist/SPIKE/keeper"), false);
});

Deno.test("invalid IDs never match and never throw", () => {
  for (const bad of ["", "spiffe://spike.ist/spike/nexus/", "spiffe://spike.ist/spike/../spike/nexus", "x"]) {
    for (const role of ROLES) assert.equal(CHECKS[role](bad), false);
  }
  assert.equal(isNexus("spiffe://spike.ist/spike/nexus?x=1"), false);
});

Deno.test("trust domains come from the role's own list", () => {
  const roots = trustRoots({ nexus: ["a.org", "b.org"], pilot: ["ops.org"] });
  assert.deepEqual(roots.keeper, ["spike.ist"]);
  assert.equal(isNexus("spiffe://a.org/spike/nexus", roots), true);
  assert.equal(isNexus("spiffe://b.org/spike/nexus", roots), true);
  assert.equal(isNexus("spiffe://spike.ist/spike/nexus", roots), false);
  assert.equal(isPilotSuperuser("spiffe://ops.org/spike/pilot/role/superuser", roots), true);
  assert.equal(isPilotRecover("spiffe://ops.org/spike/pilot/role/recover", roots), true);
  assert.equal(isPilotSuperuser("spiffe://a.org/spike/pilot/role/superuser", roots), false);
  assert.equal(isKeeper("spiffe://a.org/spike/keeper", roots), false);
  assert.equal(isKeeper("spiffe://spike.ist/spike/keeper", roots), true);
  assert.equal(isNexus("spiffe://spike.ist/spike/nexus"), true, "default roots");
});

Deno.test("rolePredicate and hasRole agree with the named checks", () => {
  const roots = trustRoots();
  for (const role of ROLES) {
    const id = `spiffe://spike.ist${ROLE_PATHS[role]}`;
    assert.equal(rolePredicate(role, roots)(id), true);
    assert.equal(hasRole(role, id, roots), CHECKS[role](id, roots));
  }
});

Deno.test("trustRoots copies lists so callers cannot change the defaults", () => {
  const roots = trustRoots();
  roots.nexus.push("evil.org");
  assert.deepEqual(DEFAULT_TRUST_ROOTS.nexus, ["spike.ist"]);
  assert.ok(Object.isFrozen(DEFAULT_TRUST_ROOTS));
  assert.throws(() => DEFAULT_TRUST_ROOTS.nexus.push("evil.org"));
});

Deno.test("rolesOf classifies an ID against every role at once", () => {
  assert.deepEqual([...rolesOf("spiffe://spike.ist/spike/pilot/role/superuser")], ["pilot_superuser"]);
  assert.deepEqual([...rolesOf("spiffe://spike.ist/spike/keeper/2")], ["keeper"]);
  assert.deepEqual([...rolesOf("spiffe://other.org/spike/nexus")], []);
  assert.deepEqual([...rolesOf("not an id")], []);
});
