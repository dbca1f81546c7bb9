/**
 * One policy pattern source, compiled and read once: its matcher, the
 * literal prefix every match starts with, the literal text every match
 * contains, and whether it is anchored at both ends. A pattern is immutable text, so the result can be shared by
 * every policy that uses the same source and carried over to the next
 * policy generation.
 *
 * @module
 */
import { compilePattern, type PatternMatcher } from "./linear_regex.ts";
import { isAnchored, literalPrefix, requiredLiteral } from "./pattern_shape.ts";

/** A compiled policy pattern. */
export class CompiledPattern {
  /** The pattern's text. */
  readonly source: string;
  /** The matcher; `null` when the pattern does not compile (it then matches nothing). */
  readonly matcher: PatternMatcher | null;
  /** Literal text every match starts with (`""`: nothing known). */
  readonly prefix: string;
  /**
   * Literal text every match contains, when that says more than `prefix`
   * and the matcher is a regex (`""` otherwise): an `includes` check that
   * spares most regex runs of patterns the index cannot narrow down.
   */
  readonly needs: string;
  /** Whether every top-level alternative pins both ends of the input. */
  readonly anchored: boolean;
  #whole: PatternMatcher | null | undefined;

  /** Compiles `source`; never throws. */
  constructor(source: string) {
    this.source = source;
    this.matcher = compilePattern(source);
    this.prefix = literalPrefix(source);
    const needs = this.matcher instanceof RegExp ? requiredLiteral(source) : "";
    this.needs = this.prefix.includes(needs) ? "" : needs;
    this.anchored = isAnchored(source);
  }

  /**
   * The pattern matched against the whole input (`^(?:…)$`), or `null` when
   * that does not compile. Compiled on first use: only checks on reserved
   * paths need it, and few requests are those.
   */
  get whole(): PatternMatcher | null {
    if (this.#whole === undefined) this.#whole = compilePattern(`^(?:${this.source})$`);
    return this.#whole;
  }
}
