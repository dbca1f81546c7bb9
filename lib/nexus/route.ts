/**
 * The shape of a Nexus API route and the guards routes share.
 *
 * @module
 */
import { ApiError } from "../api/errors.ts";
import type { Action } from "../api/paths.ts";
import type { Permission } from "../api/validate.ts";
import type { Store } from "../store/types.ts";
import type { AuditNote } from "./audit.ts";
import { isAllowed } from "./authorizer.ts";
import type { NexusCaller } from "./caller.ts";
import type { NexusDeps } from "./deps.ts";

/** What a route handler receives. */
export interface RouteInput {
  /** The authenticated caller. */
  readonly caller: NexusCaller;
  /** The raw body (size already capped). */
  readonly body: Uint8Array;
  /** The request's `Content-Type` (lower-cased, without parameters). */
  readonly contentType: string;
  /** Injected dependencies. */
  readonly deps: NexusDeps;
  /** Filled in for the audit record as the request is decided. */
  readonly audit: AuditNote;
}

/** A JSON object answered with 200, or a ready-made Response (octet-stream). */
export type RouteResult = Record<string, unknown> | Response;

/** One `path` + `?action=` endpoint. */
export interface Route {
  /** URL path. */
  readonly path: string;
  /** `?action=` value, `""` for none. */
  readonly action: Action;
  /** Whether the root key must be loaded (503 otherwise). */
  readonly needsRootKey: boolean;
  /**
   * Checks the caller's role before anything else happens (401 when it
   * throws). Policy checks that need the body run inside `handle`.
   */
  readonly admit: (caller: NexusCaller) => boolean;
  /** Does the work. */
  readonly handle: (input: RouteInput) => Promise<RouteResult>;
}

/** Admits any authenticated caller but the lite workload (policy checks follow). */
export const policyCallers = (caller: NexusCaller): boolean => !caller.lite;

/** Throws 401 unless a policy (or superuser) grants `wanted` on `path`. */
export async function authorize(
  input: RouteInput,
  path: string,
  wanted: readonly Permission[],
): Promise<void> {
  const { caller, deps } = input;
  input.audit.resource = path;
  input.audit.permissions = wanted;
  if (caller.superuser) return;
  const policies = await deps.policies.current(requireStore(deps));
  if (!isAllowed(caller, path, wanted, policies)) {
    throw new ApiError("access_unauthorized", `no policy grants ${wanted.join("+")}`);
  }
}

/**
 * A check of whether a policy (or the superuser role) grants `wanted` on a
 * path, recording nothing [ours]: for routes that decide per path and note
 * each outcome in `audit.resources` themselves (move, batch read). The
 * policy set is fetched once, here, for all the paths checked with it.
 */
export async function permissionChecker(
  input: RouteInput,
): Promise<(path: string, wanted: readonly Permission[]) => boolean> {
  const { caller, deps } = input;
  if (caller.superuser) return () => true;
  const policies = await deps.policies.current(requireStore(deps));
  return (path, wanted) => isAllowed(caller, path, wanted, policies);
}

/** The store, or a 400 in `lite` mode, which keeps no data. */
export function requireStore(deps: NexusDeps): Store {
  if (!deps.store) throw new ApiError("api_bad_request", "this Nexus runs in lite mode: cipher API only");
  return deps.store;
}
