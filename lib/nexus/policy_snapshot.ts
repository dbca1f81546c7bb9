/**
 * The policy set, re-read and recompiled only when it changed. Every
 * authorization asks the store for its policy generation (one single-row
 * read) and reuses the set built under that generation; a policy written
 * through any Nexus sharing the store changes the generation, so the next
 * request of every Nexus reads the new list. Nothing is served from a copy
 * older than the generation the request itself observed.
 *
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/types.ts";
import { CompiledPolicySet } from "./compiled_policy_set.ts";
import { StoredPolicyFilter } from "./stored_policy_filter.ts";

/** A set built (or being built) under one generation. */
interface Build {
  readonly generation: number;
  /** Order in which builds started: a later build read a list at least as new. */
  readonly sequence: number;
  readonly set: Promise<CompiledPolicySet>;
}

/** A reusable compiled policy set, checked against the store on every use. */
export class PolicySnapshot {
  readonly #log: Logger;
  readonly #filter = new StoredPolicyFilter();
  #ready: { readonly sequence: number; readonly generation: number; readonly set: CompiledPolicySet } | undefined;
  #pending: Build | undefined;
  #started = 0;

  /**
   * Creates an empty snapshot. `log` hears of stored policies that are not
   * obeyed because their SPIFFE ID pattern does not describe SPIFFE IDs.
   */
  constructor(log: Logger) {
    this.#log = log;
  }

  /**
   * The current policies of `store`, compiled. The generation is read before
   * the list, so a change landing in between makes the stored set look old,
   * never new: the next call builds again.
   *
   * Requests that see a new generation while its set is being built wait for
   * that one build instead of each reading and compiling the list again.
   */
  async current(store: Store): Promise<CompiledPolicySet> {
    const generation = await store.policyGeneration();
    if (this.#ready?.generation === generation) return this.#ready.set;
    if (this.#pending?.generation === generation) return await this.#pending.set;
    const build: Build = { generation, sequence: ++this.#started, set: this.#build(store) };
    this.#pending = build;
    try {
      const set = await build.set;
      // A build that started later may have finished first; keep the newer one.
      if (!this.#ready || this.#ready.sequence < build.sequence) {
        this.#ready = { sequence: build.sequence, generation, set };
      }
      return set;
    } finally {
      // A failed read is not remembered: the next request tries again.
      if (this.#pending === build) this.#pending = undefined;
    }
  }

  async #build(store: Store): Promise<CompiledPolicySet> {
    const { kept, refused } = await this.#filter.obeyed(await store.listPolicies());
    if (refused.length > 0) {
      this.#log.error("stored policies not obeyed: their SPIFFE ID pattern does not describe SPIFFE IDs", {
        policies: refused.slice(0, 20).join(", "),
        count: refused.length,
      });
    }
    // Patterns the last set compiled are taken over: one changed policy costs one compilation.
    return new CompiledPolicySet(Object.freeze(kept), this.#ready?.set);
  }
}
