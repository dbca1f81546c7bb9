/**
 * Who is calling: the authenticated SPIFFE ID and the roles it holds.
 *
 * @module
 */
import { rolesOf, type TrustRoots } from "../spiffe/roles.ts";
import type { Caller } from "./authorizer.ts";

/** A caller with its role flags, computed once per request. */
export interface NexusCaller extends Caller {
  /** `spike/workload/role/lite`: cipher API only. */
  readonly lite: boolean;
  /** `spike/pilot/role/recover`. */
  readonly recover: boolean;
  /** `spike/pilot/role/restore`. */
  readonly restore: boolean;
  /** `spike/bootstrap`. */
  readonly bootstrap: boolean;
}

/** Classifies an authenticated SPIFFE ID (parsed once). */
export function describeCaller(spiffeId: string, roots: TrustRoots): NexusCaller {
  const roles = rolesOf(spiffeId, roots);
  return Object.freeze({
    spiffeId,
    superuser: roles.has("pilot_superuser"),
    lite: roles.has("lite_workload"),
    recover: roles.has("pilot_recover"),
    restore: roles.has("pilot_restore"),
    bootstrap: roles.has("bootstrap"),
  });
}
