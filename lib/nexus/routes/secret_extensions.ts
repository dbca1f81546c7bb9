/**
 * The key-value extension routes [ours] on `/v1/store/secrets` and
 * `/v1/store/secrets/metadata`: patch, destroy, move, batch read, metadata
 * put and delete (API.md, "Key-value extensions"). Same shape as SPIKE's
 * routes: validate, authorize, one service call.
 *
 * @module
 */
import { ApiError, badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import type { Permission } from "../../api/validate.ts";
import type { AuditResource } from "../audit.ts";
import { authorize, permissionChecker, policyCallers, type Route } from "../route.ts";
import { body, service, writeOptions } from "./secret_support.ts";

/** One path's answer in a batch read [ours]. */
type BatchResult = { data: Record<string, string> } | { err: BatchError };

/** Why a batch read did not read one path. */
type BatchError = "api_not_found" | "access_unauthorized" | "api_internal_error";

/** The audit outcome of a path a batch read did not read. */
const AUDIT_OUTCOME_OF: Readonly<Record<BatchError, AuditResource["outcome"]>> = {
  access_unauthorized: "denied",
  api_not_found: "not_found",
  api_internal_error: "error",
};

/** The key-value extension routes. */
export const secretExtensionRoutes: readonly Route[] = [
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
          if (error.code === "api_not_found") return [path, { err: "api_not_found" }];
          input.deps.log.error("batch read: a path failed", { detail: error.message });
          return [path, { err: "api_internal_error" }];
        }
      }));
      input.audit.resources = outcomes.map(([path, result]) => ({
        path,
        permissions: ["read"],
        outcome: "data" in result ? "ok" : AUDIT_OUTCOME_OF[result.err],
      }));
      // fromEntries: any path, even `__proto__`, is an own key of the answer.
      return { results: Object.fromEntries(outcomes) };
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
