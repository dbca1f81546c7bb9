import assert from "node:assert/strict";
import fc from "fast-check";
import { UsageError } from "../lib/cli/errors.ts";
import { parseVersions } from "./secret.ts";

Deno.test("parseVersions: absent means none; lists of whole numbers parse in order", () => {
  assert.deepEqual(parseVersions(undefined), []);
  assert.deepEqual(parseVersions("1"), [1]);
  assert.deepEqual(parseVersions("0"), [0]);
  assert.deepEqual(parseVersions("3,1, 2 "), [3, 1, 2]);
  assert.deepEqual(parseVersions(String(2 ** 31 - 1)), [2 ** 31 - 1]);
});

Deno.test("parseVersions: anything else is a usage error", () => {
  for (const bad of ["", "a", "-1", "1.5", "1,", ",1", "1,,2", "0x10", "1e3", String(2 ** 31), "+1", "١"]) {
    assert.throws(() => parseVersions(bad), UsageError, JSON.stringify(bad));
  }
});

Deno.test("parseVersions: property: any list of valid versions round-trips through its text", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 20 }), (versions) => {
      assert.deepEqual(parseVersions(versions.join(",")), versions);
    }),
  );
});
