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
  const units: string[] = [];
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
    units.push(unit);
  }
  // One flat string (see literal_pattern.ts): it is kept, and hashed as an index key.
  return units.join("");
}

/** Characters that can continue an escape: `\x41`, `\u0041`, `\cA`, `\01`, `\k<name>`, `\u{…}`. */
const ESCAPE_TAIL = /[\w{}<>,]/;
/** A `{n}`, `{n,}` or `{n,m}` quantifier at the start of the text. */
const BRACE_QUANTIFIER = /^\{\d+(?:,\d*)?\}/;

/**
 * The longest literal text every match of `source` contains somewhere, or
 * `""` when nothing can be said: a cheap `includes` check that rules a
 * pattern out before its regex runs. Only a pattern without top-level
 * alternation has one, and only text outside groups and classes counts; a
 * character followed by a quantifier is left out, and after an escape that
 * is not a plain punctuation character nothing is read until the next
 * metacharacter (`\x41` is one character, not `x41`).
 */
export function requiredLiteral(source: string): string {
  if (topLevelAlternatives(source).length > 1) return "";
  let best = "";
  let run: string[] = [];
  const endRun = () => {
    if (run.length > best.length) best = run.join("");
    run = [];
  };
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "[") {
      // A class is one character of a set: skip it whole, escapes inside included.
      endRun();
      for (i++; i < source.length && source[i] !== "]"; i++) if (source[i] === "\\") i++;
    } else if (c === "\\") {
      const next = source[i + 1];
      i++;
      if (depth === 0 && next !== undefined && ESCAPED_LITERAL.has(next) && !QUANTIFIERS.has(source[i + 1] ?? "")) {
        run.push(next);
      } else {
        endRun();
        while (i + 1 < source.length && ESCAPE_TAIL.test(source[i + 1]!)) i++;
      }
    } else if (c === "(" || c === ")") {
      endRun();
      depth = c === "(" ? depth + 1 : Math.max(0, depth - 1);
    } else if (depth > 0) {
      continue;
    } else if (c === "{") {
      endRun();
      const quantifier = BRACE_QUANTIFIER.exec(source.slice(i));
      if (quantifier) i += quantifier[0].length - 1;
    } else if (META.has(c) || QUANTIFIERS.has(source[i + 1] ?? "")) {
      endRun();
    } else {
      run.push(c);
    }
  }
  endRun();
  return best;
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
