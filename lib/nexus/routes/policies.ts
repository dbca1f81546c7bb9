/**
 * `/v1/acl/policy`: upsert by name, get, delete, list. Guarded by
 * permissions on the reserved path `spike/system/acl`.
 *
 * Policies are sealed in the store (`policy_seal.ts`), so the store cannot
 * filter or read them: `get` and `list` answer from the policy snapshot's
 * opened copy of the current generation (the same one authorization uses),
 * and the `list` filter is applied here. A row that failed authentication is
 * absent to both; `delete` still removes it by name, which is how an
 * operator clears a tampered row.
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
import { openPolicy, sealPolicy } from "../policy_seal.ts";
import { authorize, policyCallers, requireStore, type Route, type RouteInput } from "../route.ts";
import { withWriteKeys } from "../write_keys.ts";

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

/**
 * When the policy named `name` was first created, from its stored row; an
 * upsert keeps it. `undefined` for a new name, and for a row that does not
 * open (the upsert then replaces the tampered row with an authentic one).
 */
async function storedCreatedAt(input: RouteInput, name: string): Promise<Date | undefined> {
  const { deps } = input;
  const row = await requireStore(deps).getPolicy(name);
  if (!row) return undefined;
  if (row.kind === "sealed" && !deps.keys.holds(row.keyVersion)) await deps.keyManager.catchUp();
  const key = row.kind === "sealed" ? deps.keys.keysFor(row.keyVersion)?.policies : undefined;
  if (row.kind === "sealed" && key) {
    try {
      return (await openPolicy(key, row)).createdAt;
    } catch {
      // Tampered: reported below, and replaced by this write.
    }
  }
  deps.log.warn("policy write replaces a stored row that failed authentication", { policy: name });
  return undefined;
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
      const { deps } = input;
      const store = requireStore(deps);
      const now = deps.clock();
      const createdAt = await storedCreatedAt(input, name) ?? now;
      const record: PolicyRecord = { name, spiffeIdPattern, pathPattern, permissions, createdAt, updatedAt: now };
      // Another Nexus may rotate the root key meanwhile: then this one catches up and seals again.
      await withWriteKeys(deps.keys, deps.keyManager, async (keys) => {
        await store.upsertPolicy(await sealPolicy(keys.policies, keys.version, record, deps.random));
      });
      return { id: name };
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
      const policy = (await input.deps.policies.generation(requireStore(input.deps))).byName.get(id);
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
      const policies = (await input.deps.policies.generation(requireStore(input.deps))).authentic
        .filter((p) => byId === undefined || p.spiffeIdPattern === byId)
        .filter((p) => byPath === undefined || p.pathPattern === byPath)
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      return { policies: policies.map((p) => ({ id: p.name, name: p.name })) };
    },
  },
];
