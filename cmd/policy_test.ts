import assert from "node:assert/strict";
import { CliError, UsageError } from "../lib/cli/errors.ts";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { parsePermissions, parsePolicyFile } from "./policy.ts";

Deno.test("parsePermissions: comma lists and arrays of known permissions", () => {
  assert.deepEqual(parsePermissions("read"), ["read"]);
  assert.deepEqual(parsePermissions("read, write,list"), ["read", "write", "list"]);
  assert.deepEqual(parsePermissions(["execute", " super "]), ["execute", "super"]);
  assert.deepEqual(parsePermissions("read,,write,"), ["read", "write"]);
});

Deno.test("parsePermissions: empty or unknown permissions are usage errors", () => {
  for (const bad of [undefined, "", " , ", [], "admin", "read,Write", ["read", "all"]]) {
    assert.throws(() => parsePermissions(bad), UsageError, JSON.stringify(bad));
  }
});

Deno.test("parsePolicyFile: YAML and JSON files, with the accepted spellings of each field", () => {
  const expected = {
    name: "web",
    spiffeidPattern: "^spiffe://spike\\.ist/app/web$",
    pathPattern: "^app/",
    permissions: ["read", "write"],
  };
  const yaml = "name: web\nspiffeidPattern: '^spiffe://spike\\.ist/app/web$'\npathPattern: ^app/\n" +
    "permissions:\n  - read\n  - write\n";
  assert.deepEqual(parsePolicyFile(yaml, "web.yaml", parseYaml), expected);
  assert.deepEqual(parsePolicyFile(JSON.stringify(expected), "web.json", parseYaml), expected);
  const snake = "name: web\nspiffeid_pattern: '^spiffe://spike\\.ist/app/web$'\npath_pattern: ^app/\n" +
    "permissions: read, write\n";
  assert.deepEqual(parsePolicyFile(snake, "web.yaml", parseYaml), expected);
  const camel = JSON.stringify({ ...expected, spiffeidPattern: undefined, spiffeIdPattern: expected.spiffeidPattern });
  assert.deepEqual(parsePolicyFile(camel, "web.json", parseYaml), expected);
});

Deno.test("parsePolicyFile: what 'policy get -f yaml|json' prints applies as is; older SPIKE keys too", () => {
  const expected = {
    name: "web",
    spiffeidPattern: "^spiffe://spike\\.ist/app/web$",
    pathPattern: "^app/",
    permissions: ["read", "write"],
  };
  const view = {
    id: "web",
    name: "web",
    spiffiedPattern: expected.spiffeidPattern,
    pathPattern: "^app/",
    permissions: ["read", "write"],
    createdAt: "2025-01-01T00:00:00.000Z",
    updatedAt: "2025-01-01T00:00:00.000Z",
  };
  assert.deepEqual(parsePolicyFile(JSON.stringify(view, null, 2), "web.json", parseYaml), expected);
  assert.deepEqual(parsePolicyFile(stringifyYaml(view), "web.yaml", parseYaml), expected);
  const older = "name: web\nspiffeid: '^spiffe://spike\\.ist/app/web$'\npath: ^app/\npermissions: [read, write]\n";
  assert.deepEqual(parsePolicyFile(older, "old.yaml", parseYaml), expected);
  // Two spellings of one field are fine when they agree.
  assert.deepEqual(
    parsePolicyFile(JSON.stringify({ ...view, spiffeidPattern: view.spiffiedPattern }), "w", parseYaml),
    expected,
  );
  assert.throws(
    () => parsePolicyFile(JSON.stringify({ ...view, spiffeid: "^spiffe://other$" }), "w.json", parseYaml),
    (error: unknown) => error instanceof CliError && /'spiffiedPattern' and 'spiffeid' disagree/.test(error.message),
  );
});

Deno.test("parsePolicyFile: bad files name the file and the problem", () => {
  const cases: Array<[string, RegExp]> = [
    ["name: [unclosed", /p\.yaml is not valid YAML/],
    ["- a\n- b\n", /p\.yaml must hold a mapping/],
    ["just text", /p\.yaml must hold a mapping/],
    ["", /p\.yaml must hold a mapping/],
    ["spiffeidPattern: x\npathPattern: y\npermissions: [read]\n", /'name' is missing/],
    ["name: n\npathPattern: y\npermissions: [read]\n", /'spiffeidPattern' is missing/],
    ["name: n\nspiffeidPattern: x\npermissions: [read]\n", /'pathPattern' is missing/],
    ["name: 5\nspiffeidPattern: x\npathPattern: y\npermissions: [read]\n", /'name' is missing or not a string/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parsePolicyFile(text, "p.yaml", parseYaml), (error: unknown) => {
      assert.ok(error instanceof CliError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(
    () => parsePolicyFile("name: n\nspiffeidPattern: x\npathPattern: y\n", "p.yaml", parseYaml),
    UsageError,
  );
  assert.throws(
    () => parsePolicyFile("name: n\nspiffeidPattern: x\npathPattern: y\npermissions: [root]\n", "p.yaml", parseYaml),
    UsageError,
  );
});
