import assert from "node:assert/strict";
import fc from "fast-check";
import { literalMatcher } from "./literal_pattern.ts";

/** The V8 flag, held in a variable so linters don't judge the literal (as in linear_regex.ts). */
const LINEAR = "l";

Deno.test("literal patterns: the common policy shapes get a string matcher", () => {
  const cases: Array<[string, string, boolean]> = [
    ["^spiffe://spike\\.ist/app/web$", "spiffe://spike.ist/app/web", true],
    ["^spiffe://spike\\.ist/app/web$", "spiffe://spike.ist/app/web2", false],
    ["^spiffe://spike\\.ist/app/web$", "spiffe://spikexist/app/web", false],
    ["^apps/web/.*$", "apps/web/db", true],
    ["^apps/web/.*$", "apps/web/db\nx", false],
    ["^apps/web/.*$", "apps/webx", false],
    ["^apps/web/", "apps/web/x\ny", true],
    ["^apps/web/.*", "apps/web/", true],
    ["^a\\-b\\/c\\$\\^\\(\\)\\[\\]\\{\\}\\|\\?\\*\\+\\\\$", "a-b/c$^()[]{}|?*+\\", true],
  ];
  for (const [source, text, expected] of cases) {
    const match = literalMatcher(source);
    assert.ok(match, source);
    assert.equal(match(text), expected, `${source} on ${JSON.stringify(text)}`);
    assert.equal(new RegExp(source, LINEAR).test(text), expected, "the regex agrees");
  }
});

Deno.test("literal patterns: anything else falls back to the regex", () => {
  for (
    const source of [
      "spiffe://x$", // not anchored at the start
      "^a|b$",
      "^a.$",
      "^a*$",
      "^ab?$",
      "^a{2}$",
      "^[ab]$",
      "^(a)$",
      "^a\\d$",
      "^a\\w",
      "^a.+$",
      "^a.*?$",
      "^a$b",
      "^a\\",
      "^a.*$$",
    ]
  ) {
    assert.equal(literalMatcher(source), undefined, source);
  }
});

/** Pieces patterns and inputs are made of: plain characters, metacharacters, escapes, line terminators. */
const PIECES = ["a", "b", "/", "-", ".", "$", "^", "*", "\\", "\n", "\r", "\u2028", ":", "é", "\ud83d\ude00"];
const piece = fc.constantFrom(...PIECES);
const text = fc.array(piece, { maxLength: 8 }).map((parts) => parts.join(""));
const escaped = fc.constantFrom("\\.", "\\/", "\\-", "\\$", "\\^", "\\*", "\\\\", "\\(", "\\d");
const pattern = fc.tuple(
  fc.array(fc.oneof(piece, escaped), { maxLength: 6 }),
  fc.constantFrom("", "$", ".*", ".*$", ".+$", "*", "?"),
).map(([parts, tail]) => `^${parts.join("")}${tail}`);

/** True when `source` compiles for the linear engine. */
function compiles(source: string): boolean {
  try {
    new RegExp(source, LINEAR);
    return true;
  } catch {
    return false;
  }
}

Deno.test("literal patterns: wherever a string matcher is given, the pattern compiles and the matcher agrees with the regex on every input", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        pattern,
        fc.string({ maxLength: 12 }).map((s) => `^${s}`),
        fc.string({ maxLength: 12, unit: "binary" }).map((s) => `^${s}`),
      ),
      text,
      (source, input) => {
        const match = literalMatcher(source);
        if (!match) return;
        // Nexus skips the regex compiler for these, so they must all be valid regexes.
        assert.ok(compiles(source), `${JSON.stringify(source)} got a string matcher but is not a valid regex`);
        const regex = new RegExp(source, LINEAR);
        assert.equal(match(input), regex.test(input), `${JSON.stringify(source)} on ${JSON.stringify(input)}`);
        // The text itself (and its extensions) are the interesting inputs for a literal.
        const body = source.slice(1).replace(/\$$|\.\*\$?$/, "").replace(/\\(.)/g, "$1");
        for (const candidate of [body, `${body}x`, `${body}\n`, body.slice(0, -1)]) {
          assert.equal(
            match(candidate),
            regex.test(candidate),
            `${JSON.stringify(source)} on ${JSON.stringify(candidate)}`,
          );
        }
      },
    ),
    { numRuns: 5000 },
  );
});
