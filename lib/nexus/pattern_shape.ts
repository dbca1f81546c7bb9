/**
 * What the text of a policy pattern says about every string it can match,
 * read without running it: whether it pins both ends of the input
 * ({@linkcode isAnchored}, the reserved-path rule), which literal text a
 * match must start with ({@linkcode literalPrefix}, the policy index) and
 * which it must contain ({@linkcode requiredLiteral}, a check before the
 * regex runs).
 *
 * All read the source conservatively: when a construct is not understood,
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

/** `META` and `ESCAPED_LITERAL` as tables over ASCII code units, for {@linkcode literalRun}'s loop. */
const META_CODES = codeTable(META);
const ESCAPED_LITERAL_CODES = codeTable(ESCAPED_LITERAL);
const BACKSLASH = 0x5c;

function codeTable(chars: ReadonlySet<string>): Uint8Array {
  const table = new Uint8Array(128);
  for (const c of chars) table[c.charCodeAt(0)] = 1;
  return table;
}

/**
 * The literal text at `source[from]` onwards: characters without a regex
 * meaning, and escapes of punctuation read as the character itself (`\.`
 * is `.`), up to the first other construct, which starts at `end`. The
 * text is made of slices of `source`, not one string per character: it is
 * kept for every policy and hashed as an index key.
 */
export function literalRun(source: string, from: number): { readonly text: string; readonly end: number } {
  const pieces: string[] = [];
  let start = from;
  let i = from;
  while (i < source.length) {
    const code = source.charCodeAt(i);
    if (code === BACKSLASH) {
      const next = source.charCodeAt(i + 1); // NaN past the end
      if (!(next < 128 && ESCAPED_LITERAL_CODES[next] === 1)) break;
      pieces.push(source.slice(start, i));
      start = i + 1; // the escaped character opens the next piece
      i += 2;
    } else if (code < 128 && META_CODES[code] === 1) {
      break;
    } else {
      i++;
    }
  }
  pieces.push(source.slice(start, i));
  return { text: pieces.length === 1 ? pieces[0]! : pieces.join(""), end: i };
}

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
 * when nothing can be said. A branch anchored with `^` starts with the
 * characters after `^` up to the first metacharacter (escapes of
 * punctuation read as the character itself, a character followed by a
 * quantifier left out: `^ab*` gives `a`). With top-level alternation every
 * branch must be anchored, and the prefix is what all branches' prefixes
 * share (`^ab|^ac` gives `a`); one unanchored branch gives `""`.
 *
 * Works on UTF-16 code units, as a regex without the `u` flag does: in
 * `^😀*` the `*` repeats only the low surrogate, so the prefix is the high one.
 */
export function literalPrefix(source: string): string {
  let shared: string | undefined;
  for (const branch of topLevelAlternatives(source)) {
    if (!branch.startsWith("^")) return "";
    const { text, end } = literalRun(branch, 1);
    // Quantifiers are metacharacters, so a run ends before one; it repeats the run's last unit.
    const prefix = QUANTIFIERS.has(branch[end] ?? "") ? text.slice(0, -1) : text;
    shared = shared === undefined ? prefix : commonPrefix(shared, prefix);
  }
  return shared ?? "";
}

/** Characters that can continue an escape: `\x41`, `\u0041`, `\cA`, `\01`, `\k<name>`, `\u{…}`. */
const ESCAPE_TAIL = /[\w{}<>,]/;
/** A `{n}`, `{n,}` or `{n,m}` quantifier at the start of the text. */
const BRACE_QUANTIFIER = /^\{\d+(?:,\d*)?\}/;

/**
 * Literal text every match of `source` contains somewhere, or `""` when
 * nothing can be said: a cheap `includes` check that rules a pattern out
 * before its regex runs. Of one branch, the longest run of literal text
 * outside groups and classes (a character followed by a quantifier left
 * out; after an escape that is not a plain punctuation character nothing is
 * read until the next metacharacter: `\x41` is one character, not `x41`).
 * With top-level alternation, what all branches' texts start with alike
 * (`/team-1/web$|/team-1/db$` needs `/team-1/`).
 */
export function requiredLiteral(source: string): string {
  let shared: string | undefined;
  for (const branch of topLevelAlternatives(source)) {
    const needed = branchRequiredLiteral(branch);
    shared = shared === undefined ? needed : commonPrefix(shared, needed);
    if (shared === "") break;
  }
  return shared ?? "";
}

/** {@linkcode requiredLiteral} of a pattern without top-level alternation. */
function branchRequiredLiteral(source: string): string {
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

/** The longest text both `a` and `b` start with. */
function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i === a.length ? a : a.slice(0, i);
}

/** Splits `source` at the `|` that are outside groups, classes and escapes. */
function topLevelAlternatives(source: string): string[] {
  if (!source.includes("|")) return [source];
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
