import assert from "node:assert/strict";
import fc from "fast-check";
import { didYouMean, editDistance, suggestions } from "./suggest.ts";

Deno.test("editDistance: insertions, deletions, substitutions and a swapped pair each cost one", () => {
  assert.equal(editDistance("secret", "secret"), 0);
  assert.equal(editDistance("secert", "secret"), 1); // swap
  assert.equal(editDistance("scret", "secret"), 1); // deletion
  assert.equal(editDistance("secrets", "secret"), 1); // insertion
  assert.equal(editDistance("sexret", "secret"), 1); // substitution
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("🔑a", "a🔑"), 1); // characters, not UTF-16 units
});

Deno.test("editDistance: property: symmetric, zero only for equal strings, bounded by the longer length", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
      const d = editDistance(a, b);
      assert.equal(d, editDistance(b, a));
      assert.equal(d === 0, a === b);
      assert.ok(d <= Math.max([...a].length, [...b].length));
    }),
  );
});

Deno.test("suggestions: the closest names, prefixes, nothing for a far-off word", () => {
  const commands = ["nexus", "keeper", "bootstrap", "secret", "policy", "operator", "cipher", "dev", "version"];
  assert.deepEqual(suggestions("secert", commands), ["secret"]);
  assert.deepEqual(suggestions("polcy", commands), ["policy"]);
  assert.deepEqual(suggestions("boot", commands), ["bootstrap"]);
  assert.deepEqual(suggestions("SECRET", commands), ["secret"]);
  assert.deepEqual(suggestions("zzzzzz", commands), []);
  assert.deepEqual(suggestions("secret", commands), []);
  assert.deepEqual(suggestions("--fromat", ["--format", "--version", "--help"]), ["--format"]);
});

Deno.test("didYouMean: one name, a short list, or nothing", () => {
  assert.equal(didYouMean("secert", ["secret", "policy"]), "; did you mean 'secret'?");
  assert.equal(didYouMean("bsh", ["bash", "zsh", "fish"]), "; did you mean 'bash' or 'zsh'?");
  assert.equal(didYouMean("qqqq", ["bash", "zsh", "fish"]), "");
});
