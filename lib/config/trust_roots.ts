/**
 * Bridges the frozen config's trust roots to the role predicates' shape.
 *
 * @module
 */
import type { TrustRoots } from "../spiffe/roles.ts";
import type { TrustRootsConfig } from "./spike_config.ts";

/** Copies readonly config arrays into the shape the role predicates take. */
export function toTrustRoots(roots: TrustRootsConfig): TrustRoots {
  return {
    nexus: [...roots.nexus],
    keeper: [...roots.keeper],
    pilot: [...roots.pilot],
    bootstrap: [...roots.bootstrap],
    liteWorkload: [...roots.liteWorkload],
  };
}
