import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { UsageError } from "./errors.ts";
import { outputFormat, renderStructured } from "./format.ts";

Deno.test("outputFormat: human by default; plain is human; others are usage errors", () => {
  assert.equal(outputFormat(undefined), "human");
  assert.equal(outputFormat("human"), "human");
  assert.equal(outputFormat("plain"), "human");
  assert.equal(outputFormat("json"), "json");
  assert.equal(outputFormat("yaml"), "yaml");
  for (const bad of ["", "JSON", "xml", true]) assert.throws(() => outputFormat(bad), UsageError);
});

Deno.test("renderStructured: JSON and YAML that parse back, ending in a newline", async () => {
  const data = {
    b: "two: with colon",
    a: ["x", "y"],
    n: 1,
    nested: { "key with space": "-leading dash" },
    // Strings that look like other YAML types stay strings.
    looksLike: ["true", "123", "null", "0x1F", "~", "1e3", ""],
  };
  const json = await renderStructured(data, "json");
  const yaml = await renderStructured(data, "yaml");
  assert.ok(json.endsWith("\n") && yaml.endsWith("\n"));
  assert.deepEqual(JSON.parse(json), data);
  assert.deepEqual(parseYaml(yaml), data);
});
