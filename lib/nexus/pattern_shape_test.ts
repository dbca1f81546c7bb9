import assert from "node:assert/strict";
import fc from "fast-check";
import { literalPrefix, requiredLiteral } from "./pattern_shape.ts";

/** The V8 flag, held in a variable so linters don't judge the literal (as in linear_regex.ts). */
const LINEAR = "l";

Deno.test("literalPrefix: the literal text after ^, up to the first construct", () => {
  const cases: Array<[string, string]> = [
    ["^spiffe://spike\\.ist/app/web$", "spiffe://spike.ist/app/web"],
    ["^spiffe://spike\\.ist/team-7/.*$", "spiffe://spike.ist/team-7/"],
    ["^apps/web/", "apps/web/"],
    ["^a\\-b\\/c\\$\\^\\(\\)\\[\\]\\{\\}\\|\\?\\*\\+\\\\x", "a-b/c$^()[]{}|?*+\\x"],
    ["^ab*", "a"], // the quantified character is optional
    ["^ab+", "a"],
    ["^ab?c", "a"],
    ["^ab{2}", "a"],
    ["^a\\.*", "a"],
    ["^ab(c|d)", "ab"], // alternation inside a group: the prefix stops before it
    ["^ab[cd]", "ab"],
    ["^ab\\d", "ab"],
    ["^ab\\b", "ab"],
    ["^a\nb", "a\nb"],
    ["^\ud83d\ude00*", "\ud83d"], // without the u flag `*` repeats the low surrogate only
    ["^é.", "é"],
  ];
  for (const [source, prefix] of cases) assert.equal(literalPrefix(source), prefix, source);
});

Deno.test("literalPrefix: what all branches share, nothing when one branch is unanchored", () => {
  assert.equal(literalPrefix("^spiffe://a/web$|^spiffe://a/db$"), "spiffe://a/");
  assert.equal(literalPrefix("^abc|^abd*|^ab"), "ab");
  assert.equal(literalPrefix("^a\\|b|^a\\|c"), "a|");
  for (
    const source of [
      "spiffe://x", // not anchored
      ".*",
      "(^a)",
      "^a|^b", // either branch may match, and they share nothing
      "^abc|x",
      "^abc|^abd|",
      "^a$|.*",
      "^.*",
      "^(a)",
      "^[a]",
      "^a*",
      "^\\d",
      "^",
      "",
    ]
  ) {
    assert.equal(literalPrefix(source), "", source);
  }
  // An escaped or enclosed `|` is not alternation.
  assert.equal(literalPrefix("^ab\\|c"), "ab|c");
  assert.equal(literalPrefix("^ab[|]c"), "ab");
  assert.equal(literalPrefix("^ab(c|d)|"), "", "a trailing empty branch is unanchored");
});

Deno.test("requiredLiteral: the longest literal text outside groups and classes", () => {
  const cases: Array<[string, string]> = [
    ["/team-00007/(web|db)$", "/team-00007/"],
    ["(^|/)team-00007/", "team-00007/"],
    ["^spiffe://spike\\.ist/team-1/(web|db)$", "spiffe://spike.ist/team-1/"],
    ["ab*cdef", "cdef"], // b is optional, a too short
    ["a(bcdef)g", "a"], // inside a group is not counted (it may be optional or repeated)
    ["a[bcdef]gh", "gh"],
    ["[a-z]+/svc$", "/svc"],
    ["xy{2}z", "x"], // the brace quantifier is not literal text
    ["x{2,3}yz", "yz"],
    ["ab{cd", "cd"], // a `{` that is no quantifier ends the run
    ["\\x41bcd.e", "e"], // `\x41` is one character; what follows it is not read as text
    ["\\u0041bc", ""],
    ["\\cAbc", ""],
    ["\\dabc", ""],
    ["a\\.b\\/c", "a.b/c"],
    ["ab\\.*c", "ab"],
    ["\ud83d\ude00*x", "\ud83d"],
  ];
  for (const [source, needed] of cases) assert.equal(requiredLiteral(source), needed, source);
  assert.equal(requiredLiteral("/team-1/web$|/team-1/db$"), "/team-1/");
  assert.equal(requiredLiteral("xabc|(y)abd"), "", "branches must start their text alike");
  for (const source of ["a|b", "abc|", "^a$|.*", ".*", "", "[abc]", "(abc)"]) {
    assert.equal(requiredLiteral(source), "", source);
  }
});

