import assert from "node:assert/strict";
import fc from "fast-check";
import { PrefixIndex } from "./prefix_index.ts";

Deno.test("prefix index: a lookup returns exactly the entries whose prefix starts the text", () => {
  const word = fc.array(fc.constantFrom("a", "b", "/", "\ud83d", "\ude00"), { maxLength: 5 }).map((p) => p.join(""));
  fc.assert(
    fc.property(
      fc.array(word, { maxLength: 30 }),
      fc.array(word, { minLength: 1, maxLength: 10 }),
      (prefixes, texts) => {
        const entries = prefixes.map((prefix, n) => ({ prefix, n }));
        const index = new PrefixIndex(entries, (e) => e.prefix);
        for (const text of [...texts, ...prefixes]) {
          const found = index.lookup(text);
          const flat = found.groups.flat().map((e) => e.n).sort((x, y) => x - y);
          const expected = entries.filter((e) => text.startsWith(e.prefix)).map((e) => e.n);
          assert.deepEqual(flat, expected, JSON.stringify(text));
          assert.equal(found.count, expected.length);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("prefix index: an empty prefix matches every text, an empty index nothing", () => {
  const index = new PrefixIndex(["", "ab", "abc", "x"], (p) => p);
  assert.deepEqual(index.lookup("").groups, [[""]]);
  assert.deepEqual(index.lookup("abcd").groups, [[""], ["ab"], ["abc"]]);
  assert.deepEqual(index.lookup("zz").groups, [[""]]);
  assert.equal(new PrefixIndex<string>([], (p) => p).lookup("abc").count, 0);
});
