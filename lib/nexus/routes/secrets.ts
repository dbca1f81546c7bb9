/**
 * `/v1/store/secrets` and `/v1/store/secrets/metadata`: SPIKE's routes, with
 * the optional fields of the key-value extensions [ours] (check-and-set and
 * expiry on put, the scoped paged list). The extensions' own actions are in
 * `secret_extensions.ts`.
 *
 * @module
 */
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { decodeListCursor, encodeListCursor } from "../../api/list_cursor.ts";
import { isAllowed, SECRET_LIST_PATH } from "../authorizer.ts";
import type { PathScope } from "../compiled_policy_set.ts";
import { ALL_PATHS, listPage } from "../secret_listing.ts";
import { authorize, policyCallers, requireStore, type Route, type RouteInput } from "../route.ts";
import { body, service, writeOptions } from "./secret_support.ts";

/** Most stored paths one page of a scoped list examines [ours]: bounds the work of a request. */
export const LIST_SCAN_BUDGET = 10_000;

/**
 * The paths a scoped list shows the caller [ours]: every path for the
 * superuser and for holders of `list` on `spike/system/secret` (who may
 * list everything anyway); otherwise the paths some policy grants it `read`
 * or `list` on. Never a 401: a caller granted nothing gets empty pages.
 */
async function listScope(input: RouteInput, prefix: string): Promise<PathScope> {
  input.audit.resource = prefix;
  input.audit.permissions = ["list"];
  const { caller, deps } = input;
  if (caller.superuser) return ALL_PATHS;
  const policies = await deps.policies.current(requireStore(deps));
  if (isAllowed(caller, SECRET_LIST_PATH, ["list"], policies)) return ALL_PATHS;
  return policies.pathScope(caller.spiffeId, ["read", "list"]);
}

/** The secret routes. */
export const secretRoutes: readonly Route[] = [
  {
    path: PATHS.secrets,
    action: "",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const values = v.secretValues(b.values);
      const options = writeOptions(b);
      await authorize(input, path, ["write"]);
      await service(input).put(path, values, options);
      return {};
    },
  },
  {
    path: PATHS.secrets,
    action: "get",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const version = v.optionalVersion(b.version);
      await authorize(input, path, ["read"]);
      return { data: await service(input).get(path, version) };
    },
  },
  {
    path: PATHS.secrets,
    action: "delete",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const versions = v.versionList(b.versions);
      await authorize(input, path, ["write"]);
      await service(input).delete(path, versions);
      return {};
    },
  },
  {
    path: PATHS.secrets,
    action: "undelete",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const versions = v.versionList(b.versions);
      await authorize(input, path, ["write"]);
      await service(input).undelete(path, versions);
      return {};
    },
  },
  {
    path: PATHS.secrets,
    action: "list",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      if (b.prefix === undefined && b.limit === undefined && b.cursor === undefined) {
        // SPIKE's list: every path, for holders of `list` on the reserved path.
        await authorize(input, SECRET_LIST_PATH, ["list"]);
        return { keys: await service(input).list() };
      }
      const prefix = v.pathPrefix(b.prefix);
      const limit = v.listLimit(b.limit);
      const after = b.cursor === undefined || b.cursor === null ? undefined : decodeListCursor(b.cursor);
      const scope = await listScope(input, prefix);
      const page = await listPage(requireStore(input.deps), scope, { prefix, after, limit }, LIST_SCAN_BUDGET);
      return { keys: page.keys, ...(page.next === undefined ? {} : { cursor: encodeListCursor(page.next) }) };
    },
  },
  {
    path: PATHS.secretsMetadata,
    action: "get",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const version = v.optionalVersion(b.version);
      await authorize(input, path, ["read"]);
      const view = await service(input).metadata(path, version);
      return { ...view };
    },
  },
];
