/**
 * `/v1/store/secrets` and `/v1/store/secrets/metadata`.
 *
 * @module
 */
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { SECRET_LIST_PATH } from "../authorizer.ts";
import { parseJsonBody } from "../../api/body.ts";
import { authorize, policyCallers, requireStore, type Route, type RouteInput } from "../route.ts";
import { SecretService } from "../secret_service.ts";

function service(input: RouteInput): SecretService {
  const { deps } = input;
  return new SecretService({
    store: requireStore(deps),
    keys: deps.keys,
    clock: deps.clock,
    random: deps.random,
    maxVersions: deps.settings.maxSecretVersions,
    writes: deps.secretWrites,
  });
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
      await authorize(input, path, ["write"]);
      await service(input).put(path, values);
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
      body(input);
      await authorize(input, SECRET_LIST_PATH, ["list"]);
      return { keys: await service(input).list() };
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
