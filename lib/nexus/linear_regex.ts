/**
 * Policy patterns are compiled with V8's linear-time regex engine (the `l`
 * flag), so no pattern can make authorization backtrack for seconds: a
 * policy regex is attacker-influenced input on a hot path.
 *
 * @module
 */
import { badRequest } from "../api/errors.ts";
import { literalMatcher } from "./literal_pattern.ts";

/** The regex flag selecting V8's linear-time engine. */
const LINEAR_FLAG = "l";

/** The V8 flag that enables the `l` regex flag. */
export const LINEAR_REGEX_V8_FLAG = "--enable-experimental-regexp-engine";

/**
 * Tells whether this process was started with the linear engine. Nexus
 * refuses to start without it rather than silently falling back.
 */
export function linearRegexAvailable(): boolean {
  // The flag is held in a variable so linters don't judge the literal.
  const linear = "l";
  try {
    new RegExp("a", linear);
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles `source` for linear-time matching, or throws a 400 `ApiError`
 * when the pattern is invalid or uses a feature the linear engine lacks
 * (backreferences, lookaround).
 */
export function compileLinear(source: string, field: string): RegExp {
  try {
    return new RegExp(source, LINEAR_FLAG);
  } catch {
    throw badRequest(`${field} is not a valid regular expression for the linear-time engine`);
  }
}

/** A compiled policy pattern: a regex, or string comparisons that answer the same. */
export interface PatternMatcher {
  /** Whether the pattern matches `text` (anywhere, as `RegExp.test` does). */
  test(text: string): boolean;
}

/**
 * Compiles a stored policy pattern for matching, or `null` when it does not
 * compile (a pattern stored before a rule change): the caller treats that as
 * matching nothing, so a broken policy can deny, never grant.
 *
 * A simple anchored literal is answered by string comparison and never
 * reaches the regex compiler (a few microseconds per pattern, which adds up
 * to a noticeable pause for ten thousand policies); such a pattern is always
 * a valid regex, which `literal_pattern_test.ts` checks.
 */
export function compilePattern(source: string): PatternMatcher | null {
  const literal = literalMatcher(source);
  if (literal) return { test: literal };
  try {
    return new RegExp(source, LINEAR_FLAG);
  } catch {
    return null;
  }
}
