import assert from "node:assert/strict";
import fc from "fast-check";
import { spiffeIdPatternCanMatch, spiffeIdPatternProblem } from "./spiffe_id_pattern.ts";

Deno.test("SPIKE's refusals: match-everything and non-SPIFFE patterns are refused", () => {
  for (const source of [".*", ".+", "^.*$", "^x$", "x", "admin$", "example\\.org/admin", "spiffe", "^spiffe:"]) {
    assert.equal(spiffeIdPatternProblem(source), "scheme_not_pinned", source);
  }
});

Deno.test("patterns that name the scheme and can match an ID are accepted, SPIKE's and more", () => {
  for (
    const source of [
      "^spiffe://spike\\.ist/app/web$",
      "spiffe://example\\.org/x", // unanchored, as SPIKE allows
      "^spiffe://.*", // every workload, on purpose
      "^spiffe://example\\.org/service/.*$",
      "^spiffe:\\/\\/a",
      "^(spiffe://a|spiffe://b)$", // SPIKE's syntax check refuses alternation
      "^spiffe://a$|^spiffe://b/c$",
      "^spiffe://[^/]+/app$",
      "^spiffe://x(?:/[a-z]{1,8})*$",
      "\\bspiffe://a\\b",
      "^spiffe://a/\\.\\.\\.$", // "..." is a valid segment
      "^spiffe://spike\\.ist/spike/pilot/role/superuser$",
    ]
  ) {
    assert.equal(spiffeIdPatternProblem(source), undefined, source);
    assert.equal(spiffeIdPatternCanMatch(source), true, source);
  }
});

Deno.test("patterns that can match text not starting with spiffe:// are refused", () => {
  for (
    const source of [
      "spiffe://a|b", // the second branch
      "^$|^spiffe://a$", // the empty match
      "spiffe://*", // can match "spiffe:/"
      "spiffe://?a",
      "(spiffe://)?a",
      "^\\^spiffe://a", // a literal ^
      "[s]?piffe://a",
      "Spiffe://a|spiffe://a",
    ]
  ) {
    assert.equal(spiffeIdPatternProblem(source), "scheme_not_pinned", source);
    assert.equal(spiffeIdPatternCanMatch(source), false, source);
  }
});

Deno.test("patterns no valid SPIFFE ID can match are refused", () => {
  for (
    const source of [
      "^spiffe://$", // no trust domain
      "^spiffe://Example\\.org$", // trust domains are lowercase
      "^spiffe://a/$", // trailing slash
      "^spiffe://a//b$", // empty segment
      "^spiffe://a/\\.\\.$", // dot segment
      "^spiffe://a/\\.$",
      "^spiffe://a?b#c$",
      "^spiffe://a:8080$",
      "spiffe://a$b", // text after the end
      "spiffe://a^", // start after text
      "^spiffe://a\\B$", // no boundary between "a" and the end is false
      "^spiffe://a\\b/b\\bc$",
      "spiffe://[]",
      "[]",
    ]
  ) {
    assert.equal(spiffeIdPatternProblem(source), "never_matches", source);
  }
});

Deno.test("syntax the checker cannot analyse, and patterns too big to explore, are refused", () => {
  assert.equal(spiffeIdPatternProblem("(?m:^spiffe://a)"), "unparsable");
  assert.equal(spiffeIdPatternProblem("(?=spiffe://)spiffe://a"), "unparsable");
  assert.equal(spiffeIdPatternProblem("(spiffe://[a-z]+)\\1"), "unparsable");
  assert.equal(spiffeIdPatternProblem("["), "unparsable");
  assert.equal(spiffeIdPatternProblem("spiffe://(a{100}){300}"), "too_complex");
  assert.equal(spiffeIdPatternProblem("^spiffe://a{1000}$"), undefined, "large but bounded is fine");
});

// --- properties: the answers agree with V8 running the pattern ---------------

const TOKENS = [
  "spiffe://",
  "spiffe:",
  "//",
  "^",
  "$",
  ".",
  "*",
  "+",
  "?",
  "|",
  "(",
  ")",
  "(?:",
  "a",
  "b",
  "/",
  "[a-z]",
  "[^/]",
  "\\.",
  "\\b",
  "\\B",
  "{1,2}",
  "x",
];
const patternArb = fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 8 }).map((t) => t.join(""))
  .filter((source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  });
const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,4}$/).filter((s) => s !== "." && s !== "..");
const spiffeIdArb = fc.tuple(fc.stringMatching(/^[a-z0-9._-]{1,5}$/), fc.array(segment, { maxLength: 3 }))
  .map(([td, segments]) => `spiffe://${td}${segments.map((s) => `/${s}`).join("")}`);
const notSpiffeArb = fc.string({ maxLength: 12 }).filter((s) => !s.includes("spiffe://"));

Deno.test("property: an accepted pattern never matches text without spiffe://", () => {
  fc.assert(
    fc.property(patternArb, fc.array(notSpiffeArb, { minLength: 5, maxLength: 20 }), (source, texts) => {
      if (spiffeIdPatternProblem(source) !== undefined) return;
      const regex = new RegExp(source);
      for (const text of [...texts, "", "a", "/a", "spiffe:/", "xspiffe:/a"]) {
        assert.ok(!regex.test(text), `${source} matched ${JSON.stringify(text)}`);
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: a pattern judged to never match a SPIFFE ID matches none", () => {
  fc.assert(
    fc.property(
      patternArb.map((p) => `spiffe://${p}`),
      fc.array(spiffeIdArb, { minLength: 5, maxLength: 30 }),
      (source, ids) => {
        if (spiffeIdPatternProblem(source) !== "never_matches") return;
        const regex = new RegExp(source);
        for (const id of ids) assert.ok(!regex.test(id), `${source} matched ${id}`);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("property: a pattern that matches some SPIFFE ID and names the scheme is accepted", () => {
  fc.assert(
    fc.property(patternArb.map((p) => `^spiffe://${p}`), spiffeIdArb, (source, id) => {
      if (!new RegExp(source).test(id)) return;
      const problem = spiffeIdPatternProblem(source);
      // The scheme check assumes assertions can hold, so a branch that can
      // only match after a false assertion may still be judged unpinned.
      assert.ok(problem === undefined || problem === "scheme_not_pinned", `${source} (matches ${id}): ${problem}`);
    }),
    { numRuns: 2000 },
  );
});
