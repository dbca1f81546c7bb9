/**
 * The policy list, re-read from the store only when it changed. Every
 * authorization asks the store for its policy generation (one single-row
 * read) and reuses the list read under that generation; a policy written
 * through any Nexus sharing the store changes the generation, so the next
 * request of every Nexus reads the new list. Nothing is served from a copy
 * older than the generation the request itself observed.
 *
 * @module
 */
import type { PolicyRecord, Store } from "../store/types.ts";

/** A reusable copy of the policy list, checked against the store on every use. */
export class PolicySnapshot {
  #generation: number | undefined;
  #policies: readonly PolicyRecord[] = [];

  /**
   * The current policies of `store`. The generation is read before the list,
   * so a change landing in between makes the stored pair look old, never new:
   * the next call reads the list again.
   */
  async current(store: Store): Promise<readonly PolicyRecord[]> {
    const generation = await store.policyGeneration();
    if (generation === this.#generation) return this.#policies;
    const policies = Object.freeze(await store.listPolicies());
    this.#generation = generation;
    this.#policies = policies;
    return policies;
  }
}
