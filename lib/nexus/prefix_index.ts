/**
 * Finds the entries whose literal prefix starts a given text, without
 * looking at the others.
 *
 * Entries are grouped by prefix in one hash map; a lookup slices the text at
 * each distinct prefix length and probes the map once per length. Policy
 * prefixes come in few lengths (a team's IDs share one shape), so a lookup
 * is a handful of probes whatever the number of entries, and the index
 * costs one map entry per distinct prefix. A character trie would do the
 * same in one walk of the text but needs a node per prefix character; a
 * sorted array with binary search needs a search per length too, and more
 * code. An entry without a usable prefix has the prefix `""`, which starts
 * every text, so it is returned for every lookup.
 *
 * @module
 */

/** Entries grouped by literal prefix. */
export class PrefixIndex<T> {
  /** Distinct prefix lengths, ascending. */
  readonly #lengths: readonly number[];
  readonly #groups: ReadonlyMap<string, readonly T[]>;

  /** Indexes `entries`, each under the prefix `prefixOf` gives it. */
  constructor(entries: Iterable<T>, prefixOf: (entry: T) => string) {
    const groups = new Map<string, T[]>();
    const lengths = new Set<number>();
    for (const entry of entries) {
      const prefix = prefixOf(entry);
      const group = groups.get(prefix);
      if (group) {
        group.push(entry);
      } else {
        groups.set(prefix, [entry]);
        lengths.add(prefix.length);
      }
    }
    this.#groups = groups;
    this.#lengths = [...lengths].sort((a, b) => a - b);
  }

  /**
   * The groups of entries whose prefix starts `text` (every such entry is in
   * exactly one of them), and how many entries they hold together.
   */
  lookup(text: string): { readonly groups: readonly (readonly T[])[]; readonly count: number } {
    const groups: (readonly T[])[] = [];
    let count = 0;
    for (const length of this.#lengths) {
      if (length > text.length) break;
      const group = this.#groups.get(length === text.length ? text : text.slice(0, length));
      if (group) {
        groups.push(group);
        count += group.length;
      }
    }
    return { groups, count };
  }
}
