/**
 * `/v1/store/secrets` and `/v1/store/secrets/metadata`.
 *
 * @module
 */
import { ApiError, badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { decodeListCursor, encodeListCursor } from "../../api/list_cursor.ts";
import { isAllowed, SECRET_LIST_PATH } from "../authorizer.ts";
import type { PathScope } from "../compiled_policy_set.ts";
import { ALL_PATHS, listPage } from "../secret_listing.ts";
import { parseJsonBody } from "../../api/body.ts";
import type { Permission } from "../../api/validate.ts";
import { authorize, permissionChecker, policyCallers, requireStore, type Route, type RouteInput } from "../route.ts";
import { type PutOptions, SecretService } from "../secret_service.ts";

function service(input: RouteInput): SecretService {
  const { deps } = input;
  return new SecretService({
    store: requireStore(deps),
    keys: deps.keys,
    clock: deps.clock,
    random: deps.random,
    maxVersions: deps.settings.maxSecretVersions,
  });
}

/** The optional fields of a put or patch [ours]: `cas`, and expiry of the secret and of the new version. */
function writeOptions(b: Record<string, unknown>): PutOptions {
  const cas = v.optionalCas(b.cas);
  const expires = v.optionalExpiry(b.ttl, b.expiresAt);
  const versionExpires = v.optionalExpiry(b.versionTtl, b.versionExpiresAt, "versionTtl", "versionExpiresAt");
  return {
    ...(cas === undefined ? {} : { cas }),
    ...(expires === undefined ? {} : { expires }),
    ...(versionExpires === undefined ? {} : { versionExpires }),
  };
}

/** One path's answer in a batch read [ours]. */
type BatchResult =
  | { data: Record<string, string> }
  | { err: "api_not_found" | "access_unauthorized" | "api_internal_error" };

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

function body(input: RouteInput): Record<string, unknown> {
  return v.object(parseJsonBody(input.body));
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
    action: "patch",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const changes = v.secretPatch(b.values);
      const options = writeOptions(b);
      // A patch reveals nothing of the old values to its caller, so `write` is all it needs.
      await authorize(input, path, ["write"]);
      await service(input).patch(path, changes, options);
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
    action: "getMany",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const paths = v.batchPaths(body(input).paths);
      const secrets = service(input);
      input.audit.permissions = ["read"];
      const permitted = await permissionChecker(input);
      // Each path authorized on its own before it is read; a denied one is never read.
      const outcomes = await Promise.all(paths.map(async (path): Promise<[string, BatchResult]> => {
        if (!permitted(path, ["read"])) return [path, { err: "access_unauthorized" }];
        try {
          return [path, { data: await secrets.get(path, 0) }];
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.code !== "api_not_found") {
            input.deps.log.error("batch read: a path failed", { detail: error.message });
          }
          return [path, { err: error.code === "api_not_found" ? "api_not_found" : "api_internal_error" }];
        }
      }));
      input.audit.resources = outcomes.map(([path, result]) => ({
        path,
        permissions: ["read"],
        outcome: "data" in result
          ? "ok"
          : result.err === "access_unauthorized"
          ? "denied"
          : result.err === "api_not_found"
          ? "not_found"
          : "error",
      }));
      // fromEntries: any path, even `__proto__`, is an own key of the answer.
      return { results: Object.fromEntries(outcomes) };
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
    action: "destroy",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const versions = v.explicitVersions(b.versions);
      await authorize(input, path, ["write"]);
      await service(input).destroy(path, versions);
      return {};
    },
  },
  {
    path: PATHS.secrets,
    action: "move",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const from = v.secretPath(b.from, "from");
      const to = v.secretPath(b.to, "to");
      if (from === to) throw badRequest("from and to are the same path");
      // Read as well as write on the source: a move must not let a caller
      // that may not read a secret carry it to where it may.
      const wanted: Array<[string, Permission[]]> = [[from, ["read", "write"]], [to, ["write"]]];
      // Each permission on its own: they may come from different policies.
      const permitted = await permissionChecker(input);
      const granted = wanted.map(([path, permissions]) => permissions.every((p) => permitted(path, [p])));
      input.audit.resource = from;
      input.audit.permissions = ["read", "write"];
      input.audit.resources = wanted.map(([path, permissions], i) => ({
        path,
        permissions,
        outcome: granted[i] ? "ok" : "denied",
      }));
      if (granted.includes(false)) throw new ApiError("access_unauthorized", "no policy grants the move");
      await service(input).move(from, to);
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
  {
    path: PATHS.secretsMetadata,
    action: "",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      const customMetadata = b.customMetadata === undefined ? undefined : v.customMetadata(b.customMetadata);
      // `expiresAt: null` clears the secret's expiry.
      const expires = b.expiresAt === null && b.ttl === undefined ? null : v.optionalExpiry(b.ttl, b.expiresAt);
      if (customMetadata === undefined && expires === undefined) {
        throw badRequest("nothing to change: give customMetadata, ttl or expiresAt");
      }
      await authorize(input, path, ["write"]);
      await service(input).putMetadata(path, {
        ...(customMetadata === undefined ? {} : { customMetadata }),
        ...(expires === undefined ? {} : { expires }),
      });
      return {};
    },
  },
  {
    path: PATHS.secretsMetadata,
    action: "delete",
    needsRootKey: true,
    admit: policyCallers,
    async handle(input) {
      const b = body(input);
      const path = v.secretPath(b.path);
      await authorize(input, path, ["write"]);
      await service(input).deletePath(path);
      return {};
    },
  },
];
