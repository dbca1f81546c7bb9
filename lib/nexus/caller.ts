/**
 * Who is calling: the authenticated SPIFFE ID and the roles it holds.
 *
 * @module
 */
import {
  isBootstrap,
  isLiteWorkload,
  isPilotRecover,
  isPilotRestore,
  isPilotSuperuser,
  type TrustRoots,
} from "../spiffe/roles.ts";
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

/** Classifies an authenticated SPIFFE ID. */
export function describeCaller(spiffeId: string, roots: TrustRoots): NexusCaller {
  return Object.freeze({
    spiffeId,
    superuser: isPilotSuperuser(spiffeId, roots),
    lite: isLiteWorkload(spiffeId, roots),
    recover: isPilotRecover(spiffeId, roots),
    restore: isPilotRestore(spiffeId, roots),
    bootstrap: isBootstrap(spiffeId, roots),
  });
}
