/**
 * Decides whether a caller may act on a path: the single place where
 * SPIKE's authorization rules live (superuser bypass, policy matching,
 * reserved system paths). Default deny.
 *
 * @module
 */
import type { Permission } from "../api/validate.ts";
import type { CompiledPolicySet } from "./compiled_policy_set.ts";

/** Reserved path guarding the policy API. */
export const ACL_PATH = "spike/system/acl";
/** Reserved path guarding the secret listing. */
export const SECRET_LIST_PATH = "spike/system/secret";
/** Reserved path guarding the cipher API. */
export const CIPHER_PATH = "spike/system/cipher/exec";

const RESERVED_PATHS: ReadonlySet<string> = new Set([ACL_PATH, SECRET_LIST_PATH, CIPHER_PATH]);

/** What the authorizer needs to know about the caller. */
export interface Caller {
  /** The authenticated SPIFFE ID. */
  readonly spiffeId: string;
  /** Whether the caller is the Pilot superuser (bypasses policies). */
  readonly superuser: boolean;
}

/**
 * Returns true when any policy grants `caller` every permission in `wanted`
 * on `path`.
 *
 * On the reserved system paths only policies whose SPIFFE ID pattern is
 * anchored at both ends count, and their path pattern must match the whole
 * path: a policy written for ordinary secrets (`.*`, `^spike/`) must not
 * reach the policy API, the secret listing or the cipher API by accident.
 *
 * A pattern stored before a rule change that no longer compiles is treated
 * as matching nothing: a broken policy can deny, never grant.
 */
export function isAllowed(
  caller: Caller,
  path: string,
  wanted: readonly Permission[],
  policies: CompiledPolicySet,
): boolean {
  if (caller.superuser) return true;
  return policies.grants(caller.spiffeId, path, wanted, { strict: RESERVED_PATHS.has(path) });
}
