/**
 * `/v1/acl/policy`: upsert by name, get, delete, list. Guarded by
 * permissions on the reserved path `spike/system/acl`.
 *
 * @module
 */
import { ApiError, badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import type { PolicyRecord } from "../../store/types.ts";
import { ACL_PATH } from "../authorizer.ts";
import { parseJsonBody } from "../../api/body.ts";
import { compileLinear } from "../linear_regex.ts";
import { authorize, policyCallers, requireStore, type Route, type RouteInput } from "../route.ts";

function body(input: RouteInput): Record<string, unknown> {
  return v.object(parseJsonBody(input.body));
}

/** The policy as the wire shows it (note SPIKE's `spiffiedPattern` spelling). */
export function policyView(policy: PolicyRecord): Record<string, unknown> {
  return {
    id: policy.name,
    name: policy.name,
    spiffiedPattern: policy.spiffeIdPattern,
    pathPattern: policy.pathPattern,
    permissions: [...policy.permissions],
    createdAt: policy.createdAt.toISOString(),
    updatedAt: policy.updatedAt.toISOString(),
  };
}

function optionalFilter(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  return value;
}

/** The policy routes. */
export const policyRoutes: readonly Route[] = [
  {
    path: PATHS.policy,
    action: "",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const name = v.name(b.name, "name");
      const spiffeIdPattern = v.patternSource(b.spiffeidPattern, "spiffeidPattern");
      const pathPattern = v.patternSource(b.pathPattern, "pathPattern");
      const permissions = v.permissions(b.permissions);
      await authorize(input, ACL_PATH, ["write"]);
      // Refuse patterns the linear engine cannot run, so a stored policy
      // always compiles when it is evaluated.
      compileLinear(spiffeIdPattern, "spiffeidPattern");
      compileLinear(pathPattern, "pathPattern");
      // A SPIFFE ID pattern must describe SPIFFE IDs: `.*` would grant every
      // workload without naming one, `^x$` nothing at all. The check (and the
      // regex library behind it) loads on the first policy write, not at start.
      const { spiffeIdPattern: checkSpiffeIdPattern } = await import("../../api/spiffe_id_pattern.ts");
      checkSpiffeIdPattern(spiffeIdPattern, "spiffeidPattern");
      const now = input.deps.clock();
      const saved = await requireStore(input.deps).upsertPolicy({
        name,
        spiffeIdPattern,
        pathPattern,
        permissions,
        createdAt: now,
        updatedAt: now,
      });
      return { id: saved.name };
    },
  },
  {
    path: PATHS.policy,
    action: "get",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const id = v.name(body(input).id, "id");
      await authorize(input, ACL_PATH, ["read"]);
      const policy = await requireStore(input.deps).getPolicy(id);
      if (!policy) throw new ApiError("api_not_found");
      return policyView(policy);
    },
  },
  {
    path: PATHS.policy,
    action: "delete",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const id = v.name(body(input).id, "id");
      await authorize(input, ACL_PATH, ["write"]);
      if (!await requireStore(input.deps).deletePolicy(id)) throw new ApiError("api_not_found");
      return {};
    },
  },
  {
    path: PATHS.policy,
    action: "list",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const byId = optionalFilter(b.spiffeidPattern, "spiffeidPattern");
      const byPath = optionalFilter(b.pathPattern, "pathPattern");
      await authorize(input, ACL_PATH, ["list"]);
      const policies = (await requireStore(input.deps).listPolicies())
        .filter((p) => byId === undefined || p.spiffeIdPattern === byId)
        .filter((p) => byPath === undefined || p.pathPattern === byPath)
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      return { policies: policies.map((p) => ({ id: p.name, name: p.name })) };
    },
  },
];
