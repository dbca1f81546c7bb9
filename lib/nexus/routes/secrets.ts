/**
 * `/v1/store/secrets` and `/v1/store/secrets/metadata`.
 *
 * @module
 */
import { badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { SECRET_LIST_PATH } from "../authorizer.ts";
import { parseJsonBody } from "../../api/body.ts";
import { authorize, policyCallers, requireStore, type Route, type RouteInput } from "../route.ts";
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
