/**
 * What the text of a policy pattern says about every string it can match,
 * read without running it: whether it pins both ends of the input
 * ({@linkcode isAnchored}, the reserved-path rule) and which literal text a
 * match must start with ({@linkcode literalPrefix}, the policy index).
 *
 * Both read the source conservatively: when a construct is not understood,
 * they claim less (not anchored; a shorter prefix), never more. Policy
 * patterns are compiled without flags other than the linear engine's `l`,
 * so `^` only matches at the start of the input and `.` never matches a
 * line terminator.
 *
 * @module
 */

/** Characters with a meaning in a JavaScript regex (outside a class). */
export const META: ReadonlySet<string> = new Set([
  "\\",
  "^",
  "$",
  ".",
  "|",
  "?",
  "*",
  "+",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
]);

/** Characters whose backslash escape is that character itself (without the `u` flag). */
export const ESCAPED_LITERAL: ReadonlySet<string> = new Set([...META, "/", "-"]);

/** Characters that repeat or make optional what precedes them. */
const QUANTIFIERS: ReadonlySet<string> = new Set(["*", "+", "?", "{"]);

/**
 * A SPIFFE ID pattern is anchored when every top-level alternative pins both
 * ends of the ID: `^a$|.*$` starts with `^` and ends with `$`, yet its second
 * branch matches any ID.
 */
export function isAnchored(source: string): boolean {
  return topLevelAlternatives(source).every((branch) => branch.startsWith("^") && endsWithAnchor(branch));
}

/**
 * The literal text every match of `source` starts with at index 0, or `""`
 * when nothing can be said. Only a `^`-anchored pattern without top-level
 * alternation has one: the characters after `^` up to the first
 * metacharacter, escapes of punctuation read as the character itself, and a
 * character followed by a quantifier left out (`^ab*` gives `a`).
 *
 * Works on UTF-16 code units, as a regex without the `u` flag does: in
 * `^😀*` the `*` repeats only the low surrogate, so the prefix is the high one.
 */
export function literalPrefix(source: string): string {
  if (!source.startsWith("^") || topLevelAlternatives(source).length > 1) return "";
  let prefix = "";
  for (let i = 1; i < source.length; i++) {
    let unit = source[i]!;
    if (unit === "\\") {
      const next = source[i + 1];
      if (next === undefined || !ESCAPED_LITERAL.has(next)) break;
      unit = next;
      i++;
    } else if (META.has(unit)) {
      break;
    }
    if (QUANTIFIERS.has(source[i + 1] ?? "")) break;
    prefix += unit;
  }
  return prefix;
}

/** Splits `source` at the `|` that are outside groups, classes and escapes. */
function topLevelAlternatives(source: string): string[] {
  const branches: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      i++;
    } else if (inClass) {
      if (c === "]") inClass = false;
    } else if (c === "[") {
      inClass = true;
    } else if (c === "(") {
      depth++;
    } else if (c === ")") {
      depth = Math.max(0, depth - 1);
    } else if (c === "|" && depth === 0) {
      branches.push(source.slice(start, i));
      start = i + 1;
    }
  }
  branches.push(source.slice(start));
  return branches;
}

/** True when `branch` ends in a `$` that is not escaped (an even run of `\\` before it). */
function endsWithAnchor(branch: string): boolean {
  if (!branch.endsWith("$")) return false;
  let backslashes = 0;
  for (let i = branch.length - 2; i >= 0 && branch[i] === "\\"; i--) backslashes++;
  return backslashes % 2 === 0;
}
