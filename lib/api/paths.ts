/**
 * URL paths and `?action=` values of the SPIKE v1 API.
 *
 * @module
 */

/** Nexus and Keeper endpoint paths. */
export const PATHS = Object.freeze({
  secrets: "/v1/store/secrets",
  secretsMetadata: "/v1/store/secrets/metadata",
  policy: "/v1/acl/policy",
  encrypt: "/v1/cipher/encrypt",
  decrypt: "/v1/cipher/decrypt",
  recover: "/v1/operator/recover",
  restore: "/v1/operator/restore",
  /** [ours] Starts a root key rotation (superuser). */
  rotate: "/v1/operator/rotate",
  /** [ours] Root key versions, rotation progress, Keepers (superuser). */
  keyStatus: "/v1/operator/status",
  bootstrapVerify: "/v1/bootstrap/verify",
  /** [ours] MAC checks of audit records for `spike audit verify` (Pilot superuser). */
  auditVerify: "/v1/operator/audit/verify",
  keeperContribute: "/v1/store/contribute",
  keeperShard: "/v1/store/shard",
});

/**
 * `?action=` values; the empty string is "no action". `patch`, `destroy`,
 * `move` and `getMany` are ours (key-value extensions).
 */
export type Action = "" | "get" | "delete" | "undelete" | "list" | "patch" | "destroy" | "move" | "getMany";

/** Builds `path?action=a` (or just `path` for the default action). */
export function urlFor(base: string, path: string, action: Action = ""): string {
  return `${base}${path}${action ? `?action=${action}` : ""}`;
}
