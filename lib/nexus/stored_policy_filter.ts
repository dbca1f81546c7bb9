/**
 * Stored policies must obey the rule writes obey: a SPIFFE ID pattern that
 * does not describe SPIFFE IDs (`.*`, `admin$`) grants nothing, even when a
 * row written before the rule, or by hand into the database, holds one.
 *
 * The full check (`spiffe_id_pattern.ts`) costs a fraction of a millisecond
 * per pattern, so its verdicts are kept per pattern source and carried over
 * from one policy generation to the next, and a pattern whose literal prefix
 * already pins `spiffe://` (nearly all of them) is never analysed at all:
 * every text it matches starts with the scheme, which is what makes a
 * policy safe to obey. (Whether such a pattern can match a valid ID only
 * decides if it is useful, not if it is safe.) The analysis, and the regex
 * library behind it, is loaded only when a pattern needs it, so a Nexus
 * whose policies all pin the scheme never loads it.
 *
 * @module
 */
import type { PolicyRecord } from "../store/types.ts";
import { literalPrefix } from "./pattern_shape.ts";

const SCHEME = "spiffe://";

/** Keeps the verdicts of one generation's patterns for the next. */
export class StoredPolicyFilter {
  #verdicts = new Map<string, boolean>();

  /**
   * The records whose SPIFFE ID pattern describes SPIFFE IDs, and the names
   * of those left out. Verdicts for patterns no longer stored are forgotten.
   */
  async obeyed(records: readonly PolicyRecord[]): Promise<{ kept: PolicyRecord[]; refused: string[] }> {
    const next = new Map<string, boolean>();
    const kept: PolicyRecord[] = [];
    const refused: string[] = [];
    for (const record of records) {
      const source = record.spiffeIdPattern;
      let ok = next.get(source) ?? this.#verdicts.get(source);
      if (ok === undefined) ok = await describesSpiffeIds(source);
      next.set(source, ok);
      if (ok) kept.push(record);
      else refused.push(record.name);
    }
    this.#verdicts = next;
    return { kept, refused };
  }
}

/**
 * True when every text `source` can match starts with `spiffe://`: a literal
 * prefix says so at once; otherwise the pattern is analysed, and one the
 * analysis cannot read counts as not describing SPIFFE IDs (default deny).
 */
export async function describesSpiffeIds(source: string): Promise<boolean> {
  if (literalPrefix(source).startsWith(SCHEME)) return true;
  const { spiffeIdPatternProblem } = await import("../api/spiffe_id_pattern.ts");
  const problem = spiffeIdPatternProblem(source);
  return problem === undefined || problem === "never_matches";
}
