import assert from "node:assert/strict";
import fc from "fast-check";
import { literalPrefix } from "./pattern_shape.ts";

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

Deno.test("literalPrefix: nothing for unanchored patterns or top-level alternation", () => {
  for (
    const source of [
      "spiffe://x", // not anchored
      ".*",
      "(^a)",
      "^a|^b", // either branch may match
      "^abc|x",
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
  assert.equal(literalPrefix("^ab(c|d)|"), "", "a trailing empty branch is alternation too");
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
];
/** Pieces inputs are made of. */
const TEXT_PIECES = ["a", "b", "/", ":", "-", ".", "|", "\\", "é", "\ud83d\ude00", "\ud83d", "\n", "\r", "\u2028", "1"];

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