/** Pieces patterns are made of: literals, metacharacters, escapes, classes, groups, line terminators. */
const PATTERN_PIECES = [
  "a",
  "b",
  "/",
  ":",
  "-",
  "é",
  "\ud83d\ude00",
  "\ud83d",
  "\n",
  "\u2028",
  ".",
  "*",
  "+",
  "?",
  "{1,2}",
  "{",
  "}",
  "]",
  "|",
  "(",
  ")",
  "(?:",
  "[ab]",
  "[^a]",
  "[|]",
  "[\\]|]",
  "$",
  "^",
  "\\.",
  "\\/",
  "\\-",
  "\\|",
  "\\\\",
  "\\d",
  "\\w",
  "\\b",
  "\\n",
  "\\",
  ".*",
  ".*$",
  "\\x41",
  "\\u0041",
  "\\cA",
  "\\01",
  "\\k<a>",
  "{2}",
  "{1,}",
  "A",
  "41",
];
/** Pieces inputs are made of. */
const TEXT_PIECES = [
  "a",
  "b",
  "/",
  ":",
  "-",
  ".",
  "|",
  "\\",
  "é",
  "\ud83d\ude00",
  "\ud83d",
  "\n",
  "\r",
  "\u2028",
  "1",
  "A",
  "\u0001",
  "{",
];

const textArb = fc.array(fc.constantFrom(...TEXT_PIECES), { maxLength: 8 }).map((parts) => parts.join(""));
const patternArb = fc.tuple(fc.boolean(), fc.array(fc.constantFrom(...PATTERN_PIECES), { maxLength: 7 }))
  .map(([anchored, parts]) => `${anchored ? "^" : ""}${parts.join("")}`);

/** The regex, or undefined when it does not compile. */
function tryCompile(source: string): RegExp | undefined {
  try {
    return new RegExp(source, LINEAR);
  } catch {
    return undefined;
  }
}

Deno.test("literalPrefix: every string a pattern matches starts with its prefix (also when matched whole)", () => {
  fc.assert(
    fc.property(patternArb, fc.array(textArb, { minLength: 1, maxLength: 6 }), (source, texts) => {
      const prefix = literalPrefix(source);
      const regex = tryCompile(source);
      const whole = tryCompile(`^(?:${source})$`);
      if (prefix === "" || !regex) return;
      // The prefix itself, with and without extensions, is the input most likely to expose a wrong prefix.
      const inputs = [...texts, prefix, prefix.slice(0, -1), ...texts.map((t) => prefix + t)];
      for (const text of inputs) {
        if (regex.test(text)) {
          assert.ok(text.startsWith(prefix), `${JSON.stringify(source)} matched ${JSON.stringify(text)}`);
        }
        if (whole?.test(text)) {
          assert.ok(text.startsWith(prefix), `whole ${JSON.stringify(source)} matched ${JSON.stringify(text)}`);
        }
      }
    }),
    { numRuns: 20_000 },
  );
});

Deno.test("requiredLiteral: every string a pattern matches contains it (also when matched whole)", () => {
  fc.assert(
    fc.property(patternArb, fc.array(textArb, { minLength: 1, maxLength: 6 }), (source, texts) => {
      const needed = requiredLiteral(source);
      const regex = tryCompile(source);
      const whole = tryCompile(`^(?:${source})$`);
      if (needed === "" || !regex) return;
      const inputs = [
        ...texts,
        needed,
        needed.slice(1),
        ...texts.map((t) => needed + t),
        ...texts.map((t) => t + needed),
      ];
      for (const text of inputs) {
        if (regex.test(text)) {
          assert.ok(text.includes(needed), `${JSON.stringify(source)} matched ${JSON.stringify(text)}`);
        }
        if (whole?.test(text)) {
          assert.ok(text.includes(needed), `whole ${JSON.stringify(source)} matched ${JSON.stringify(text)}`);
        }
      }
    }),
    { numRuns: 20_000 },
  );
});
