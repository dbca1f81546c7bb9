/**
 * A fast path for the commonest policy patterns: a `^`-anchored literal,
 * optionally followed by `$`, `.*` or `.*$` (`^spiffe://acme\.org/app/web$`,
 * `^apps/web/.*$`). Such a pattern is answered with string comparisons,
 * which cost a few nanoseconds where V8's linear-time engine costs about a
 * microsecond; with a thousand policies that is most of an authorization.
 *
 * Anything else (classes, groups, alternation, quantifiers on a literal,
 * escapes such as `\d`, an unanchored start) gets `undefined`, and the caller
 * uses the compiled regex. The matcher must agree with `new RegExp(source)`
 * on every input; `literal_pattern_test.ts` checks that as a property.
 *
 * @module
 */
import { literalRun } from "./pattern_shape.ts";

/** What `.` does not match without the `s` flag. */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/** A string test equivalent to the pattern, or `undefined` when the pattern is not of the simple kind. */
export function literalMatcher(source: string): ((text: string) => boolean) | undefined {
  if (!source.startsWith("^")) return undefined;
  const { text: literal, end } = literalRun(source, 1);
  switch (source.slice(end)) {
    case "":
    case ".*":
      return (text) => text.startsWith(literal);
    case "$":
      return (text) => text === literal;
    case ".*$":
      return (text) => text.startsWith(literal) && !LINE_TERMINATOR.test(text.slice(literal.length));
    default:
      return undefined;
  }
}
