/**
 * What the secret routes share: the secret service for a request, the
 * request's JSON object, and the optional write fields of the key-value
 * extensions.
 *
 * @module
 */
import { parseJsonBody } from "../../api/body.ts";
import * as v from "../../api/validate.ts";
import { requireStore, type RouteInput } from "../route.ts";
import { type PutOptions, SecretService } from "../secret_service.ts";

/** The secret service over the request's dependencies. */
export function service(input: RouteInput): SecretService {
  const { deps } = input;
  return new SecretService({
    store: requireStore(deps),
    keys: deps.keys,
    clock: deps.clock,
    random: deps.random,
    maxVersions: deps.settings.maxSecretVersions,
    writes: deps.secretWrites,
    keyCatchUp: deps.keyManager,
  });
}

/** The optional fields of a put or patch [ours]: `cas`, and expiry of the secret and of the new version. */
export function writeOptions(b: Record<string, unknown>): PutOptions {
  const cas = v.optionalCas(b.cas);
  const expires = v.optionalExpiry(b.ttl, b.expiresAt);
  const versionExpires = v.optionalExpiry(b.versionTtl, b.versionExpiresAt, "versionTtl", "versionExpiresAt");
  return {
    ...(cas === undefined ? {} : { cas }),
    ...(expires === undefined ? {} : { expires }),
    ...(versionExpires === undefined ? {} : { versionExpires }),
  };
}

/** The request body as a JSON object (400 otherwise). */
export function body(input: RouteInput): Record<string, unknown> {
  return v.object(parseJsonBody(input.body));
}
