/**
 * SPIKE's roles as SPIFFE ID predicates.
 *
 * A peer has a role when its ID is valid, its trust domain is one of the
 * trust roots configured for that role, and its path is the role's path or a
 * sub-path of it (`/spike/nexus` matches `/spike/nexus` and
 * `/spike/nexus/eu-1`, never `/spike/nexus-evil`).
 *
 * @module
 */

import { parseSpiffeId, type SpiffeId } from "./id.ts";

/** A check on a peer's SPIFFE ID (string form). */
export type IdPredicate = (id: string) => boolean;

/** Trust domains accepted for each role (`SPIKE_TRUST_ROOT_*`). */
export interface TrustRoots {
  /** Trust domains Nexus may come from. */
  nexus: string[];
  /** Trust domains Keepers may come from. */
  keeper: string[];
  /** Trust domains the operator CLI (all Pilot roles) may come from. */
  pilot: string[];
  /** Trust domains Bootstrap may come from. */
  bootstrap: string[];
  /** Trust domains lite workloads (cipher API only) may come from. */
  liteWorkload: string[];
}

/** The roles of SPIKE, each with a fixed SPIFFE ID path. */
export type SpikeRole =
  | "nexus"
  | "keeper"
  | "bootstrap"
  | "pilot_superuser"
  | "pilot_recover"
  | "pilot_restore"
  | "lite_workload";

/** The path of each role's SPIFFE ID. */
export const ROLE_PATHS: Readonly<Record<SpikeRole, string>> = Object.freeze({
  nexus: "/spike/nexus",
  keeper: "/spike/keeper",
  bootstrap: "/spike/bootstrap",
  pilot_superuser: "/spike/pilot/role/superuser",
  pilot_recover: "/spike/pilot/role/recover",
  pilot_restore: "/spike/pilot/role/restore",
  lite_workload: "/spike/workload/role/lite",
});

/** Which {@linkcode TrustRoots} list governs each role. */
export const ROLE_TRUST_ROOT: Readonly<Record<SpikeRole, keyof TrustRoots>> = Object.freeze({
  nexus: "nexus",
  keeper: "keeper",
  bootstrap: "bootstrap",
  pilot_superuser: "pilot",
  pilot_recover: "pilot",
  pilot_restore: "pilot",
  lite_workload: "liteWorkload",
});

/** SPIKE's default trust domain. */
export const DEFAULT_SPIKE_TRUST_DOMAIN = "spike.ist";

// Frozen all the way down: a shared default must not be editable by one caller.
const defaultList = (): string[] => Object.freeze([DEFAULT_SPIKE_TRUST_DOMAIN]) as string[];

/** Every role trusts `spike.ist` only. Deeply frozen; copy it with {@linkcode trustRoots}. */
export const DEFAULT_TRUST_ROOTS: Readonly<TrustRoots> = Object.freeze({
  nexus: defaultList(),
  keeper: defaultList(),
  pilot: defaultList(),
  bootstrap: defaultList(),
  liteWorkload: defaultList(),
});

/** Fills the lists left out of `partial` with the default `["spike.ist"]`. */
export function trustRoots(partial: Partial<TrustRoots> = {}): TrustRoots {
  const pick = (key: keyof TrustRoots): string[] => [...(partial[key] ?? DEFAULT_TRUST_ROOTS[key])];
  return {
    nexus: pick("nexus"),
    keeper: pick("keeper"),
    pilot: pick("pilot"),
    bootstrap: pick("bootstrap"),
    liteWorkload: pick("liteWorkload"),
  };
}

/**
 * The canonical SPIFFE ID of `role` in `trustDomain`, e.g.
 * `spikeIdFor("nexus")` is `spiffe://spike.ist/spike/nexus`.
 *
 * @throws {SpiffeIdError} when `trustDomain` is not a valid trust domain name.
 */
export function spikeIdFor(role: SpikeRole, trustDomain: string = DEFAULT_SPIKE_TRUST_DOMAIN): string {
  return parseSpiffeId(`spiffe://${trustDomain}${ROLE_PATHS[role]}`).toString();
}

/** True when `id` holds `role` under `roots`. Never throws. */
export function hasRole(role: SpikeRole, id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  const parsed = tryParse(id);
  return parsed !== undefined && parsedHasRole(role, parsed, roots);
}

/**
 * Every role `id` holds under `roots`, parsing the ID once (a request's
 * caller is classified against all roles). Never throws.
 */
export function rolesOf(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): ReadonlySet<SpikeRole> {
  const parsed = tryParse(id);
  const roles = new Set<SpikeRole>();
  if (parsed === undefined) return roles;
  for (const role of Object.keys(ROLE_PATHS) as SpikeRole[]) {
    if (parsedHasRole(role, parsed, roots)) roles.add(role);
  }
  return roles;
}

function tryParse(id: string): SpiffeId | undefined {
  try {
    return parseSpiffeId(id);
  } catch {
    return undefined;
  }
}

function parsedHasRole(role: SpikeRole, parsed: SpiffeId, roots: TrustRoots): boolean {
  if (!roots[ROLE_TRUST_ROOT[role]].includes(parsed.trustDomain)) return false;
  const rolePath = ROLE_PATHS[role];
  return parsed.path === rolePath || parsed.path.startsWith(`${rolePath}/`);
}

/** An {@linkcode IdPredicate} for one role, e.g. the server ID check of a client talking to Nexus. */
export function rolePredicate(role: SpikeRole, roots: TrustRoots = DEFAULT_TRUST_ROOTS): IdPredicate {
  return (id) => hasRole(role, id, roots);
}

/** True when `id` is a Nexus. */
export function isNexus(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("nexus", id, roots);
}

/** True when `id` is a Keeper. */
export function isKeeper(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("keeper", id, roots);
}

/** True when `id` is Bootstrap. */
export function isBootstrap(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("bootstrap", id, roots);
}

/** True when `id` is the Pilot superuser (bypasses policies). */
export function isPilotSuperuser(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("pilot_superuser", id, roots);
}

/** True when `id` is the Pilot recover role (may fetch recovery shards). */
export function isPilotRecover(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("pilot_recover", id, roots);
}

/** True when `id` is the Pilot restore role (may submit recovery shards). */
export function isPilotRestore(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("pilot_restore", id, roots);
}

/** True when `id` is a lite workload (cipher API only). */
export function isLiteWorkload(id: string, roots: TrustRoots = DEFAULT_TRUST_ROOTS): boolean {
  return hasRole("lite_workload", id, roots);
}
